// `emseg segment --project`: a headless run stores its results in a project as the app's jobs do — every round's map
// of each slice, labels taken directly on empty slices and proposed elsewhere, so a second run never overwrites what
// the user has — and a project of another stack, or one open elsewhere, is a one-line user error (exit code 2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStack, writeTiffStack } from '../../io';
import { tinyModel } from '../../engine/fixtures';
import { Project } from '../../project/store';
import { paintStroke } from '../../../ml/proofread';
import { initTf } from '../../../ml/tfjs/backend';
import { pseudoRandom } from '../../../ml/models/test-helpers';
import { ridgeMap } from './test-maps';
import { runCli as run } from './test-run';

/** The slices of a TIFF stack written by the run, as plain arrays. */
async function readAll(path: string): Promise<number[][]> {
  const s = await openStack(path);
  try {
    const slices: number[][] = [];
    for (let k = 0; k < s.info.depth; k++) slices.push(Array.from((await s.readSlice(k)).data));
    return slices;
  } finally {
    await s.close();
  }
}

/** A project of `stack` (w×h×depth, no labels) in `folder`, closed again. */
async function createProject(folder: string, stack: string, w: number, h: number, depth: number): Promise<void> {
  const p = await Project.create(folder, { stackPath: await realpath(stack), width: w, height: h, depth });
  await p.close();
}

test('segment --project stores every round and the labels of empty slices, then proposals that leave the labels alone', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-segment-project-'));
  try {
    const models = join(dir, 'models');
    // Seeded weights: the labels below depend on the maps, which must be the same on every run.
    await tinyModel(join(models, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 1 }, 'membrane', undefined, 1);
    await tinyModel(join(models, 'refiner'), { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 2, 2);
    const [w, h] = [37, 29];
    const stack = join(dir, 'stack.tif');
    await writeTiffStack(stack, [0, 1, 2].map((z) => ({ width: w, height: h, data: Uint8Array.from(pseudoRandom(w * h, z + 1, 255).map((v) => Math.abs(v))) })));
    const folder = join(dir, 'project');
    await createProject(folder, stack, w, h, 3);

    // These weights give final maps with a quartile near 0.45: thresholds there cut each slice into ~60 segments.
    const params = (threshold: string) => ['--method', 'threshold', '--threshold', threshold, '--min-size', '2', '--quiet'];

    // First run, slices 1-2 of an empty project: every round's map is stored and the labels go in directly.
    const out1 = join(dir, 'out1');
    const first = await run(['segment', stack, '--model', models, '--out', out1, '--slices', '1-2', '--project', folder, ...params('0.45')]);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /^project .*: labels of 2 slices went in directly, 0 slices became proposals .*; maps of 2 slices stored$/m);
    const rounds = await Promise.all([0, 1, 2].map((r) => readAll(join(out1, `membrane-round-${r}.tif`))));
    const labels1 = await readAll(join(out1, 'labels.tif'));
    let p = await Project.open(folder);
    try {
      for (const [k, z] of [1, 2].entries()) {
        assert.equal(p.mapRounds(z), 3, `slice ${z}: round 0 and 2 refinement rounds`);
        for (let r = 0; r < 3; r++) assert.deepEqual(Array.from((await p.map(z, r))!.data), rounds[r][k], `slice ${z} round ${r}`);
        assert.deepEqual(Array.from((await p.slice('labels', z)).data), labels1[k], `slice ${z} took the labels`);
      }
      for (const l of labels1) assert.ok(new Set(l).size > 10, 'the run made segments');
      assert.equal(p.mapRounds(0), 0, 'slice 0 was not segmented');
      assert.ok(!p.hasSlice('labels', 0));
      assert.deepEqual(p.info.proposals, {});
      // The user proofreads slice 1.
      assert.ok(await p.edit('labels', 1, (l, locked) => paintStroke(l, 1, [3, 3, 30, 20], 2, 999, locked)));
    } finally {
      await p.close();
    }

    // Second run over every slice: slice 0 is still empty and takes its labels; 1 (edited) and 2 (the first run's
    // labels) keep theirs, and the new labels wait as proposals.
    p = await Project.open(folder);
    const kept = [Array.from((await p.slice('labels', 1)).data), Array.from((await p.slice('labels', 2)).data)];
    await p.close();
    const out2 = join(dir, 'out2');
    const second = await run(['segment', stack, '--model', models, '--out', out2, '--project', folder, ...params('0.47')]);
    assert.equal(second.code, 0, second.err);
    assert.match(second.out, /^project .*: labels of 1 slice went in directly, 2 slices became proposals .*; maps of 3 slices stored$/m);
    const labels2 = await readAll(join(out2, 'labels.tif'));
    p = await Project.open(folder);
    try {
      assert.deepEqual(Array.from((await p.slice('labels', 0)).data), labels2[0]);
      assert.deepEqual(Array.from((await p.slice('labels', 1)).data), kept[0], 'the proofread slice is untouched');
      assert.deepEqual(Array.from((await p.slice('labels', 2)).data), kept[1], 'existing labels are not overwritten');
      assert.deepEqual(Object.keys(p.info.proposals).sort(), ['1', '2']);
      assert.deepEqual(Array.from((await p.proposal(1))!.data), labels2[1]);
      assert.deepEqual(Array.from((await p.proposal(2))!.data), labels2[2]);
      assert.notDeepEqual(labels2[2], kept[1], 'the second run made other labels, which would have replaced them');
      assert.equal(p.undoDepth, 1, "the user's edit is still undoable");
      for (const z of [0, 1, 2]) assert.equal(p.mapRounds(z), 3);
    } finally {
      await p.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});


test('segment --project refuses a project of another stack or one open elsewhere in one line, and stores --membrane maps', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-segment-project-'));
  try {
    // The map stack stands in for the EM stack too: only its geometry and path are read.
    const maps = join(dir, 'maps.tif');
    await writeTiffStack(maps, [ridgeMap(0), ridgeMap(1), ridgeMap(2)]);
    const other = join(dir, 'other.tif');
    await writeTiffStack(other, [ridgeMap(0), ridgeMap(1), ridgeMap(2)]);
    const folder = join(dir, 'project');
    await createProject(folder, maps, 9, 20, 3);
    const deeper = join(dir, 'deeper');
    await createProject(deeper, maps, 9, 20, 4);
    const out = join(dir, 'out');
    const segment = (stack: string, project: string) => run(['segment', stack, '--membrane', maps, '--out', out, '--min-size', '2', '--project', project, '--quiet']);
    const oneLine = (err: string, ...parts: string[]) => {
      assert.match(err, /^emseg segment: [^\n]+\n$/, `one line: ${JSON.stringify(err)}`);
      for (const part of parts) assert.ok(err.includes(part), `${JSON.stringify(err)} names ${part}`);
    };

    const wrongStack = await segment(other, folder);
    assert.equal(wrongStack.code, 2);
    oneLine(wrongStack.err, folder, await realpath(other));
    const wrongSize = await segment(maps, deeper);
    assert.equal(wrongSize.code, 2);
    oneLine(wrongSize.err, deeper, '9×20×4', '9×20×3');
    const open = await Project.open(folder);
    try {
      const locked = await segment(maps, folder);
      assert.equal(locked.code, 2);
      oneLine(locked.err, folder, 'open');
    } finally {
      await open.close();
    }
    const noProject = await segment(maps, join(dir, 'nowhere'));
    assert.equal(noProject.code, 2);
    oneLine(noProject.err, join(dir, 'nowhere'));

    let p = await Project.open(folder);
    try {
      assert.deepEqual(p.info.maps, {}, 'refused runs store nothing');
      assert.equal(p.info.resultsStoredAt, null);
    } finally {
      await p.close();
    }

    // With --membrane the given map is the slice's one stored map, beside the labels made from it.
    const ok = await run(['segment', maps, '--membrane', maps, '--out', out, '--min-size', '2', '--slices', '1-2', '--project', folder, '--quiet']);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /labels of 2 slices went in directly, 0 slices became proposals/);
    p = await Project.open(folder);
    try {
      assert.equal(p.mapRounds(1), 1);
      assert.deepEqual((await p.map(2))!.data, ridgeMap(2).data);
      assert.deepEqual(Array.from((await p.slice('labels', 1)).data.subarray(0, 9)), [1, 1, 1, 1, 0, 2, 2, 2, 2]);
      assert.ok(!p.hasSlice('labels', 0));
    } finally {
      await p.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
