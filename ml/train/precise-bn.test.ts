// Recomputed batch-norm statistics are the plain mean of the batch moments, and nothing else changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { batchNormLayers, recomputeBatchNormStatistics, trainingInputs } from './precise-bn';
import { trainingBatchNorm } from '../tfjs/batchnorm-training';
import { pseudoRandom } from '../models/test-helpers';
import { DEFAULT_AUGMENT, type TrainingSlice } from './augment';

function convBn(): tf.LayersModel {
  const input = tf.input({ shape: [null, null, 1] });
  const conv = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false, name: 'c' }).apply(input) as tf.SymbolicTensor;
  const bn = trainingBatchNorm({ momentum: 0.95, epsilon: 1e-3, name: 'bn' }).apply(conv) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: bn });
}

test('recomputed batch-norm statistics are the mean of the batch moments; weights and momentum are kept', async () => {
  await tf.setBackend('cpu');
  const model = convBn();
  const kernel = model.getLayer('c').getWeights()[0];
  const inputs = [1, 2, 3].map((t) => tf.tensor4d(pseudoRandom(2 * 6 * 5, t, 1 + t), [2, 6, 5, 1]));
  // The expectation, computed apart: per batch the per-channel mean and biased variance of the conv output.
  const moments = inputs.map((x) => tf.tidy(() => tf.moments(tf.conv2d(x, kernel as tf.Tensor4D, 1, 'same'), [0, 1, 2])));
  const mean = tf.tidy(() => tf.stack(moments.map((m) => m.mean)).mean(0));
  const variance = tf.tidy(() => tf.stack(moments.map((m) => m.variance)).mean(0));
  const before = model.getWeights().map((w) => w.dataSync().slice());
  recomputeBatchNormStatistics(model, 3, (t) => inputs[t - 1].clone());
  const after = model.getWeights().map((w) => w.dataSync());
  const names = model.weights.map((w) => w.originalName);
  names.forEach((n, i) => {
    if (n.endsWith('moving_mean')) after[i].forEach((v, c) => assert.ok(Math.abs(v - mean.dataSync()[c]) < 1e-5, `moving mean ${c}`));
    else if (n.endsWith('moving_variance')) after[i].forEach((v, c) => assert.ok(Math.abs(v - variance.dataSync()[c]) < 1e-5, `moving variance ${c}`));
    else assert.deepEqual(Array.from(after[i]), Array.from(before[i]), `${n} unchanged`);
  });
  assert.ok(names.some((n) => n.endsWith('moving_mean')) && names.some((n) => n.endsWith('moving_variance')));
  assert.equal((batchNormLayers(model)[0] as unknown as { momentum: number }).momentum, 0.95, 'momentum restored');
  tf.dispose([...inputs, mean, variance, ...moments.flatMap((m) => [m.mean, m.variance])]);
  model.dispose();
});

test('training inputs are drawn as the trainer draws them, repeatably', async () => {
  await tf.setBackend('cpu');
  const slices: TrainingSlice[] = [{ width: 40, height: 40, channels: 1, raw: pseudoRandom(1600, 4), target: new Uint8Array(1600) }];
  const spec = { batchSize: 2, cropPx: 16, augment: DEFAULT_AUGMENT, weighting: 'balanced' as const, membraneFraction: 0.3 };
  const a = trainingInputs(slices, spec, 5)(1);
  const b = trainingInputs(slices, spec, 5)(1);
  const c = trainingInputs(slices, spec, 5)(2);
  assert.deepEqual(a.shape, [2, 16, 16, 1]);
  assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
  assert.notDeepEqual(Array.from(a.dataSync()), Array.from(c.dataSync()));
  tf.dispose([a, b, c]);
});
