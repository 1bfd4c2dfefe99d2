// Filter pruning: when the filters it removes are dead (they output exactly 0), the pruned dense U-Net must compute
// exactly what the full one computes; that checks every kernel cut along both axes, the concatenation offsets and
// the batch-norm slicing at once. And the pruned config is a smaller model that builds, exports and runs.
// Compensation: filters that output a constant are pruned with their means folded into their consumers (exact away
// from the slice border, where zero padding sees no constant), and filters that duplicate others are chosen by the
// reconstruction order and pruned with their twins absorbing them (the refit), where less is far off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { buildModel, macsPerPixel, type UNetConfig } from '../models';
import { perturbBatchNorm, pseudoRandom, seedWeights } from '../models/test-helpers';
import { predictTf } from '../infer/predict-tf';
import { exportOnnx } from '../onnx/export';
import { createOnnxModel } from '../infer/onnx-session';
import { receptiveFieldRadius } from '../infer/receptive-field';
import { chooseKept, filterImportance, pruneUNet, widthKey, type Compensation, type ImportanceCriterion } from './structured';

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
  const dead = halfOfEachLayer(model);
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

/** Rewrite a layer's weights in place: `edit` gets copies of the values and the shapes. */
function editWeights(layer: tf.layers.Layer, edit: (ws: Float32Array[], shapes: number[][]) => void): void {
  const shapes = layer.getWeights().map((w) => w.shape);
  const ws = layer.getWeights().map((w) => new Float32Array(w.dataSync()));
  edit(ws, shapes);
  const ts = ws.map((w, i) => tf.tensor(w, shapes[i]));
  layer.setWeights(ts);
  tf.dispose(ts);
}

/** Half of each prunable layer's filters (a different half per layer, seeded), by widths key. */
function halfOfEachLayer(model: tf.LayersModel): Map<string, number[]> {
  const chosen = new Map<string, number[]>();
  let seed = 3;
  for (const layer of model.layers) {
    const key = widthKey(layer.name);
    if (!key) continue;
    const n = (layer.outputShape as number[])[3];
    const r = pseudoRandom(n, seed++);
    chosen.set(key, Array.from(r.keys()).sort((a, b) => r[a] - r[b]).slice(0, n / 2));
  }
  return chosen;
}

/** Logits of the model on one H×W slice. */
function logits(model: tf.LayersModel, x: Float32Array, h: number, w: number): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor4d(x, [1, h, w, 1])) as tf.Tensor).dataSync() as Float32Array);
}

/** Largest |a − b| over the pixels at least `margin` from the border of an H×W map. */
function maxDiff(a: Float32Array, b: Float32Array, h: number, w: number, margin = 0): number {
  let m = 0;
  for (let y = margin; y < h - margin; y++) for (let x = margin; x < w - margin; x++) m = Math.max(m, Math.abs(a[y * w + x] - b[y * w + x]));
  return m;
}

function prunedLogits(model: tf.LayersModel, crops: tf.Tensor4D[], importance: ImportanceCriterion, compensate: Compensation, x: Float32Array, h: number, w: number) {
  const p = pruneUNet(model, cfg, 0.5, { crops, importance, compensate });
  const out = logits(p.model, x, h, w);
  p.model.dispose();
  return { kept: p.kept, out };
}

test('constant filters are pruned with their means folded into their consumers: the output away from the border is unchanged', async () => {
  await initTf('cpu');
  const model = buildModel(cfg);
  seedWeights(model, 21);
  perturbBatchNorm(model);
  // Half of each layer's filters output a constant: a zero kernel, then batch norm with μ = 0 and β > 0 (so the ReLU
  // passes β); a transposed convolution's zero kernel passes its bias (either sign).
  const constant = halfOfEachLayer(model);
  for (const layer of model.layers) {
    const key = widthKey(layer.name);
    const bnOf = /^(.*)_bn$/.exec(layer.name)?.[1];
    if (key) {
      const transposed = layer.getClassName() === 'Conv2DTranspose';
      const c = constant.get(key)!;
      editWeights(layer, (ws, [[, , a, b]]) => {
        const [co, ci] = transposed ? [a, b] : [b, a];
        for (let i = 0; i < ws[0].length; i++) if (c.includes(transposed ? Math.floor(i / ci) % co : i % co)) ws[0][i] = 0;
        if (transposed) c.forEach((o, j) => (ws[1][o] = (j % 2 ? -0.4 : 0.3) + 0.1 * j));
      });
    } else if (bnOf && constant.has(bnOf)) {
      editWeights(layer, (ws) => constant.get(bnOf)!.forEach((o, j) => ([ws[1][o], ws[2][o]] = [0.5 + 0.2 * j, 0])));
    }
  }
  // A transposed convolution gives each output pixel one of its taps, so only a constant it weighs equally at every
  // tap is exactly the mean over taps: make it so for the constant inputs of up1 (bottomb) and up0 (dec1b).
  for (const [up, from] of [['up1', 'bottomb'], ['up0', 'dec1b']]) {
    editWeights(model.getLayer(up), (ws, [[kh, kw, co, ci]]) => {
      for (let o = 0; o < co; o++) for (const c of constant.get(from)!) for (let t = 1; t < kh * kw; t++) ws[0][(t * co + o) * ci + c] = ws[0][o * ci + c];
    });
  }
  const crops = [0, 1].map((k) => tf.tensor4d(pseudoRandom(32 * 32, 40 + k, 2), [1, 32, 32, 1]));
  const [h, w] = [96, 96];
  const x = pseudoRandom(h * w, 9, 2);
  const ref = logits(model, x, h, w);
  const margin = receptiveFieldRadius(cfg);

  const withMeans = prunedLogits(model, crops, 'l1', 'mean', x, h, w);
  for (const [key, c] of constant) assert.deepEqual(withMeans.kept[key].filter((k) => c.includes(k)), [], `${key}: the constant filters go`);
  const without = prunedLogits(model, crops, 'l1', 'none', x, h, w);
  const compensated = maxDiff(ref, withMeans.out, h, w, margin);
  const uncompensated = maxDiff(ref, without.out, h, w, margin);
  assert.ok(compensated < 1e-4, `compensated: max |pruned − full| = ${compensated} in the interior`);
  assert.ok(uncompensated > 0.1, `uncompensated: max |pruned − full| = ${uncompensated} in the interior`);
  assert.ok(Math.max(...ref) - Math.min(...ref) > 0.1, 'the logits vary');
  tf.dispose(crops);
  model.dispose();
});

test('filters that duplicate others are pruned and refitted into their twins: the output is unchanged up to the ridge, everywhere', async () => {
  await initTf('cpu');
  const model = buildModel(cfg);
  seedWeights(model, 22);
  perturbBatchNorm(model);
  // Filter n/2 + i of every layer is a copy of filter i (kernel, bias, batch norm), so its channel equals filter i's.
  const half = (n: number) => Array.from({ length: n / 2 }, (_, i) => i);
  for (const layer of model.layers) {
    const key = widthKey(layer.name);
    const bnOf = /^(.*)_bn$/.exec(layer.name)?.[1];
    if (key) {
      const transposed = layer.getClassName() === 'Conv2DTranspose';
      editWeights(layer, (ws, [[kh, kw, a, b]]) => {
        const [co, ci] = transposed ? [a, b] : [b, a];
        const at = (t: number, c: number, o: number) => (transposed ? (t * co + o) * ci + c : (t * ci + c) * co + o);
        for (const o of half(co)) {
          for (let t = 0; t < kh * kw; t++) for (let c = 0; c < ci; c++) ws[0][at(t, c, co / 2 + o)] = ws[0][at(t, c, o)];
          if (ws[1]) ws[1][co / 2 + o] = ws[1][o];
        }
      });
    } else if (bnOf && widthKey(`${bnOf}_conv`)) {
      editWeights(layer, (ws) => {
        for (const v of ws) for (const o of half(v.length)) v[v.length / 2 + o] = v[o];
      });
    }
  }
  const crops = [0, 1, 2, 3].map((k) => tf.tensor4d(pseudoRandom(32 * 32, 50 + k, 2), [1, 32, 32, 1]));
  const [h, w] = [40, 48];
  const x = pseudoRandom(h * w, 9, 2);
  const ref = logits(model, x, h, w);

  const refit = prunedLogits(model, crops, 'reconstruction', 'refit', x, h, w);
  const withMeans = prunedLogits(model, crops, 'reconstruction', 'mean', x, h, w);
  const byL1 = prunedLogits(model, crops, 'l1', 'refit', x, h, w);
  const range = Math.max(...ref) - Math.min(...ref);
  const refitErr = maxDiff(ref, refit.out, h, w);
  const meanErr = maxDiff(ref, withMeans.out, h, w);
  const l1Err = maxDiff(ref, byL1.out, h, w);
  assert.ok(range > 0.5, `the logits vary (range ${range})`);
  // Not exact: the refit's ridge (1e-3 of the mean variance) shrinks the kept channels' weights a little (1.7 % of the
  // range here; 5e-6 with a ridge of 1e-7). Means alone cannot stand in for a varying channel, and the L1 order,
  // blind to duplicates (a pair scores the same), keeps both filters of the best pairs and loses the others.
  assert.ok(refitErr < 0.03 * range, `refit: max |pruned − full| = ${refitErr}, logit range ${range}`);
  assert.ok(meanErr > 0.5 * range, `means only: max |pruned − full| = ${meanErr}`);
  assert.ok(l1Err > 0.5 * range, `L1 order, refitted: max |pruned − full| = ${l1Err}`);
  tf.dispose(crops);
  model.dispose();
});
