// EMSeg's wasm convolution gradients must match tfjs' cpu backend numerically for the convolutions our models use:
// 3×3 'same', strided, 'valid' with explicit one-sided padding (the refiner), 2×2 stride-2 (the U-Net's
// up-convolutions), 1×1 — both the filter gradient and the input gradient, and the transposed-conv forward pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWasm } from './backend';
import { setIm2colChunkFloats } from './wasm-conv-gradients';
import { assertClose, cases, grads, rand } from './conv-test-cases';

test('wasm conv gradients (filter and input) match the cpu backend', async () => {
  await registerWasm();
  for (const c of cases) {
    const [dxRef, dwRef] = await grads('cpu', c.x, c.w, c.stride, c.pad);
    const [dx, dw] = await grads('wasm', c.x, c.w, c.stride, c.pad);
    assertClose(dw, dwRef, `${c.name} dW`);
    assertClose(dx, dxRef, `${c.name} dX`);
  }
});

test('wasm filter gradient is the same when im2col is split into chunks that cut image rows', async () => {
  await registerWasm();
  for (const c of cases) {
    const [, dwRef] = await grads('cpu', c.x, c.w, c.stride, c.pad);
    // 7 rows of k columns per chunk: chunk boundaries fall mid-row for every case above.
    setIm2colChunkFloats(7 * c.w[0] * c.w[1] * c.w[2]);
    try {
      const [, dw] = await grads('wasm', c.x, c.w, c.stride, c.pad);
      assertClose(dw, dwRef, `${c.name} dW (chunked)`);
    } finally {
      setIm2colChunkFloats(16 * 1024 * 1024);
    }
  }
});

test('wasm transposed 2x2 stride-2 convolution (U-Net up-conv) matches the cpu backend', async () => {
  await registerWasm();
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const y = tf.tidy(() => tf.conv2dTranspose(tf.tensor4d(rand(2 * 4 * 5 * 6, 5), [2, 4, 5, 6]), tf.tensor4d(rand(2 * 2 * 3 * 6, 6), [2, 2, 3, 6]), [2, 8, 10, 3], 2, 'valid'));
    const d = (await y.data()) as Float32Array;
    y.dispose();
    return d;
  };
  assertClose(await run('wasm'), await run('cpu'), 'conv2dTranspose');
});

test('wasm fused conv (the tfjs-layers path) trains: the gradient reaches the filter', async () => {
  await registerWasm();
  await tf.setBackend('wasm');
  const x = tf.tensor4d(rand(2 * 6 * 6 * 2, 3), [2, 6, 6, 2]);
  const w = tf.variable(tf.tensor4d(rand(3 * 3 * 2 * 3, 4), [3, 3, 2, 3]));
  const b = tf.variable(tf.zeros([3]));
  const { grads: g } = tf.variableGrads(() =>
    tf.fused.conv2d({ x, filter: w as tf.Tensor4D, strides: 1, pad: 'same', bias: b, activation: 'relu' }).sum() as tf.Scalar);
  const gw = await g[w.name].data();
  assert.ok(gw.some((v) => v !== 0));
  tf.dispose([x, w, b, ...Object.values(g)]);
});

test('the lean batch-norm gradient equals the stock one', async () => {
  await tf.setBackend('cpu');
  const x = tf.tensor4d(rand(2 * 5 * 4 * 3, 7), [2, 5, 4, 3]);
  const scale = tf.tensor1d([0.5, 2, -1]);
  const offset = tf.tensor1d([0.1, 0, 0.3]);
  const f = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
    const { mean, variance } = tf.moments(a, [0, 1, 2]);
    return tf.batchNorm(a as tf.Tensor4D, mean, variance, o as tf.Tensor1D, s as tf.Tensor1D, 1e-3).square().mul(tf.range(0, 120).reshape([2, 5, 4, 3])).sum();
  };
  const stock = tf.grads(f)([x, scale, offset]);
  const stockData = await Promise.all(stock.map((t) => t.data() as Promise<Float32Array>));
  const { registerLeanBatchNormGradient } = await import('./batchnorm-gradient');
  registerLeanBatchNormGradient();
  const lean = tf.grads(f)([x, scale, offset]);
  for (let i = 0; i < 3; i++) assertClose((await lean[i].data()) as Float32Array, stockData[i], `batch-norm grad ${i}`);
  tf.dispose([x, scale, offset, ...stock, ...lean]);
});
