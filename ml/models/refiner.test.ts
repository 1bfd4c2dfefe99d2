// The refiner is a blind-spot network: its output at a pixel must not depend on that pixel's input (map or raw), while
// it does depend on the pixel's neighbours in all four directions — the dense form of Wu's centre-removed patches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { buildRefiner } from './refiner';
import { pseudoRandom, seedWeights } from './test-helpers';

test('refiner output at a pixel ignores that pixel and sees its neighbours', async () => {
  await initTf('cpu');
  const cfg = { kind: 'refiner' as const, inChannels: 2, branchLayers: 3, channels: 4, headLayers: 1 };
  const model = buildRefiner(cfg);
  // Positive weights and inputs keep every ReLU active, so a change can only be hidden by the architecture itself.
  seedWeights(model, 5, { positive: true });
  const [h, w, c] = [15, 17, 2];
  const base = pseudoRandom(h * w * c, 3, 2).map((v) => Math.abs(v) + 0.1);
  const predict = (x: Float32Array) => tf.tidy(() => model.predict(tf.tensor4d(x, [1, h, w, c])) as tf.Tensor).dataSync();
  const y0 = predict(base);
  const [cy, cx] = [7, 8];
  const at = (y: number, x: number) => y * w + x;
  for (let ch = 0; ch < c; ch++) {
    const x = base.slice();
    x[at(cy, cx) * c + ch] += 5;
    const y1 = predict(x);
    assert.equal(y1[at(cy, cx)], y0[at(cy, cx)], `channel ${ch}: the centre output must not change`);
    for (const [dy, dx] of [[-1, 0], [1, 0], [0, -1], [0, 1]]) {
      assert.notEqual(y1[at(cy + dy, cx + dx)], y0[at(cy + dy, cx + dx)], `channel ${ch}: neighbour (${dy},${dx}) must see the change`);
    }
  }
  model.dispose();
});
