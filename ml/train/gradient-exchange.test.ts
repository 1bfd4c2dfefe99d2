// Replicas' gradients through the shared slots, and the weighted sum a replica applies from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { GradientExchange, exchangeBytes } from './gradient-exchange';
import { Replica, getWeights } from './trainer';

test('the exchange keeps every replica\'s gradients of a step, in two parities', () => {
  const layout = { sizes: [3, 2], replicas: 2 };
  const buffer = new SharedArrayBuffer(exchangeBytes(layout));
  // Two views of the same memory, as two worker threads hold.
  const a = new GradientExchange(buffer, layout);
  const b = new GradientExchange(buffer, layout);
  a.write(4, 0, [Float32Array.of(1, 2, 3), Float32Array.of(10, 20)]);
  b.write(4, 1, [Float32Array.of(5, 6, 7), Float32Array.of(30, 40)]);
  // The next step's gradients go to the other parity and leave step 4's intact.
  a.write(5, 0, [Float32Array.of(100, 100, 100), Float32Array.of(100, 100)]);
  const seen = b.read(4).map((replica) => replica.map((g) => Array.from(g)));
  assert.deepEqual(seen, [[[1, 2, 3], [10, 20]], [[5, 6, 7], [30, 40]]]);
  assert.deepEqual(Array.from(b.read(5)[0][1]), [100, 100]);
  // Step 6 shares step 4's parity.
  b.write(6, 1, [Float32Array.of(0, 0, 0), Float32Array.of(0, 0)]);
  assert.deepEqual(Array.from(a.read(4)[1][0]), [0, 0, 0]);
});

test('the exchange rejects gradients and buffers of the wrong size', () => {
  const layout = { sizes: [4], replicas: 1 };
  assert.throws(() => new GradientExchange(new ArrayBuffer(8), layout), /buffer of 8 bytes, 32 needed/);
  const x = new GradientExchange(new ArrayBuffer(exchangeBytes(layout)), layout);
  assert.throws(() => x.write(0, 0, [Float32Array.of(1, 2)]), /gradient 0 has 2 values, 4 expected/);
  assert.throws(() => x.write(0, 0, []), /0 gradients for 1 variables/);
});

test('a replica applies the share-weighted sum of the slots as it would apply the averaged gradient', async () => {
  await tf.setBackend('cpu');
  const model = () => {
    const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3], kernelInitializer: 'ones' })] });
    return m;
  };
  const one = new Replica(model(), 0.1);
  const two = new Replica(model(), 0.1);
  const layout = { sizes: [6, 2], replicas: 2 };
  const x = new GradientExchange(new SharedArrayBuffer(exchangeBytes(layout)), layout);
  const g0 = [Float32Array.of(1, 2, 3, 4, 5, 6), Float32Array.of(1, -1)];
  const g1 = [Float32Array.of(3, 2, 1, 0, -1, -2), Float32Array.of(-3, 5)];
  x.write(0, 0, g0);
  x.write(0, 1, g1);
  one.applyWeightedSum(x.read(0), [0.75, 0.25]);
  two.applyGradients(g0.map((g, k) => g.map((v, i) => 0.75 * v + 0.25 * g1[k][i])));
  const w1 = getWeights(one.model);
  const w2 = getWeights(two.model);
  for (let k = 0; k < w1.length; k++) for (let i = 0; i < w1[k].length; i++) assert.ok(Math.abs(w1[k][i] - w2[k][i]) < 1e-6, `weight ${k}[${i}]`);
  assert.notDeepEqual(Array.from(w1[0]), [1, 1, 1, 1, 1, 1], 'the step moved the weights');
});
