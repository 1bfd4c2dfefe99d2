// The wasm backend's convolutions computed by ONNX Runtime (ort-conv-kernels.ts) must match tfjs' cpu backend for
// every convolution our models use, forward and both gradients, and must actually be the ones that ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWasm } from './backend';
import { nchwcBlock, ortBlockedConvRuns, ortConvRuns, ortRowShiftRuns, useOrtConvolutions, useRowShiftFilterGradient } from './ort-conv-kernels';
import { assertClose, cases, grads, rand, type Pad } from './conv-test-cases';
import { buildModel, type ModelConfig } from '../models';

async function withOrt<T>(f: () => Promise<T>): Promise<{ value: T; runs: number }> {
  await registerWasm();
  useOrtConvolutions(true);
  try {
    const before = ortConvRuns();
    const value = await f();
    return { value, runs: ortConvRuns() - before };
  } finally {
    useOrtConvolutions(false);
  }
}

const moreCases: Array<{ name: string; x: number[]; w: number[]; stride: number; pad: Pad }> = [
  { name: '3x3 same stride 2 (asymmetric padding)', x: [2, 9, 8, 3], w: [3, 3, 3, 4], stride: 2, pad: 'same' },
  { name: '3x3 valid', x: [1, 7, 9, 2], w: [3, 3, 2, 3], stride: 1, pad: 'valid' },
];

test('ONNX Runtime conv gradients (filter and input) match the cpu backend', async () => {
  for (const c of [...cases, ...moreCases]) {
    const [dxRef, dwRef] = await grads('cpu', c.x, c.w, c.stride, c.pad);
    const { value: [dx, dw], runs } = await withOrt(() => grads('wasm', c.x, c.w, c.stride, c.pad));
    assert.ok(runs >= 3, `${c.name}: ${runs} ONNX Runtime runs (forward, input and filter gradient expected)`);
    assertClose(dw, dwRef, `${c.name} dW`);
    assertClose(dx, dxRef, `${c.name} dX`);
  }
});

test('ONNX Runtime transposed 2x2 stride-2 convolution and fused conv with bias and ReLU match the cpu backend', async () => {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const x = tf.tensor4d(rand(2 * 6 * 5 * 3, 3), [2, 6, 5, 3]);
    const w = tf.tensor4d(rand(3 * 3 * 3 * 4, 4), [3, 3, 3, 4]);
    const b = tf.tensor1d([0.05, -0.1, 0.2, 0]);
    const up = tf.tidy(() => tf.conv2dTranspose(tf.tensor4d(rand(2 * 4 * 5 * 6, 5), [2, 4, 5, 6]), tf.tensor4d(rand(2 * 2 * 3 * 6, 6), [2, 2, 3, 6]), [2, 8, 10, 3], 2, 'valid'));
    const f = (a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => tf.fused.conv2d({ x: a as tf.Tensor4D, filter: k as tf.Tensor4D, strides: 1, pad: 'same', bias: c, activation: 'relu' });
    const y = f(x, w, b);
    const g = tf.grads((a: tf.Tensor, k: tf.Tensor, c: tf.Tensor) => f(a, k, c).square().sum())([x, w, b]);
    const out = await Promise.all([up, y, ...g].map((t) => t.data() as Promise<Float32Array>));
    tf.dispose([x, w, b, up, y, ...g]);
    return out;
  };
  const ref = await run('cpu');
  const { value: got, runs } = await withOrt(() => run('wasm'));
  assert.ok(runs >= 5, `${runs} ONNX Runtime runs`);
  ['conv2dTranspose', 'fused conv', 'fused dX', 'fused dW', 'fused dBias'].forEach((what, i) => assertClose(got[i], ref[i], what));
});

test('a small U-Net and refiner get the same loss gradients with ONNX Runtime convolutions as on the cpu backend', async () => {
  const configs: ModelConfig[] = [
    { kind: 'unet', baseChannels: 3, depth: 2, inChannels: 1 },
    // 8 and 16 channels: the blocked-layout (NCHWc) convolutions where the CPU has them.
    { kind: 'unet', baseChannels: 8, depth: 1, inChannels: 1 },
    { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 3, headLayers: 1 },
  ];
  for (const cfg of configs) {
    const gradsOn = async (backend: string) => {
      await tf.setBackend(backend);
      const model = buildModel(cfg);
      // The same weights on both backends.
      model.setWeights(model.getWeights().map((w, i) => tf.tensor(rand(w.size, 10 + i), w.shape)));
      const x = tf.tensor4d(rand(2 * 8 * 8 * cfg.inChannels, 7), [2, 8, 8, cfg.inChannels]);
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads: g } = tf.variableGrads(() => (model.apply(x, { training: true }) as tf.Tensor).square().mean() as tf.Scalar, vars);
      const out = await Promise.all(vars.map((v) => g[v.name].data() as Promise<Float32Array>));
      tf.dispose([x, ...Object.values(g)]);
      model.dispose();
      return out;
    };
    const ref = await gradsOn('cpu');
    const blockedBefore = ortBlockedConvRuns();
    const { value: got, runs } = await withOrt(() => gradsOn('wasm'));
    assert.ok(runs > 0, `${cfg.kind}: no ONNX Runtime runs`);
    if (cfg.kind === 'unet' && cfg.baseChannels === 8 && nchwcBlock() === 8) assert.ok(ortBlockedConvRuns() > blockedBefore, 'blocked-layout convolutions ran');
    assert.equal(got.length, ref.length);
    // Weights before batch norm get small gradients (the norm undoes their scale), so the bound is relative to the
    // largest gradient of the model rather than of each tensor.
    const scale = Math.max(...ref.map((r) => r.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    assert.ok(scale > 1e-3, `${cfg.kind}: gradients trivially zero`);
    got.forEach((gv, i) => {
      assert.equal(gv.length, ref[i].length);
      const err = gv.reduce((m, v, j) => Math.max(m, Math.abs(v - ref[i][j])), 0);
      assert.ok(err <= 1e-4 * scale, `${cfg.kind} gradient ${i}: max error ${err} (largest gradient ${scale})`);
    });
  }
});

test('convolutions with channels in NCHWc blocks run in ONNX Runtime\'s blocked layout and match the cpu backend', async () => {
  const block = nchwcBlock();
  if (process.arch === 'x64') assert.ok(block === 8 || block === 16, `NCHWc block on x64: ${block}`);
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const x = tf.tensor4d(rand(2 * 9 * 7 * 16, 7), [2, 9, 7, 16]);
    const w = tf.tensor4d(rand(3 * 3 * 16 * 32, 8), [3, 3, 16, 32]);
    const b = tf.tensor1d(rand(32, 9));
    const y = tf.tidy(() => tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias: b, activation: 'relu' }));
    const plain = tf.tidy(() => tf.conv2d(x, w, 2, 'same'));
    const g = tf.grads((a: tf.Tensor, k: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, k as tf.Tensor4D, 1, 'same').square().sum())([x, w]);
    const out = await Promise.all([y, plain, ...g].map((t) => t.data() as Promise<Float32Array>));
    tf.dispose([x, w, b, y, plain, ...g]);
    return out;
  };
  const ref = await run('cpu');
  const blockedBefore = ortBlockedConvRuns();
  const { value: got, runs } = await withOrt(() => run('wasm'));
  assert.ok(runs >= 5, `${runs} ONNX Runtime runs`);
  if (block) assert.ok(ortBlockedConvRuns() - blockedBefore >= 3, 'forward, strided and dX convolutions ran blocked');
  ['fused conv, bias, ReLU', 'strided conv', 'dX (a forward convolution with the flipped filter)', 'dW'].forEach((what, i) => assertClose(got[i], ref[i], what));
});

test('the row-shift filter gradient (large images, stride 1) matches the cpu backend in both of its forms', async () => {
  const large: Array<{ name: string; x: number[]; w: number[]; pad: Pad }> = [
    { name: 'fewer output channels (dy shifted)', x: [2, 128, 128, 8], w: [3, 3, 8, 4], pad: 'same' },
    { name: 'more output channels (x shifted), non-square', x: [1, 128, 131, 8], w: [3, 3, 8, 12], pad: 'same' },
    { name: '5x3 valid', x: [1, 132, 131, 8], w: [5, 3, 8, 6], pad: 'valid' },
    { name: 'one-sided padding', x: [1, 128, 128, 8], w: [3, 3, 8, 8], pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  ];
  for (const c of large) {
    const [dxRef, dwRef] = await grads('cpu', c.x, c.w, 1, c.pad);
    const before = ortRowShiftRuns();
    const { value: [dx, dw] } = await withOrt(() => grads('wasm', c.x, c.w, 1, c.pad));
    assert.equal(ortRowShiftRuns() - before, 1, `${c.name}: the row-shift graph ran`);
    assertClose(dw, dwRef, `${c.name} dW`);
    assertClose(dx, dxRef, `${c.name} dX`);
  }
  // Off, the per-tap graph gives the same.
  useRowShiftFilterGradient(false);
  try {
    const c = large[0];
    const before = ortRowShiftRuns();
    const { value: [, dw] } = await withOrt(() => grads('wasm', c.x, c.w, 1, c.pad));
    assert.equal(ortRowShiftRuns(), before);
    assertClose(dw, (await grads('cpu', c.x, c.w, 1, c.pad))[1], 'per-tap dW');
  } finally {
    useRowShiftFilterGradient(true);
  }
});
