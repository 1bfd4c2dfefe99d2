// Constrained MALIS: the merge pass puts the weight of every pair across a membrane on its weakest pixel, the split pass
// the weight of every pair inside a cell on the lowest point of a spurious membrane across it (exact counts), and the
// folded batch targets give the same loss as the per-pixel term plus the two MALIS terms written out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addMalisTerm, malisWeights } from './malis';
import { initTf } from '../tfjs/backend';
import { batchLoss, makeBatch, type BatchSpec } from './trainer';
import { Rng } from './rng';
import * as tf from '@tensorflow/tfjs';

const W = 12;
const H = 8;

/** Two cells (columns 0–4 and 7–11) with a 2-px membrane in columns 5–6 (1 = membrane), `height` rows. */
function twoCells(height = H): Float32Array {
  const t = new Float32Array(W * height);
  for (let y = 0; y < height; y++) t[y * W + 5] = t[y * W + 6] = 1;
  return t;
}

/** The two cells' map: membrane 0.9, interior 0.05, then the given pixels (row, column, P) changed. */
function twoCellMap(target: Float32Array, changes: Array<[number, number, number]>): Float32Array {
  const prob = new Float32Array(W * H);
  for (let i = 0; i < prob.length; i++) prob[i] = target[i] ? 0.9 : 0.05;
  for (const [y, x, p] of changes) prob[y * W + x] = p;
  return prob;
}

function sum(a: Float32Array): number {
  return a.reduce((s, v) => s + v, 0);
}

test('merge pass: all pairs across a membrane fall on its weakest pixel', () => {
  const target = twoCells();
  // A gap: row 3 is weak in both membrane columns, column 6 weakest — every path across passes a 0.9 or these.
  const prob = twoCellMap(target, [[3, 5, 0.3], [3, 6, 0.2]]);
  const m = malisWeights(prob, target, W, H);
  // The path through row 3 has maximum 0.3 (column 5), lower than any other path: that pixel decides every pair.
  assert.ok(Math.abs(m.toMembrane[3 * W + 5] - 1) < 1e-6, `gap pixel: ${m.toMembrane[3 * W + 5]}`);
  assert.ok(Math.abs(sum(m.toMembrane) - 1) < 1e-6);
  // Two clean cells: nothing to split.
  assert.ok(Math.abs(sum(m.toInterior) - 1) < 1e-6, 'the split pass still spreads its pairs over the cells');
  for (let i = 0; i < W * H; i++) if (target[i]) assert.equal(m.toInterior[i], 0, 'membrane pixels take no split weight');
});

test('split pass: a spurious line across a cell takes the pairs it separates, at its lowest point', () => {
  const target = new Float32Array(W * H); // one cell, the whole crop
  const prob = new Float32Array(W * H).fill(0.05);
  for (let y = 0; y < H; y++) prob[y * W + 4] = 0.7;
  prob[5 * W + 4] = 0.6;
  const m = malisWeights(prob, target, W, H);
  const n = W * H;
  const left = 4 * H; // columns 0–3
  const right = 7 * H; // columns 5–11
  // Both sides are joined first (0.05); the 0.6 pixel then joins the left side (left·1 pairs) and the right side
  // ((left + 1)·right pairs); the 0.7 pixels join one at a time later.
  const expected = (left + (left + 1) * right) / ((n * (n - 1)) / 2);
  assert.ok(Math.abs(m.toInterior[5 * W + 4] - expected) < 1e-6, `${m.toInterior[5 * W + 4]} vs ${expected}`);
  assert.ok(Math.abs(sum(m.toInterior) - 1) < 1e-6);
  assert.equal(sum(m.toMembrane), 0, 'one cell: no pairs of different cells');
});

test('a weaker gap elsewhere moves the merge weight there', () => {
  const target = twoCells();
  const prob = twoCellMap(target, [[1, 5, 0.5], [1, 6, 0.5], [6, 5, 0.4], [6, 6, 0.45]]);
  const m = malisWeights(prob, target, W, H);
  assert.ok(m.toMembrane[6 * W + 6] > 0.99, 'the path through row 6 (max 0.45) beats row 1 (0.5)');
  assert.equal(m.toMembrane[1 * W + 5] + m.toMembrane[1 * W + 6], 0);
});

test('folded targets give the per-pixel loss plus both MALIS terms', async () => {
  const rng = new Rng(3);
  // addMalisTerm takes square crops: the two cells, W rows high.
  const S = W;
  const t2 = twoCells(S);
  const l2 = Float32Array.from({ length: S * S }, () => rng.normal() * 2);
  const p2 = l2.map((l) => 1 / (1 + Math.exp(-l)));
  const w2 = Float32Array.from({ length: S * S }, (_, i) => (t2[i] ? 2 : 0.7));
  const y2 = t2.slice();
  const wf = w2.slice();
  addMalisTerm(p2, y2, wf, 1, S, 0.5);
  const m = malisWeights(p2, t2, S, S);
  const bce = (l: number, t: number) => Math.max(l, 0) - l * t + Math.log1p(Math.exp(-Math.abs(l)));
  let direct = 0;
  let folded = 0;
  for (let i = 0; i < S * S; i++) {
    direct += w2[i] * bce(l2[i], t2[i]) + 0.5 * S * S * (m.toMembrane[i] * bce(l2[i], 1) + m.toInterior[i] * bce(l2[i], 0));
    folded += wf[i] * bce(l2[i], y2[i]);
  }
  assert.ok(Math.abs(direct - folded) < 1e-6 * Math.abs(direct), `${direct} vs ${folded}`);

  // And through the trainer: a batch with the term has a larger loss than the same batch without it.
  await initTf();
  const slice = { width: 64, height: 64, channels: 1, raw: Float32Array.from({ length: 64 * 64 }, () => rng.normal()), target: new Uint8Array(64 * 64) };
  for (let y = 0; y < 64; y++) for (const x of [20, 21, 44]) slice.target[y * 64 + x] = 1;
  const spec: BatchSpec = { batchSize: 2, cropPx: 32, augment: { flips: false, intensity: false, elasticPx: 0, elasticGrid: 4, intensityChannel: 0 }, weighting: 'balanced', membraneFraction: 0.05 };
  const plain = makeBatch([slice], spec, 7);
  const withMalis = makeBatch([slice], { ...spec, malis: 1 }, 7);
  const logitsT = tf.randomNormal([2, 32, 32, 1], 0, 1, 'float32', 5);
  const a = batchLoss(logitsT, plain).dataSync()[0];
  const b = batchLoss(logitsT, withMalis).dataSync()[0];
  assert.ok(Number.isFinite(b) && b > a, `${b} should exceed ${a}`);
  assert.deepEqual(Array.from(withMalis.malis!.y.slice(0, 5)), Array.from(plain.y.dataSync().slice(0, 5)), 'the host targets stay untouched');
  tf.dispose([logitsT, plain.x, plain.y, plain.w, withMalis.x, withMalis.y, withMalis.w]);
});
