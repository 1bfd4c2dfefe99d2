// The fused training batch norm must give tfjs-layers' numbers: the normalized output, the gradients with respect to
// the input, γ and β, and the moving averages after a training pass — on the cpu and the wasm backend, on wasm both in
// JavaScript loops and with the SIMD kernels (wasm-batchnorm.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWasm } from './backend';
import { TrainingBatchNorm, channelMoments, fusedBatchNormWanted } from './batchnorm-training';
import { BATCH_NORM_FORWARD, useWasmBatchNorm } from './wasm-batchnorm';

function rand(n: number, seed: number, scale = 1, offset = 0): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * scale + offset;
  }
  return a;
}

function maxRelErr(got: Float32Array, ref: Float32Array): number {
  let err = 0;
  let mag = 1e-6;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(got[i] - ref[i]));
    mag = Math.max(mag, Math.abs(ref[i]));
  }
  return err / mag;
}

interface Result {
  y: Float32Array;
  dx: Float32Array;
  dGamma: Float32Array;
  dBeta: Float32Array;
  movingMean: Float32Array;
  movingVariance: Float32Array;
}

function run(layer: tf.layers.Layer, shape: number[], channels: number): Result {
  const n = shape.reduce((a, b) => a * b, 1);
  // Channels with different means and spreads, as after a convolution.
  const x = tf.tensor(rand(n, 7, 3, 0.8), shape);
  const r = tf.tensor(rand(n, 11), shape);
  layer.apply(x, { training: false }); // builds the weights
  layer.setWeights([tf.tensor1d(rand(channels, 3, 1, 1)), tf.tensor1d(rand(channels, 5)), tf.tensor1d(rand(channels, 9)), tf.tensor1d(rand(channels, 13, 0.5, 1))]);
  const [gamma, beta] = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  let y: tf.Tensor | undefined;
  const { grads } = tf.variableGrads(() => {
    y = tf.keep(layer.apply(x, { training: true }) as tf.Tensor);
    return tf.sum(tf.mul(y, r)) as tf.Scalar;
  }, [gamma, beta]);
  const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(layer.apply(xi, { training: true }) as tf.Tensor, r)))(x);
  const w = layer.getWeights().map((t) => t.dataSync() as Float32Array);
  const out = {
    y: y!.dataSync() as Float32Array,
    dx: dx.dataSync() as Float32Array,
    dGamma: grads[gamma.name].dataSync() as Float32Array,
    dBeta: grads[beta.name].dataSync() as Float32Array,
    // Two training passes ran (variableGrads and grad), so the moving averages moved twice.
    movingMean: w[2],
    movingVariance: w[3],
  };
  tf.dispose([x, r, y!, dx, ...Object.values(grads)]);
  return out;
}

for (const variant of ['cpu', 'wasm', 'wasm SIMD kernels']) {
  test(`fused training batch norm equals tfjs-layers' on ${variant}`, async () => {
    const backend = variant === 'cpu' ? 'cpu' : 'wasm';
    if (backend === 'wasm') await registerWasm();
    await tf.setBackend(backend);
    await tf.ready();
    const simd = variant === 'wasm SIMD kernels';
    if (backend === 'wasm') useWasmBatchNorm(simd);
    // Count the SIMD forward kernel's runs, so that a silent fallback to the JavaScript loops fails the test.
    let kernelRuns = 0;
    const unsubscribe = countKernel(BATCH_NORM_FORWARD, () => kernelRuns++);
    try {
      assert.ok(fusedBatchNormWanted(), `the fused path is taken on ${backend}`);
      for (const [shape, eps] of [
        [[2, 5, 7, 4], 1e-3],
        [[1, 9, 4, 16], 1e-5],
        [[2, 32, 32, 8], 1e-3],
        [[2, 5, 7, 3], 1e-3], // 3 channels: the JavaScript loops, even on the SIMD path
      ] as [number[], number][]) {
        const channels = shape[shape.length - 1];
        const args = { momentum: 0.9, epsilon: eps };
        const fused = run(new TrainingBatchNorm(args), shape, channels);
        const stock = run(tf.layers.batchNormalization(args), shape, channels);
        for (const key of Object.keys(stock) as (keyof Result)[]) {
          const err = maxRelErr(fused[key], stock[key]);
          assert.ok(err < 2e-5, `${variant} ${shape.join('×')} ${key}: relative error ${err}`);
        }
      }
      // Two training passes per shape, for the three shapes with channels in fours.
      assert.equal(kernelRuns, simd ? 6 : 0, `${variant}: SIMD kernel runs`);
    } finally {
      unsubscribe();
      if (backend === 'wasm') useWasmBatchNorm(true);
    }
  });
}

/** Wrap a registered wasm kernel to count its runs; returns the undo. */
function countKernel(name: string, onRun: () => void): () => void {
  const k = tf.getKernel(name, 'wasm');
  if (!k) return () => undefined;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...k, kernelFunc: (args) => { onRun(); return k.kernelFunc(args); } });
  return () => {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(k);
  };
}

test('channel moments: mean and biased variance per channel, channels last', () => {
  const x = new Float32Array([1, 10, 3, 20, 5, 60, 7, 10]); // channel 0: 1 3 5 7, channel 1: 10 20 60 10
  const { mean, variance } = channelMoments(x, 2);
  assert.deepEqual(Array.from(mean), [4, 25]);
  assert.deepEqual(Array.from(variance), [5, 425]);
});
