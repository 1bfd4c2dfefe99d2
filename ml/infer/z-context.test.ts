// Z-context inputs: which slices a slice reads, the two layouts, and a 2D model widened to read its neighbours that
// predicts exactly what it did until its new weights move.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contextChannels, contextIndices, interleaved, planar, widenInputKernel } from './z-context';
import { buildModel, type UNetConfig } from '../models';
import { seedWeights, perturbBatchNorm, pseudoRandom } from '../models/test-helpers';
import { getWeights, setWeights } from '../train/trainer';
import { predictTf } from './predict-tf';
import { initTf } from '../tfjs/backend';

test('a slice reads z − k … z + k, missing neighbours mirrored, and a lone slice repeats itself', () => {
  const inRange = (n: number) => (i: number) => i >= 0 && i < n;
  assert.deepEqual(contextIndices(5, 1, inRange(10)), [4, 5, 6]);
  assert.deepEqual(contextIndices(0, 1, inRange(10)), [1, 0, 1]);
  assert.deepEqual(contextIndices(9, 2, inRange(10)), [7, 8, 9, 8, 7]);
  assert.deepEqual(contextIndices(0, 1, inRange(1)), [0, 0, 0]);
  assert.deepEqual(contextIndices(3, 0, inRange(10)), [3]);
  // A held-out slice next to the set is never read: the set's own slice on the other side is.
  const train = new Set([0, 1, 2, 3]);
  assert.deepEqual(contextIndices(3, 1, (i) => train.has(i)), [2, 3, 2]);
  assert.equal(contextChannels(2), 5);
});

test('planar puts channels one after the other, interleaved pixel by pixel', () => {
  const a = Float32Array.of(1, 2, 3);
  const b = Float32Array.of(4, 5, 6);
  assert.deepEqual(Array.from(planar([a, b])), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(interleaved([a, b])), [1, 4, 2, 5, 3, 6]);
  assert.equal(planar([a]), a);
});

test('a U-Net widened to z-context 1 predicts what the 2D model did, until its new weights are nonzero', async () => {
  await initTf('cpu');
  const cfg: UNetConfig = { kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1 };
  const flat = buildModel(cfg);
  seedWeights(flat, 3);
  perturbBatchNorm(flat);
  const weights = getWeights(flat).map((w) => new Float32Array(w));
  const wide = buildModel({ ...cfg, inChannels: 3, zContext: 1 });
  const widened = [widenInputKernel(weights[0], 9, 1, 3, 1), ...weights.slice(1)];
  setWeights(wide, widened);
  const [w, h] = [12, 10];
  const [below, centre, above] = [1, 2, 3].map((s) => pseudoRandom(w * h, s, 2));
  const expected = predictTf(flat, centre, w, h, 1, 2);
  const got = predictTf(wide, interleaved([below, centre, above]), w, h, 3, 2);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-6, `pixel ${i}: ${got[i]} vs ${expected[i]}`);
  // The neighbours do reach the output once their weights move.
  const moved = widened.map((x) => new Float32Array(x));
  moved[0][0] = 0.5; // tap 0, channel 0 (the slice below), first output channel
  setWeights(wide, moved);
  const after = predictTf(wide, interleaved([below, centre, above]), w, h, 3, 2);
  assert.ok(after.some((v, i) => Math.abs(v - expected[i]) > 1e-3), 'a weight on the slice below changes the map');
  assert.throws(() => widenInputKernel(weights[0], 9, 1, 3, 3), /inside 3/);
  flat.dispose();
  wide.dispose();
});
