// The pipeline cuts each round's map at the watershed thresholds stored with the models for that round (tuned on
// training slices), unless the caller gives its own; tiny random models, so only the plumbing is under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextNote, runPipeline, type PipelineOptions } from './pipeline';
import { loadInferenceModel } from './models';
import { predictTiled } from '../../ml/infer/tiled';
import { resample } from '../../ml/infer/resample';
import { normalizeSlice } from '../../ml/train/normalize';
import { tinyModel } from './fixtures';
import type { ModelRecord } from './model-store';
import { writeTiffStack } from '../io';
import { initTf } from '../../ml/tfjs/backend';
import { pseudoRandom } from '../../ml/models/test-helpers';
import { segment } from '../../ml/segmentation';
import type { TunedSegmentation } from '../../ml/segmentation/tune';

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((d, v, i) => Math.max(d, Math.abs(v - b[i])), 0);

async function one(opts: PipelineOptions): Promise<{ maps: Float32Array[]; labels: Uint32Array; notices: string[]; w: number; h: number }> {
  const notices: string[] = [];
  for await (const r of runPipeline({ ...opts, onNotice: (m) => notices.push(m) })) {
    return { maps: r.rounds.map((m) => m.data), labels: r.labels!.data as Uint32Array, notices, w: r.rounds[0].width, h: r.rounds[0].height };
  }
  throw new Error('no slice');
}

test('the pipeline segments with the thresholds stored for the rounds it runs; given thresholds win', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-pipeline-'));
  try {
    const membrane = await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 1 }, 'membrane', undefined, 3);
    const refiner = await tinyModel(join(dir, 'refiner'), { kind: 'refiner', inChannels: 1, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 1, 4);
    const tuned: TunedSegmentation = {
      method: 'watershed', tunedOn: 'training slices 0-3', maps: 'test',
      perRound: [
        { round: 0, seedThreshold: 0.9, agglomerationThreshold: 0, vrand: 0.5, vinfo: 0.5 },
        { round: 1, seedThreshold: 0.95, agglomerationThreshold: 0.99, vrand: 0.5, vinfo: 0.5 },
      ],
    };
    const path = join(refiner, 'model.json');
    const record = JSON.parse(await readFile(path, 'utf8')) as ModelRecord;
    await writeFile(path, JSON.stringify({ ...record, segmentation: tuned }));
    const [w, h] = [40, 32];
    const stack = join(dir, 'stack.tif');
    await writeTiffStack(stack, [{ width: w, height: h, data: Uint8Array.from(pseudoRandom(w * h, 5, 255).map((v) => Math.abs(v))) }]);

    const r1 = await one({ stack, membraneModel: membrane, refiner, rounds: 1 });
    const map1 = { width: w, height: h, data: r1.maps[1] };
    const expected1 = segment(map1, { seedThreshold: 0.95, agglomerationThreshold: 0.99 });
    assert.notDeepEqual(Array.from(segment(map1).data), Array.from(expected1.data), 'the stored thresholds make a difference here');
    assert.deepEqual(Array.from(r1.labels), Array.from(expected1.data), 'round 1 is cut at its stored thresholds');
    assert.ok(r1.notices.some((n) => n.includes('chosen for round 1 on the training slices 0-3')), r1.notices.join('; '));

    // No refinement: the refiner is not run, but its round-0 row applies to the membrane model's map.
    const r0 = await one({ stack, membraneModel: membrane, refiner, rounds: 0 });
    const map0 = { width: w, height: h, data: r0.maps[0] };
    assert.equal(r0.maps.length, 1);
    assert.deepEqual(Array.from(r0.labels), Array.from(segment(map0, { seedThreshold: 0.9, agglomerationThreshold: 0 }).data));

    // A caller's threshold wins over the stored one; the other stored one still applies.
    const own = await one({ stack, membraneModel: membrane, refiner, rounds: 1, segment: { seedThreshold: 0.2 } });
    assert.deepEqual(Array.from(own.labels), Array.from(segment(map1, { seedThreshold: 0.2, agglomerationThreshold: 0.99 }).data));
    assert.ok(own.notices.some((n) => n.startsWith('segmentation: your thresholds')));

    // A round without a stored row: the defaults, and no notice.
    const r2 = await one({ stack, membraneModel: membrane, refiner, rounds: 2 });
    assert.deepEqual(Array.from(r2.labels), Array.from(segment({ width: w, height: h, data: r2.maps[2] }).data));
    assert.ok(!r2.notices.some((n) => n.startsWith('segmentation:')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a stack of another pixel size runs resized to the model\'s, and its maps come back at the stack\'s size', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-pixel-'));
  try {
    const membrane = await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 1 }, 'membrane', undefined, 3);
    const path = join(membrane, 'model.json');
    await writeFile(path, JSON.stringify({ ...(JSON.parse(await readFile(path, 'utf8')) as ModelRecord), pixelSizeNm: 4 }));
    const [w, h] = [40, 32];
    const raw = { width: w, height: h, data: Uint8Array.from(pseudoRandom(w * h, 7, 255).map((v) => Math.abs(v))) };
    const at8 = join(dir, 'at8.tif');
    await writeTiffStack(at8, [raw], { pixelSizeNm: { x: 8, y: 8, z: 50 } });
    const bare = join(dir, 'bare.tif');
    await writeTiffStack(bare, [raw]);

    // What resizing means: the model runs on the slice enlarged 2× (80 × 64), its map is shrunk back.
    const m = await loadInferenceModel(membrane);
    const tiling = { tilePx: 1024, marginPx: m.marginPx, multiple: m.multiple };
    const big = await predictTiled(m.session, resample(normalizeSlice(raw), 1, h, w, 2 * h, 2 * w), 1, 2 * h, 2 * w, tiling);
    const expected = resample(big, 1, 2 * h, 2 * w, h, w);
    const direct = await predictTiled(m.session, normalizeSlice(raw), 1, h, w, tiling);
    await m.session.release();
    assert.ok(maxDiff(expected, direct) > 1e-3, 'resizing changes the map of this model');

    const r = await one({ stack: at8, membraneModel: membrane, refiner: null });
    assert.deepEqual([r.w, r.h, r.labels.length], [w, h, w * h], 'maps and labels at the stack\'s own size');
    assert.ok(maxDiff(r.maps[0], expected) < 1e-5, `resized run: max difference ${maxDiff(r.maps[0], expected)}`);

    // Refinement runs on the enlarged map (not on the map shrunk back), and its rounds come back at the stack's size.
    const refiner = await tinyModel(join(dir, 'refiner'), { kind: 'refiner', inChannels: 1, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 1, 4);
    const rm1 = await loadInferenceModel(refiner);
    const round1 = resample(await predictTiled(rm1.session, big, 1, 2 * h, 2 * w, { tilePx: 1024, marginPx: rm1.marginPx, multiple: 1 }), 1, 2 * h, 2 * w, h, w);
    await rm1.session.release();
    const refined = await one({ stack: at8, membraneModel: membrane, refiner, rounds: 1 });
    assert.equal(refined.maps.length, 2);
    assert.ok(maxDiff(refined.maps[0], expected) < 1e-5);
    assert.ok(maxDiff(refined.maps[1], round1) < 1e-5, `round 1: max difference ${maxDiff(refined.maps[1], round1)}`);
    assert.ok(r.notices.some((n) => n.includes('stack 8 nm, model 4 nm') && n.includes('resized 2×')), r.notices.join('; '));

    const asked = await one({ stack: at8, membraneModel: membrane, refiner: null, noRescale: true });
    assert.ok(maxDiff(asked.maps[0], direct) < 1e-5, '--no-rescale runs at the stack\'s size');
    assert.ok(asked.notices.some((n) => n.includes('as asked (--no-rescale)')), asked.notices.join('; '));

    // --pixel-size wins over the metadata; within 10 % of the model's nothing is resized and nothing said.
    const given = await one({ stack: at8, membraneModel: membrane, refiner: null, pixelSizeNm: 4.3 });
    assert.ok(maxDiff(given.maps[0], direct) < 1e-5);
    assert.ok(!given.notices.some((n) => n.startsWith('pixel size')), given.notices.join('; '));

    const unknown = await one({ stack: bare, membraneModel: membrane, refiner: null });
    assert.ok(maxDiff(unknown.maps[0], direct) < 1e-5);
    assert.ok(unknown.notices.some((n) => n.includes('does not say its own') && n.includes('--pixel-size')), unknown.notices.join('; '));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a z-context model reads each slice with its neighbours from the stack, mirrored at the ends', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-pipeline-z-'));
  try {
    const membrane = await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 3, zContext: 1 }, 'membrane', undefined, 6);
    const [w, h] = [24, 20];
    const raws = [7, 8, 9].map((s) => ({ width: w, height: h, data: Uint8Array.from(pseudoRandom(w * h, s, 255).map((v) => Math.abs(v))) }));
    const stack = join(dir, 'stack.tif');
    await writeTiffStack(stack, raws);
    const got: Float32Array[] = [];
    for await (const r of runPipeline({ stack, membraneModel: membrane, refiner: null, skipSegmentation: true })) got.push(r.rounds[0].data);
    // The same slices in reverse order: each slice's input is read anew, whatever came before.
    const back: Float32Array[] = [];
    for await (const r of runPipeline({ stack, membraneModel: membrane, refiner: null, skipSegmentation: true, slices: [2, 1, 0] })) back.unshift(r.rounds[0].data);
    const m = await loadInferenceModel(membrane);
    const norm = raws.map((r) => normalizeSlice(r));
    const direct = async (ids: number[]) => predictTiled(m.session, Float32Array.from(ids.flatMap((i) => Array.from(norm[i]))), 3, h, w, { tilePx: 1024, marginPx: m.marginPx, multiple: m.multiple });
    const expected = [await direct([1, 0, 1]), await direct([0, 1, 2]), await direct([1, 2, 1])];
    const wrong = await direct([1, 1, 1]);
    await m.session.release();
    for (let z = 0; z < 3; z++) {
      assert.ok(maxDiff(got[z], expected[z]) < 1e-5, `slice ${z}: max difference ${maxDiff(got[z], expected[z])}`);
      assert.ok(maxDiff(back[z], expected[z]) < 1e-5, `slice ${z} in reverse order`);
    }
    assert.ok(maxDiff(got[1], wrong) > 1e-3, 'the neighbours change the middle slice\'s map');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a z-context model says when the stack has one slice or sections far from its own', () => {
  assert.equal(contextNote(0, 1, 8, 50), null, 'a single-slice model says nothing');
  assert.match(contextNote(1, 1, undefined, 50) ?? '', /this stack has one; it reads the slice itself/);
  assert.match(contextNote(1, 30, 8, 50) ?? '', /sections 50 nm apart and this stack's are 8 nm/);
  assert.equal(contextNote(1, 30, 45, 50), null, 'within 25 %');
  assert.equal(contextNote(1, 30, undefined, 50), null, 'unknown: nothing to compare');
});
