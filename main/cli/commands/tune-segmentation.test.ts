// `emseg tune-segmentation` on tiny models and a small labelled stack: every round's thresholds land in the refiner's
// model.json and model card (or, with --no-refiner, round 0 in the membrane model's), the number of rounds is chosen
// again on validation, and nothing else in it changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../index';
import { gridStack, tinyModel } from '../../engine/fixtures';
import type { ModelRecord } from '../../engine/model-store';
import { initTf } from '../../../ml/tfjs/backend';

test('tune-segmentation stores each round\'s thresholds with the refiner, or round 0 with the membrane model', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-tune-'));
  try {
    const { images, labels: gt } = await gridStack(dir);
    const membrane = await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1 }, 'membrane', undefined, 7);
    const refiner = await tinyModel(join(dir, 'refiner'), { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 1, 8);
    const data = ['--images', images, '--labels', gt, '--label-membrane-value', '0', '--val-slices', '3', '--membrane', membrane, '--quiet'];
    const before = JSON.parse(await readFile(join(refiner, 'model.json'), 'utf8')) as ModelRecord;

    assert.equal(await main(['tune-segmentation', ...data, '--refiner', refiner]), 0);
    const after = JSON.parse(await readFile(join(refiner, 'model.json'), 'utf8')) as ModelRecord;
    assert.deepEqual(after.segmentation?.perRound.map((r) => r.round), [0, 1, 2, 3], 'rounds 0..stored rounds + 2');
    assert.equal(after.segmentation?.tunedOn, 'training slices 0-2');
    // The rounds are chosen again on validation: the best V_rand of the labels at each round's new thresholds.
    const rows = (after.validation as { perRound: Record<string, number>[]; roundsChosenBy: string }).perRound;
    assert.deepEqual(rows.map((r) => r.round), [0, 1, 2, 3]);
    for (const r of rows) assert.ok(r.labelsVrand > 0 && r.labelsVrand <= 1 && r.vrand > 0 && r.vrand <= 1);
    const bestRound = rows.reduce((b, r) => (r.labelsVrand > b.labelsVrand ? r : b)).round;
    assert.equal(after.rounds, bestRound);
    assert.match((after.validation as { roundsChosenBy: string }).roundsChosenBy, /labels/);
    const strip = (r: ModelRecord) => ({ ...r, segmentation: undefined, rounds: undefined, validation: undefined });
    assert.deepEqual(strip(after), strip(before), 'nothing else changed');
    assert.match(await readFile(join(refiner, 'README.md'), 'utf8'), /## Segmentation[\s\S]*\| 3 \| /);

    assert.equal(await main(['tune-segmentation', ...data, '--no-refiner']), 0);
    const m = JSON.parse(await readFile(join(membrane, 'model.json'), 'utf8')) as ModelRecord;
    assert.deepEqual(m.segmentation?.perRound.map((r) => r.round), [0]);

    assert.equal(await main(['tune-segmentation', ...data, '--refiner', join(dir, 'nowhere')]), 2, 'a missing model is a user error');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
