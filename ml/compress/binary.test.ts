// Binarization: the straight-through sign, stochastic sampling (its frequencies follow P(+1) = (w + 1) / 2), the
// ensemble statistics, and the XNOR–popcount convolution equal to the float convolution of the ±1 values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { pseudoRandom } from '../models/test-helpers';
import { Rng } from '../train/rng';
import { convDense } from './cci';
import { XnorWasm } from './xnor-wasm';
import { ensembleMeanVariance, packActivations, packWeights, popcount32, sampleBinary, signBinary, signSte, xnorConv } from './binary';

test('sign with the straight-through gradient', async () => {
  await initTf('cpu');
  const x = tf.tensor1d([-2, -0.5, 0, 0.7, 3]);
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(signSte(v), tf.tensor1d([1, 2, 3, 4, 5]))))(x);
  assert.deepEqual([...signSte(x).dataSync()], [-1, -1, 1, 1, 1]);
  assert.deepEqual([...g.dataSync()], [0, 2, 3, 4, 0]);
  tf.dispose([x, g]);
});

test('stochastic binarization: P(+1) = clip((w + 1) / 2, 0, 1)', () => {
  const n = 20000;
  for (const w of [-1.5, -0.5, 0, 0.6, 2]) {
    const s = sampleBinary(new Float32Array(n).fill(w), new Rng(7));
    assert.ok(s.every((v) => v === 1 || v === -1));
    const p = s.filter((v) => v === 1).length / n;
    const expect = Math.min(1, Math.max(0, (w + 1) / 2));
    assert.ok(Math.abs(p - expect) < 0.015, `w = ${w}: P(+1) = ${p}, expected ${expect}`);
  }
  assert.deepEqual([...signBinary(Float32Array.of(-0.1, 0, 0.1))], [-1, 1, 1]);
});

test('ensemble mean and variance per pixel', () => {
  const { mean, variance } = ensembleMeanVariance([Float32Array.of(0, 1), Float32Array.of(1, 1)]);
  assert.deepEqual([...mean], [0.5, 1]);
  assert.deepEqual([...variance], [0.25, 0]);
});

test('popcount and the XNOR–popcount convolution equal the float convolution of ±1 values', () => {
  assert.equal(popcount32(0), 0);
  assert.equal(popcount32(0xffffffff), 32);
  assert.equal(popcount32(0x80000001), 2);
  // 40 input channels: one full word and a partial one; borders exercise the zero padding.
  const [co, ci, kh, kw, h, w] = [3, 40, 3, 3, 6, 7];
  const xs = signBinary(pseudoRandom(ci * h * w, 3));
  const ws = signBinary(pseudoRandom(co * kh * kw * ci, 4));
  const ref = convDense(xs, ci, h, w, ws, co, kh, kw);
  const got = xnorConv(packActivations(xs, ci, h, w), ci, h, w, packWeights(ws, co, ci, kh, kw), co, kh, kw);
  assert.deepEqual([...got], [...ref]);
});

test('the WebAssembly XNOR–popcount kernel equals the TypeScript one (partial words, borders)', () => {
  const wasm = new XnorWasm();
  for (const [co, ci, h, w] of [[3, 40, 6, 7], [2, 32, 1, 1], [4, 5, 3, 9], [1, 70, 4, 4], [8, 70, 5, 6], [12, 128, 4, 3]]) {
    const xs = signBinary(pseudoRandom(ci * h * w, 5 + ci));
    const ws = signBinary(pseudoRandom(co * 9 * ci, 6 + ci));
    const px = packActivations(xs, ci, h, w);
    const pk = packWeights(ws, co, ci, 3, 3);
    const ref = [...xnorConv(px, ci, h, w, pk, co, 3, 3)];
    assert.deepEqual([...wasm.conv(px, ci, h, w, pk, co)], ref, `co ${co}, ci ${ci}, ${h}×${w}`);
    assert.deepEqual([...wasm.conv4(px, ci, h, w, pk, co)], ref, `SIMD: co ${co}, ci ${ci}, ${h}×${w}`);
  }
  assert.throws(() => wasm.conv(new Uint32Array(3), 32, 2, 2, new Uint32Array(9), 1), /do not match/);
});
