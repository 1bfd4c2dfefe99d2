// The fused Adam kernel against tfjs' own Adam on the same backend: the same weights and moments after several steps
// (sizes with and without a tail of 1–3 weights past the last group of four), and state that loads into either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWasm } from './backend';
import { rand } from './conv-test-cases';
import { FusedAdam, ADAM_KERNEL } from './wasm-adam';

const SHAPES = [[3, 3, 4, 8], [8], [1], [7], [2, 3]];

function run(opt: tf.AdamOptimizer, steps: number): { weights: Float32Array[]; state: ReturnType<tf.Optimizer['getWeights']> } {
  const vars = SHAPES.map((shape, i) => tf.variable(tf.tensor(rand(shape.reduce((a, b) => a * b, 1), 10 + i), shape), true, `adam-test-${opt.constructor.name}-${i}`));
  for (let s = 0; s < steps; s++) {
    const grads = vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(rand(v.size, 100 * s + i), v.shape) }));
    opt.applyGradients(grads);
    tf.dispose(grads.map((g) => g.tensor));
  }
  const weights = vars.map((v) => Float32Array.from(v.dataSync()));
  const state = opt.getWeights();
  return { weights, state: state.then((s) => { tf.dispose(vars); return s; }) };
}

test('fused Adam on wasm matches tfjs\' Adam step for step, and shares its state format', async () => {
  await registerWasm();
  await tf.setBackend('wasm');
  assert.ok(tf.getKernel(ADAM_KERNEL, 'wasm'), 'the kernel is registered with the wasm backend');
  const reference = run(tf.train.adam(0.01, 0.9, 0.999, 1e-7), 5);
  const fused = run(new FusedAdam(0.01, 0.9, 0.999, 1e-7), 5);
  fused.weights.forEach((w, k) => {
    for (let i = 0; i < w.length; i++) {
      assert.ok(Math.abs(w[i] - reference.weights[k][i]) <= 1e-6 * Math.max(1, Math.abs(w[i])), `variable ${k}[${i}]: ${w[i]} against ${reference.weights[k][i]}`);
    }
  });
  // The weights moved: five steps of lr 0.01 against an all-zero update.
  assert.ok(Math.abs(fused.weights[0][0] - rand(288, 10)[0]) > 0.01);
  const [a, b] = await Promise.all([reference.state, fused.state]);
  assert.deepEqual(b.map((w) => w.name.replace(/FusedAdam|AdamOptimizer/, '')), a.map((w) => w.name.replace(/FusedAdam|AdamOptimizer/, '')));
  assert.equal((await b[0].tensor.data())[0], 5, 'the iteration count');
  for (let k = 1; k < a.length; k++) {
    const [x, y] = [await a[k].tensor.data(), await b[k].tensor.data()];
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= 1e-6 * Math.max(1, Math.abs(x[i])), `moment ${a[k].name}[${i}]`);
  }
  // A fused optimizer resumes from the reference's state.
  const resumed = new FusedAdam(0.01, 0.9, 0.999, 1e-7);
  await resumed.setWeights(a);
  assert.equal(resumed.iterations, 5);
});
