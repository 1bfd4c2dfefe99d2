// Lp-sphere training: the LpSGD update on a hand case, the projection onto ‖w‖_p = 1 per filter (and its batch-norm
// rescaling that keeps the model's maps), semi-pruning below h · mean|w|, and regrowth of a zero weight only when its
// gradient is large; then a few real fine-tuning steps keep every filter on the sphere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { pseudoRandom, perturbBatchNorm } from '../models/test-helpers';
import { buildModel } from '../models';
import { DEFAULT_AUGMENT } from '../train/augment';
import { fineTune, distillTargets } from './finetune';
import { LpSphereTraining, lpNorm, lpSgdStep, projectToSphere, semiPrune } from './lpsphere';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} ≠ ${b}`);

test('LpSGD step by hand (p = 1.5, η = 0.1)', () => {
  // v = sign(w)|w|^0.5: 0.5 and −0.8; v − ηg: 0.4 and −0.6; w = sign(v)|v|^2: 0.16 and −0.36.
  const w = Float32Array.of(0.25, -0.64);
  lpSgdStep(w, Float32Array.of(1, -2), 0.1, 1.5);
  close(w[0], 0.16);
  close(w[1], -0.36);
  // p = 2 is plain SGD.
  const u = Float32Array.of(0.3);
  lpSgdStep(u, Float32Array.of(2), 0.1, 2);
  close(u[0], 0.1);
  assert.throws(() => lpSgdStep(u, u, 0.1, 1), /1 < p ≤ 2/);
});

test('projection onto the unit Lp sphere, strided per filter, and semi-pruning', () => {
  // Two filters interleaved (stride 2), as output channels of a tfjs kernel.
  const w = pseudoRandom(20, 3, 2);
  for (const o of [0, 1]) projectToSphere(w, 1.3, o, 2, 10);
  for (const o of [0, 1]) close(lpNorm(w, 1.3, o, 2, 10), 1, 1e-5);
  // mean |w| = 1.65 / 4 = 0.4125; h = 0.5 → threshold 0.206: 0.1 and 0.05 go.
  const s = Float32Array.of(1, 0.1, -0.5, 0.05);
  assert.equal(semiPrune(s, 0.5), 2);
  assert.deepEqual([...s], [1, 0, -0.5, 0]);
});

function tinyConvNet(kernel: Float32Array): tf.LayersModel {
  const input = tf.input({ shape: [null, null, 1] });
  const c = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', useBias: false, name: 'c_conv' }).apply(input) as tf.SymbolicTensor;
  const b = tf.layers.batchNormalization({ name: 'c_bn' }).apply(c) as tf.SymbolicTensor;
  const out = tf.layers.conv2d({ filters: 1, kernelSize: 1, name: 'logits' }).apply(b) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: out });
  const k = tf.tensor(kernel, [3, 3, 1, 2]);
  m.layers[1].setWeights([k]);
  k.dispose();
  perturbBatchNorm(m);
  return m;
}

test('the initial projection keeps the maps; zeros regrow only on large gradients', async () => {
  await initTf('cpu');
  // tfjs layout [kh, kw, ci = 1, co = 2]: index 2·tap + o. Every weight 0.3–0.5 except tap 0 of both filters (zero).
  const kernel = Float32Array.from({ length: 18 }, (_, i) => (i < 2 ? 0 : 0.3 + 0.2 * ((i * 7) % 5) / 4));
  const m = tinyConvNet(kernel);
  const x = tf.tensor4d(pseudoRandom(64, 5, 2), [1, 8, 8, 1]);
  const before = (m.predict(x) as tf.Tensor).dataSync();
  const lp = new LpSphereTraining(m, { p: 1.5, h: 0.3, eta: 0.1 });
  assert.equal(lp.kernelCount, 1, 'the 3×3 conv before batch norm is constrained, the 1×1 output layer is not');
  lp.project();
  const after = (m.predict(x) as tf.Tensor).dataSync();
  // Equal up to the batch norm's ε (1e-3 against rescaled variances).
  before.forEach((v, i) => close(after[i], v, 2e-2));
  assert.ok(lp.maxNormError() < 1e-5);
  assert.ok(Math.abs(lp.sparsity() - 2 / 18) < 1e-9);

  const grads = m.trainableWeights.map((v) => new Float32Array((v.shape as number[]).reduce((a, b) => a * b, 1)));
  grads[0][0] = -50; // filter 0, tap 0: a large gradient → v = 5, far above the threshold
  grads[0][1] = -1e-4; // filter 1, tap 0: a small one → |w| ≈ 1e-10, semi-pruned again
  lp.beforeApply(grads, 1);
  lp.afterApply();
  const k = m.layers[1].getWeights()[0].dataSync();
  assert.ok(k[0] > 0.1, `the weight with the large gradient regrows (w = ${k[0]})`);
  assert.equal(k[1], 0, 'the weight with the small gradient stays pruned');
  assert.equal(lp.regrown, 1);
  assert.ok(lp.maxNormError() < 1e-5);
  tf.dispose([x]);
  m.dispose();
});

test('fine-tuning under the constraint keeps every filter on the sphere and makes zeros', async () => {
  await initTf('cpu');
  const m = buildModel({ kind: 'unet', baseChannels: 4, depth: 1, inChannels: 1 });
  const size = 32;
  const slice = { width: size, height: size, channels: 1, raw: pseudoRandom(size * size, 2, 3), target: Uint8Array.from({ length: size * size }, (_, i) => (i % 5 === 0 ? 1 : 0)) };
  const lp = new LpSphereTraining(m, { p: 1.2, h: 0.5, eta: 0.05 });
  assert.equal(lp.kernelCount, 6, 'enc0a/b, bottoma/b, dec0a/b');
  lp.project();
  const scales: number[] = [];
  fineTune(m, {
    slices: [slice], steps: 3, lr: 1e-3, seed: 1,
    spec: { batchSize: 1, cropPx: 16, augment: DEFAULT_AUGMENT, weighting: 'balanced', membraneFraction: 0.2 },
    beforeApply: (g, s) => {
      scales.push(s);
      lp.beforeApply(g, s);
    },
    afterApply: lp.afterApply,
  });
  assert.equal(scales.length, 3);
  assert.equal(scales[0], 1, 'the first step runs at the peak rate');
  assert.ok(lp.maxNormError() < 1e-4);
  assert.ok(lp.sparsity() > 0.1, `h = 0.5 zeroes weights (sparsity ${lp.sparsity()})`);
  m.dispose();
});

test('distillation targets mix labels and the teacher\'s probabilities', async () => {
  await initTf('cpu');
  // A teacher whose logits are 0 everywhere: σ = 0.5.
  const input = tf.input({ shape: [null, null, 1] });
  const teacher = tf.model({ inputs: input, outputs: tf.layers.conv2d({ filters: 1, kernelSize: 1, kernelInitializer: 'zeros' }).apply(input) as tf.SymbolicTensor });
  const x = tf.zeros([1, 2, 1, 1]) as tf.Tensor4D;
  const y = tf.tensor4d([1, 0], [1, 2, 1, 1]);
  const t = distillTargets(teacher, x, y, 0.25);
  assert.deepEqual([...t.dataSync()], [0.875, 0.125]);
  assert.throws(() => distillTargets(teacher, x, y, 2), /\[0, 1\]/);
  tf.dispose([x, y, t]);
  teacher.dispose();
});

test('per-layer step sizes make η the RMS relative step of the dual values', async () => {
  await initTf('cpu');
  const kernel = Float32Array.from({ length: 18 }, (_, i) => 0.2 + 0.05 * (i % 3));
  const m = tinyConvNet(kernel);
  const lp = new LpSphereTraining(m, { p: 2, h: 0, eta: 0.01, layerwise: true });
  lp.project();
  const w0 = m.layers[1].getWeights()[0].dataSync().slice();
  const grads = m.trainableWeights.map((v) => new Float32Array((v.shape as number[]).reduce((a, b) => a * b, 1)).fill(1e-6));
  lp.beforeApply(grads, 1);
  lp.afterApply();
  // p = 2: v = w; a uniform gradient of any size moves every weight by η · rms(w) before the re-projection, so the
  // direction change is visible even though the gradient is tiny.
  const w1 = m.layers[1].getWeights()[0].dataSync();
  const moved = w1.some((v, i) => Math.abs(v - w0[i]) > 1e-4);
  assert.ok(moved, 'a 1e-6 gradient still moves the weights with per-layer step sizes');
  m.dispose();
});
