// Tiled inference must equal whole-slice inference (no seams) on a 1500×1100 slice, and test-time augmentation must
// undo its own flips and rotations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf } from '../tfjs/backend';
import { buildModel, sizeMultiple, type ModelConfig } from '../models';
import { exportOnnx } from '../onnx/export';
import { createOnnxModel, type MapModel } from './onnx-session';
import { countTiles, dihedral, predictTiled, undoDihedral } from './tiled';
import { defaultMargin } from './receptive-field';
import { perturbBatchNorm, pseudoRandom } from '../models/test-helpers';

test('tiled equals whole-slice within 1e-4 on a 1500×1100 slice', async () => {
  await initTf('cpu');
  const cfg: ModelConfig = { kind: 'unet', baseChannels: 4, depth: 3, inChannels: 1 };
  const model = buildModel(cfg);
  perturbBatchNorm(model);
  const session = await createOnnxModel(exportOnnx(model), { threads: 2 });
  const [h, w] = [1100, 1500];
  const x = pseudoRandom(h * w, 9, 2);
  const multiple = sizeMultiple(cfg);
  const margin = defaultMargin(cfg, multiple);
  const whole = await predictTiled(session, x, 1, h, w, { tilePx: 4096, marginPx: margin, multiple });
  const opts = { tilePx: 384, marginPx: margin, multiple };
  assert.ok(countTiles(h, w, opts) >= 12, 'the slice is really cut into many tiles');
  const tiled = await predictTiled(session, x, 1, h, w, opts);
  let maxErr = 0;
  for (let i = 0; i < whole.length; i++) maxErr = Math.max(maxErr, Math.abs(whole[i] - tiled[i]));
  assert.ok(maxErr < 1e-4, `max |tiled − whole| = ${maxErr}`);
  await session.release();
  model.dispose();
});

test('dihedral transforms are undone exactly', () => {
  const [h, w] = [3, 5];
  const img = Float32Array.from({ length: h * w }, (_, i) => i);
  for (let k = 0; k < 8; k++) {
    const t = dihedral(img, 1, h, w, k);
    assert.equal(t.h * t.w, h * w);
    assert.deepEqual(Array.from(undoDihedral(t.data, h, w, k)), Array.from(img), `transform ${k}`);
  }
  // Transform 1 flips x: the first row reversed.
  assert.deepEqual(Array.from(dihedral(img, 1, h, w, 1).data.subarray(0, 5)), [4, 3, 2, 1, 0]);
});

test('8-fold TTA of an orientation-equivariant model returns the model output', async () => {
  // A model that returns its input (per pixel) is equivariant to every flip and rotation: TTA must give it back.
  const identity: MapModel = { run: async (input) => input.slice(), release: async () => undefined };
  const [h, w] = [6, 10];
  const x = pseudoRandom(h * w, 4);
  const out = await predictTiled(identity, x, 1, h, w, { tilePx: 64, marginPx: 0, multiple: 1, tta: true });
  for (let i = 0; i < x.length; i++) assert.ok(Math.abs(out[i] - x[i]) < 1e-6);
});
