// The moving average of the weights: its warm-up and its decay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightAverage } from './trainer';

test('the weight average ramps its decay up, then averages with the given decay', () => {
  const avg = new WeightAverage(0.9, [Float32Array.of(0, 10)]);
  // First update: decay min(0.9, 2/11), so the average moves most of the way to the new weights.
  avg.update([Float32Array.of(11, 0)]);
  assert.ok(Math.abs(avg.values[0][0] - 11 * (9 / 11)) < 1e-5);
  assert.ok(Math.abs(avg.values[0][1] - 10 * (2 / 11)) < 1e-5);
  // After the ramp (t ≥ 80), each update moves 10 % of the way.
  avg.updates = 100;
  const before = avg.values[0][0];
  avg.update([Float32Array.of(before + 1, 0)]);
  assert.ok(Math.abs(avg.values[0][0] - (before + 0.1)) < 1e-5);
  assert.equal(avg.updates, 101);
});
