// Neural-network relief scores and the α rule, on cases small enough to compute by hand; and the global magnitude
// baseline keeps exactly the requested count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { absConvNorm, magnitudeKeep, reliefKeep, reliefScores } from './relief';

test('‖|k| ∗ |x|‖_F with same padding, by hand', () => {
  // 1×1 kernel −2 on x = [1, −3]: |k|·|x| = [2, 6], norm √40.
  assert.ok(Math.abs(absConvNorm(Float32Array.of(-2), 0, 1, 1, Float32Array.of(1, -3), 0, 1, 2) - Math.sqrt(40)) < 1e-12);
  // 3×3 of ones on a single pixel of value −1 (h = w = 1): only the centre tap lands, value 1.
  assert.equal(absConvNorm(new Float32Array(9).fill(1), 0, 3, 3, Float32Array.of(-1), 0, 1, 1), 1);
  // 1×3 kernel [1, 0, 2] on the row [1, 1] (zero padded): y0 = 1·0 + 0·x0 + 2·x1 = 2, y1 = 1·x0 + 0·x1 + 2·0 = 1 → √5.
  assert.ok(Math.abs(absConvNorm(Float32Array.of(1, 0, 2), 0, 1, 3, Float32Array.of(1, 1), 0, 1, 2) - Math.sqrt(5)) < 1e-12);
});

test('relief scores share each filter\'s total with its bias, and α keeps the smallest sufficient set', () => {
  // co = 2, ci = 3, 1×1 kernels, one 1×1 input x = (1, 2, −4). Filter 0: k = (1, 1, 0.5), no bias → terms (1, 2, 2) / 5.
  // Filter 1: k = (0, 3, 0), bias 1 → terms (0, 6, 0), bias term 1 → (0, 6/7, 0).
  const s = reliefScores([Float32Array.of(1, 2, -4)], 1, 1, Float32Array.of(1, 1, 0.5, 0, 3, 0), Float32Array.of(0, 1), 2, 3, 1, 1);
  const expect = [0.2, 0.4, 0.4, 0, 6 / 7, 0];
  s.forEach((v, i) => assert.ok(Math.abs(v - expect[i]) < 1e-6, `s[${i}] = ${v}, expected ${expect[i]}`));
  // α = 0.75: filter 0 needs 0.4 + 0.4 (ties: lower channel first) = 0.8; filter 1 keeps channel 1 (6/7 ≥ 0.75).
  assert.deepEqual([...reliefKeep(s, 2, 3, 0.75)], [0, 1, 1, 0, 1, 0]);
  // α = 0.9: filter 0 needs all three; filter 1 cannot reach 0.9 without its bias, and its silent connections
  // (score 0) are still not kept.
  assert.deepEqual([...reliefKeep(s, 2, 3, 0.9)], [1, 1, 1, 0, 1, 0]);
});

test('global magnitude pruning keeps exactly the requested count, ties in order', () => {
  const m = magnitudeKeep([Float32Array.of(0.1, -3, 2), Float32Array.of(2, 0.5)], 3);
  assert.deepEqual(m.map((x) => [...x]), [[0, 1, 1], [1, 0]]);
  const t = magnitudeKeep([Float32Array.of(1, 1, 1, 1)], 2);
  assert.deepEqual([...t[0]], [1, 1, 0, 0]);
});
