// `emseg train-refiner --init`: continues an existing refiner (its config, recorded as initFrom), and refuses options
// that contradict it or a model that is not a refiner, with a one-line error and exit code 2. The result's record and
// model card name the user's training data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './test-run';
import { gridStack, tinyModel } from '../../engine/fixtures';
import type { ModelRecord } from '../../engine/model-store';
import { initTf } from '../../../ml/tfjs/backend';

/** A grid stack, a tiny membrane model and the data options for them, in a temporary folder removed afterwards. */
async function withRefinerData(prefix: string, body: (dir: string, data: { images: string; labels: string; membrane: string; args: string[] }) => Promise<void>): Promise<void> {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    const { images, labels } = await gridStack(dir);
    const membrane = await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1 }, 'membrane', undefined, 7);
    const args = ['--images', images, '--labels', labels, '--label-membrane-value', '0', '--val-slices', '3', '--membrane', membrane, '--quiet'];
    await body(dir, { images, labels, membrane, args });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('train-refiner --init continues a refiner with its own config and refuses contradicting options', async () => {
  await withRefinerData('emseg-train-refiner-', async (dir, { images, labels, membrane, args: data }) => {
    const init = await tinyModel(join(dir, 'init'), { kind: 'refiner', inChannels: 1, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 1, 8);
    const run = ['train-refiner', ...data, '--stages', '1', '--steps', '2', '--batch', '1', '--crop', '24', '--workers', '1', '--max-rounds', '1'];
    const clash = await runCli([...run, '--init', init, '--channels', '5', '--out', join(dir, 'a')]);
    assert.equal(clash.code, 2);
    assert.match(clash.err, /^emseg train-refiner: --channels 5 disagrees with --init .*\(3\)\n$/);
    const notRefiner = await runCli([...run, '--init', membrane, '--out', join(dir, 'b')]);
    assert.equal(notRefiner.code, 2);
    assert.match(notRefiner.err, /not a refiner/);

    const out = join(dir, 'out');
    const ok = await runCli([...run, '--init', init, '--out', out]);
    assert.equal(ok.code, 0, ok.err);
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as ModelRecord;
    const start = JSON.parse(await readFile(join(init, 'model.json'), 'utf8')) as ModelRecord;
    assert.deepEqual(record.config, start.config, 'the architecture comes from --init (its headLayers 1 is not the default 2)');
    assert.equal((record.training as Record<string, unknown>).initFrom, init);
    // The record names the training data, and the model card credits it — not the ISBI stack it was not trained on.
    assert.equal((record.training as Record<string, unknown>).images, images);
    assert.equal((record.training as Record<string, unknown>).valSlices, '3');
    const card = await readFile(join(out, 'README.md'), 'utf8');
    assert.ok(card.includes(`## Data\n\nTrained on ${images} with labels ${labels} (training slices `), card);
    assert.doesNotMatch(card, /ISBI|Cardona/);
  });
});

test('train-refiner --raw-path open records the open raw path, and refuses it without the raw channel', async () => {
  await withRefinerData('emseg-train-refiner-open-', async (dir, { args: data }) => {
    const run = ['train-refiner', ...data, '--stages', '1', '--steps', '2', '--batch', '1', '--crop', '24', '--workers', '1', '--max-rounds', '1',
      '--channels', '3', '--branch-layers', '2'];
    const noRaw = await runCli([...run, '--no-raw', '--raw-path', 'open', '--out', join(dir, 'a')]);
    assert.equal(noRaw.code, 2);
    assert.match(noRaw.err, /^emseg train-refiner: --raw-path and --raw-layers need the raw channel/);
    const bad = await runCli([...run, '--raw-path', 'wide', '--out', join(dir, 'b')]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--raw-path wide: expected blind or open/);

    const out = join(dir, 'out');
    const ok = await runCli([...run, '--raw-path', 'open', '--raw-layers', '3', '--out', out]);
    assert.equal(ok.code, 0, ok.err);
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as ModelRecord;
    assert.deepEqual(record.config, { kind: 'refiner', inChannels: 2, channels: 3, branchLayers: 2, headLayers: 2, rawPath: 'open', rawLayers: 3 });
    assert.match(await readFile(join(out, 'README.md'), 'utf8'), /read by its own convolutions, centre pixel included/);
  });
});
