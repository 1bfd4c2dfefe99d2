// `emseg tune-segmentation` on tiny models and a small labelled stack: every round's thresholds land in the refiner's
// model.json and model card (or, with --no-refiner, round 0 in the membrane model's), and nothing else in it changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../index';
import { writeTiffStack } from '../../io';
import { tinyModel } from '../../engine/fixtures';
import type { ModelRecord } from '../../engine/model-store';
import { initTf } from '../../../ml/tfjs/backend';
import { Rng } from '../../../ml/train/rng';

test('tune-segmentation stores each round\'s thresholds with the refiner, or round 0 with the membrane model', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-tune-'));
  try {
    const size = 48;
    const raws: Uint8Array[] = [];
    const labels: Uint8Array[] = [];
    for (let z = 0; z < 4; z++) {
      const rng = new Rng(z + 1);
      const raw = new Uint8Array(size * size);
      const label = new Uint8Array(size * size);
      for (let i = 0; i < size * size; i++) {
        const m = (i % size) % 12 < 2 || Math.floor(i / size) % 12 < 2;
        label[i] = m ? 0 : 255;
        raw[i] = Math.max(0, Math.min(255, (m ? 60 : 170) + 30 * rng.normal()));
      }
      raws.push(raw);
      labels.push(label);
    }
    const images = join(dir, 'image.tif');
    const gt = join(dir, 'label.tif');
    await writeTiffStack(images, raws.map((data) => ({ width: size, height: size, data })));
    await writeTiffStack(gt, labels.map((data) => ({ width: size, height: size, data })));
    const membrane = await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1 }, 'membrane', undefined, 7);
    const refiner = await tinyModel(join(dir, 'refiner'), { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 1, 8);
    const data = ['--images', images, '--labels', gt, '--label-membrane-value', '0', '--val-slices', '3', '--membrane', membrane, '--quiet'];
    const before = JSON.parse(await readFile(join(refiner, 'model.json'), 'utf8')) as ModelRecord;

    assert.equal(await main(['tune-segmentation', ...data, '--refiner', refiner]), 0);
    const after = JSON.parse(await readFile(join(refiner, 'model.json'), 'utf8')) as ModelRecord;
    assert.deepEqual(after.segmentation?.perRound.map((r) => r.round), [0, 1, 2, 3], 'rounds 0..stored rounds + 2');
    assert.equal(after.segmentation?.tunedOn, 'training slices 0-2');
    assert.deepEqual({ ...after, segmentation: undefined }, { ...before, segmentation: undefined }, 'nothing else changed');
    assert.match(await readFile(join(refiner, 'README.md'), 'utf8'), /## Segmentation[\s\S]*\| 3 \| /);

    assert.equal(await main(['tune-segmentation', ...data, '--no-refiner']), 0);
    const m = JSON.parse(await readFile(join(membrane, 'model.json'), 'utf8')) as ModelRecord;
    assert.deepEqual(m.segmentation?.perRound.map((r) => r.round), [0]);

    assert.equal(await main(['tune-segmentation', ...data, '--refiner', join(dir, 'nowhere')]), 2, 'a missing model is a user error');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
