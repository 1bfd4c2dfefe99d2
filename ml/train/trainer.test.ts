// The moving average of the weights: the plain mean while its window fills, then the given decay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightAverage } from './trainer';

test('the weight average is the mean of the updates until its window is full, then decays', () => {
  const avg = new WeightAverage(0.75, [Float32Array.of(100, 100)]);
  avg.update([Float32Array.of(1, 2)]);
  assert.deepEqual(Array.from(avg.values[0]), [1, 2], 'the starting weights are forgotten at the first update');
  avg.update([Float32Array.of(3, 4)]);
  avg.update([Float32Array.of(5, 9)]);
  assert.deepEqual(Array.from(avg.values[0]), [3, 5], 'the mean of three updates');
  // From update 4 on (window 1 / (1 − 0.75) = 4), each update moves a quarter of the way.
  avg.update([Float32Array.of(7, 5)]);
  assert.deepEqual(Array.from(avg.values[0]), [4, 5]);
  avg.update([Float32Array.of(8, 9)]);
  assert.deepEqual(Array.from(avg.values[0]), [5, 6]);
  assert.equal(avg.updates, 5);
});
