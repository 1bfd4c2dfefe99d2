// Tiled inference must equal whole-slice inference (no seams) on a 1500×1100 slice, and test-time augmentation must
// undo its own flips and rotations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf } from '../tfjs/backend';
import { buildModel, sizeMultiple, type ModelConfig } from '../models';
import { exportOnnx } from '../onnx/export';
import { createOnnxModel, type MapModel } from './onnx-session';
import { countTiles, dihedral, predictTiled, tileAxis, undoDihedral } from './tiled';
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

test('tile layout: fewest, smallest tiles whose cores cover the axis', () => {
  for (const multiple of [1, 8, 16]) {
    for (const margin of [0, 13, 56, 112].map((g) => Math.ceil(g / multiple) * multiple)) {
      for (let n = multiple; n <= 5000; n += 97 * multiple) {
        for (const maxTile of [256, 1024, 2048].map((t) => Math.floor(t / multiple) * multiple)) {
          if (maxTile < n && maxTile - 2 * margin < multiple) continue;
          const { tile, starts } = tileAxis(n, maxTile, margin, multiple);
          const k = starts.length;
          assert.ok(tile <= Math.min(n, maxTile) && tile % multiple === 0, `tile ${tile} for n ${n}`);
          assert.equal(starts[0], 0);
          assert.equal(starts[k - 1], n - tile);
          for (let i = 0; i < k; i++) assert.equal(starts[i] % multiple, 0);
          // Core of tile i: [s + margin if not first, s + tile − margin if not last); consecutive cores must meet.
          for (let i = 1; i < k; i++) assert.ok(starts[i] + margin <= starts[i - 1] + tile - margin, `gap at n ${n}, tile ${tile}`);
          // Fewest tiles: k − 1 tiles of the largest edge could not have covered the axis.
          if (k > 1) assert.ok((k - 1) * maxTile - 2 * margin * (k - 2) < n, `n ${n}: ${k} tiles where ${k - 1} would do`);
        }
      }
    }
  }
  // The U-Net's margin on a 2048-px axis with 1024-px tiles: three tiles of 832 instead of 1024 (2.25× → 1.49× the pixels).
  assert.deepEqual(tileAxis(2048, 1024, 112, 16), { tile: 832, starts: [0, 608, 1216] });
  assert.throws(() => tileAxis(2048, 224, 112, 16), /too small/);
});
