// Neural-network relief scores and the α rule, on cases small enough to compute by hand; and the global magnitude
// baseline keeps exactly the requested count; on a tfjs model, the scores match the reference, whole connections are
// pruned, the masks survive fine-tuning, and the magnitude baseline reaches its target sparsity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { buildModel } from '../models';
import { perturbBatchNorm, pseudoRandom } from '../models/test-helpers';
import { DEFAULT_AUGMENT } from '../train/augment';
import { fineTune } from './finetune';
import { PruneMasks, absConvNorm, magnitudeKeep, magnitudeRound, prunableConvs, reliefKeep, reliefRound, reliefScores, reliefScoresTf } from './relief';

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

test('tfjs relief scores equal the reference; masks survive fine-tuning steps; magnitude hits its sparsity', async () => {
  await initTf('cpu');
  const [h, w, ci, co] = [6, 5, 3, 4];
  const kernel = pseudoRandom(9 * ci * co, 8, 2); // tfjs layout [3, 3, ci, co]
  const bias = pseudoRandom(co, 9);
  const xs = [pseudoRandom(h * w * ci, 1, 2), pseudoRandom(h * w * ci, 2, 2)];
  const chw = (x: Float32Array) => Float32Array.from({ length: x.length }, (_, k) => x[(k % (h * w)) * ci + Math.floor(k / (h * w))]);
  // Reference kernel in ONNX layout [co, ci, kh, kw].
  const onnx = Float32Array.from({ length: kernel.length }, (_, k) => {
    const [o, i, t] = [Math.floor(k / (ci * 9)), Math.floor(k / 9) % ci, k % 9];
    return kernel[(t * ci + i) * co + o];
  });
  const ref = reliefScores(xs.map(chw), h, w, onnx, bias, co, ci, 3, 3);
  const ts = xs.map((x) => tf.tensor4d(x, [1, h, w, ci]));
  const got = reliefScoresTf(ts, kernel, bias, [3, 3, ci, co]);
  ref.forEach((v, k) => assert.ok(Math.abs(got[k] - v) < 1e-5, `s[${k}] = ${got[k]}, reference ${v}`));
  tf.dispose(ts);

  const m = buildModel({ kind: 'unet', baseChannels: 4, depth: 1, inChannels: 1 });
  perturbBatchNorm(m);
  const convs = prunableConvs(m);
  assert.deepEqual(convs.map((c) => c.conv.name), ['enc0b_conv', 'bottoma_conv', 'bottomb_conv', 'dec0a_conv', 'dec0b_conv'], 'the first layer (one input) is not pruned');
  const masks = new PruneMasks(convs);
  const set = [tf.tensor4d(pseudoRandom(16 * 16, 4, 3), [1, 16, 16, 1])];
  reliefRound(m, masks, set, 0.6);
  const s1 = masks.sparsity();
  assert.ok(s1 > 0.1 && s1 < 0.95, `α = 0.6 prunes part of the connections (sparsity ${s1})`);
  // Whole connections go: a pruned weight's 3×3 slice is pruned at every tap.
  const [kh, kw, cin, cout] = convs[0].shape;
  for (let i = 0; i < cin; i++)
    for (let j = 0; j < cout; j++) {
      const taps = Array.from({ length: kh * kw }, (_, t) => masks.masks[0][(t * cin + i) * cout + j]);
      assert.ok(taps.every((v) => v === taps[0]));
    }
  // Adam moves masked weights; afterApply puts them back to zero.
  const slice = { width: 16, height: 16, channels: 1, raw: pseudoRandom(256, 2, 3), target: Uint8Array.from({ length: 256 }, (_, i) => (i % 4 === 0 ? 1 : 0)) };
  fineTune(m, { slices: [slice], steps: 2, lr: 1e-2, seed: 1, spec: { batchSize: 1, cropPx: 16, augment: DEFAULT_AUGMENT, weighting: 'balanced', membraneFraction: 0.25 }, afterApply: masks.afterApply });
  const zeros = convs.reduce((a, c) => a + [...c.conv.getWeights()[0].dataSync()].filter((v) => v === 0).length, 0);
  const total = convs.reduce((a, c) => a + c.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(zeros, total - masks.kept());
  // A second round only prunes more.
  reliefRound(m, masks, set, 0.6);
  assert.ok(masks.sparsity() >= s1);

  const base = new PruneMasks(prunableConvs(m));
  magnitudeRound(base, 0.7);
  assert.ok(Math.abs(base.sparsity() - 0.7) < 1e-3, `magnitude sparsity ${base.sparsity()}`);
  tf.dispose(set);
  m.dispose();
});
