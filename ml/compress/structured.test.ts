// Filter pruning: when the filters it removes are dead (they output exactly 0), the pruned dense U-Net must compute
// exactly what the full one computes; that checks every kernel cut along both axes, the concatenation offsets and
// the batch-norm slicing at once. And the pruned config is a smaller model that builds, exports and runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { buildModel, macsPerPixel, type UNetConfig } from '../models';
import { perturbBatchNorm, pseudoRandom, seedWeights } from '../models/test-helpers';
import { predictTf } from '../infer/predict-tf';
import { exportOnnx } from '../onnx/export';
import { createOnnxModel } from '../infer/onnx-session';
import { chooseKept, filterImportance, pruneUNet, widthKey } from './structured';

const cfg: UNetConfig = { kind: 'unet', baseChannels: 4, depth: 2, inChannels: 1 };

function paramCount(m: tf.LayersModel): number {
  return m.getWeights().reduce((a, w) => a + w.size, 0);
}

test('chooseKept keeps the highest-scoring fraction, at least one, in index order', () => {
  const kept = chooseKept(new Map([['enc0a', Float32Array.of(0.1, 3, 2, 0.5)], ['up0', Float32Array.of(1)]]), 0.5);
  assert.deepEqual(kept, { enc0a: [1, 2], up0: [0] });
  assert.equal(widthKey('enc1b_conv'), 'enc1b');
  assert.equal(widthKey('up3'), 'up3');
  assert.equal(widthKey('logits'), null);
  assert.equal(widthKey('enc1b_bn'), null);
});

test('pruning dead filters leaves the U-Net output unchanged, with fewer parameters', async () => {
  await initTf('cpu');
  const model = buildModel(cfg);
  seedWeights(model, 21);
  perturbBatchNorm(model);
  // Kill half of each prunable layer's filters (a different half per layer): zero γ and β after a convolution, zero
  // kernel and bias of a transposed convolution.
  const dead = new Map<string, number[]>();
  let seed = 3;
  for (const layer of model.layers) {
    const key = widthKey(layer.name);
    if (!key) continue;
    const n = (layer.outputShape as number[])[3];
    const r = pseudoRandom(n, seed++);
    const order = Array.from(r.keys()).sort((a, b) => r[a] - r[b]);
    dead.set(key, order.slice(0, n / 2));
  }
  for (const layer of model.layers) {
    const up = widthKey(layer.name);
    const bnOf = /^(.*)_bn$/.exec(layer.name)?.[1];
    const kill = up && layer.getClassName() === 'Conv2DTranspose' ? dead.get(up) : bnOf ? dead.get(bnOf) : undefined;
    if (!kill) continue;
    const ws = layer.getWeights().map((w) => new Float32Array(w.dataSync()));
    const shapes = layer.getWeights().map((w) => w.shape);
    if (layer.getClassName() === 'BatchNormalization') {
      for (const c of kill) ws[0][c] = ws[1][c] = 0;
    } else {
      const [, , co, ci] = shapes[0];
      for (let i = 0; i < ws[0].length; i++) if (kill.includes(Math.floor(i / ci) % co)) ws[0][i] = 0;
      for (const c of kill) ws[1][c] = 0;
    }
    const ts = ws.map((w, i) => tf.tensor(w, shapes[i]));
    layer.setWeights(ts);
    tf.dispose(ts);
  }
  const importance = filterImportance(model);
  for (const [key, d] of dead) for (const c of d) assert.equal(importance.get(key)![c], 0, `${key}[${c}] is dead`);

  const { config, model: pruned, kept } = pruneUNet(model, cfg, 0.5);
  for (const [key, d] of dead) assert.deepEqual(kept[key].filter((c) => d.includes(c)), [], `${key} keeps only live filters`);
  assert.equal(config.widths?.enc0a, 2);
  assert.equal(config.widths?.bottomb, 8);
  assert.ok(paramCount(pruned) < 0.35 * paramCount(model), `${paramCount(pruned)} vs ${paramCount(model)} parameters`);
  assert.ok(macsPerPixel(config) < 0.35 * macsPerPixel(cfg));

  const [h, w] = [20, 28];
  const x = pseudoRandom(h * w, 9, 2);
  const ref = predictTf(model, x, w, h, 1, 4);
  const got = predictTf(pruned, x, w, h, 1, 4);
  assert.equal(got.length, h * w);
  let maxErr = 0;
  for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(ref[i] - got[i]));
  assert.ok(maxErr < 1e-5, `max |pruned − full| = ${maxErr}`);
  // The output must vary far more than the 1e-5 tolerance, or the comparison above would prove nothing.
  assert.ok(Math.max(...ref) - Math.min(...ref) > 1e-3, `the output varies (range ${Math.min(...ref)}..${Math.max(...ref)})`);

  // The pruned config round-trips through JSON (model.json) and the ONNX export runs it.
  const rebuilt = buildModel(JSON.parse(JSON.stringify(config)) as UNetConfig);
  assert.equal(paramCount(rebuilt), paramCount(pruned));
  rebuilt.dispose();
  const session = await createOnnxModel(exportOnnx(pruned), { threads: 1 });
  const onnx = await session.run(x, 1, h, w);
  await session.release();
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(onnx[i] - ref[i]) < 1e-4);
  model.dispose();
  pruned.dispose();
});
