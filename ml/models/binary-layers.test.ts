// The binarized U-Net: its BinaryConv2D computes exactly the XNOR–popcount convolution of the signs, its activations
// are ±1, the straight-through gradient reaches the real-valued weights, and the ONNX export (Where-sign + Conv of
// sign(kernel), batch norm folded) gives the same maps as tfjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { buildModel, type UNetConfig } from '.';
import { perturbBatchNorm, pseudoRandom } from './test-helpers';
import { BinaryConv2D } from './binary-layers';
import { BinaryKernelUpdates, binaryConvLayers, initBinaryFromFloat, packActivations, packWeights, xnorConv } from '../compress/binary';
import { exportOnnx } from '../onnx/export';
import { createOnnxModel } from '../infer/onnx-session';

test('BinaryConv2D equals the XNOR–popcount convolution of the signs; gradients pass straight through', async () => {
  await initTf('cpu');
  const [h, w, ci, co] = [5, 6, 35, 3];
  const layer = new BinaryConv2D({ filters: co, kernelSize: 3 });
  const x = tf.tensor4d(pseudoRandom(h * w * ci, 1, 2), [1, h, w, ci]);
  const y = layer.apply(x) as tf.Tensor;
  const kernel = layer.getWeights()[0].dataSync() as Float32Array; // [3, 3, ci, co], real-valued
  // Planar CHW activations and [co][ky][kx][ci] weights for the bitwise kernel.
  const xs = x.dataSync();
  const chw = Float32Array.from({ length: xs.length }, (_, k) => xs[(k % (h * w)) * ci + Math.floor(k / (h * w))]);
  const tap = Float32Array.from({ length: kernel.length }, (_, k) => kernel[(k % ci) * co + Math.floor(k / ci) % 9 * ci * co + Math.floor(k / (9 * ci))]);
  const ref = xnorConv(packActivations(chw, ci, h, w), ci, h, w, packWeights(tap, co, ci, 3, 3), co, 3, 3);
  const got = y.dataSync();
  for (let o = 0; o < co; o++) for (let p = 0; p < h * w; p++) assert.equal(got[p * co + o], ref[o * h * w + p], `channel ${o}, pixel ${p}`);
  const g = tf.grad((v: tf.Tensor) => tf.sum(layer.apply(v) as tf.Tensor))(x);
  assert.ok(g.abs().sum().dataSync()[0] > 0, 'the input gradient is not blocked by the sign');
  tf.dispose([x, y, g]);
});

test('binarized U-Net: ±1 activations, and the ONNX export matches tfjs', async () => {
  await initTf('cpu');
  const cfg: UNetConfig = { kind: 'unet', baseChannels: 4, depth: 2, inChannels: 1, binary: {} };
  const m = buildModel(cfg);
  perturbBatchNorm(m);
  const classes = m.layers.map((l) => l.getClassName());
  assert.equal(classes.filter((c) => c === 'BinaryConv2D').length, 9, 'all block convolutions but the first');
  assert.equal(classes.filter((c) => c === 'ReLU').length, 0);
  const [h, w] = [16, 20];
  const input = pseudoRandom(h * w, 3, 3);
  const x = tf.tensor4d(input, [1, h, w, 1]);
  const sign = m.getLayer('enc1b_sign');
  const probe = tf.model({ inputs: m.inputs, outputs: sign.output as tf.SymbolicTensor });
  const acts = (probe.predict(x) as tf.Tensor).dataSync();
  assert.ok(acts.every((v) => v === 1 || v === -1));
  const ref = tf.sigmoid(m.predict(x) as tf.Tensor).dataSync();
  const session = await createOnnxModel(exportOnnx(m), { threads: 1 });
  const got = await session.run(input, 1, h, w);
  await session.release();
  let maxErr = 0;
  let flips = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i] - ref[i]);
    maxErr = Math.max(maxErr, e);
    if (e > 1e-3) flips++;
  }
  // Folding batch norm reorders float operations; a BN output within rounding of 0 may flip a sign, so allow a
  // handful of pixels to differ, and the rest to agree to float rounding.
  assert.ok(flips <= ref.length * 0.01, `${flips} of ${ref.length} pixels differ (max ${maxErr})`);
  tf.dispose([x]);
  m.dispose();
});

test('binary kernel updates: Adam\'s step scaled, then clipped to [−1, 1]; initialisation keeps the float signs', async () => {
  await initTf('cpu');
  const m = buildModel({ kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1, binary: {} });
  const layer = binaryConvLayers(m)[0];
  const v = layer.trainableWeights[0];
  const n = (v.shape as number[]).reduce((a, b) => a * b, 1);
  const set = (a: Float32Array) => {
    const t = tf.tensor(a, v.shape as number[]);
    v.write(t);
    t.dispose();
  };
  const before = Float32Array.from({ length: n }, (_, i) => (i % 2 ? 0.5 : -0.2) * 0.3);
  set(before);
  initBinaryFromFloat(m);
  const init = layer.getWeights()[0].dataSync().slice();
  init.forEach((w, i) => assert.equal(Math.sign(w), Math.sign(before[i])));
  assert.ok(init.every((w) => Math.abs(w) <= 1));
  const updates = new BinaryKernelUpdates(m, 10);
  set(Float32Array.from(init, (w) => w + 0.01)); // what an Adam step would have done
  updates.afterApply();
  const after = layer.getWeights()[0].dataSync();
  after.forEach((w, i) => assert.ok(Math.abs(w - Math.min(1, init[i] + 0.1)) < 1e-6, `w[${i}] = ${w}`));
  m.dispose();
});
