// Boundary weighting: the separation term on hand-made masks (exact values where d1 and d2 are known), its absence
// where there is no second cell, crops that carry the weights with the target, and batches that add them only when
// the weighting asks for them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf } from '../tfjs/backend';
import { boundaryWeights } from './boundary-weight';
import { sampleCrop, type TrainingSlice } from './augment';
import { makeBatch, type BatchSpec } from './trainer';
import { Rng } from './rng';

/** 20×10: cell A in columns 0–8, a membrane of `gap` columns, cell B after it (1 = membrane). */
function twoCells(gap: number): { target: Uint8Array; width: number; height: number } {
  const width = 20;
  const height = 10;
  const target = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 9; x < 9 + gap; x++) target[y * width + x] = 1;
  return { target, width, height };
}

test('a membrane between two cells gets w0·exp(−(d1 + d2)² / 2σ²), interior pixels nothing', () => {
  const { target, width, height } = twoCells(2);
  const w = boundaryWeights(target, width, height, { w0: 10, sigma: 5 });
  // Column 9: 1 px from cell A, 2 px from cell B; column 10 the mirror image. Both: d1 + d2 = 3.
  const expected = 10 * Math.exp(-9 / 50);
  for (let y = 0; y < height; y++) {
    assert.ok(Math.abs(w[y * width + 9] - expected) < 1e-5, `row ${y}, column 9: ${w[y * width + 9]}`);
    assert.ok(Math.abs(w[y * width + 10] - expected) < 1e-5, `row ${y}, column 10`);
    for (const x of [0, 8, 11, 19]) assert.equal(w[y * width + x], 0, `interior (${x}, ${y})`);
  }
});

test('a wider gap weighs less, and a membrane with one cell beside it weighs nothing', () => {
  const thin = boundaryWeights(twoCells(2).target, 20, 10)[9];
  const wide = twoCells(8);
  const w = boundaryWeights(wide.target, 20, 10);
  // Column 12 of an 8-px gap (columns 9–16): 4 px from A, 5 px from B.
  assert.ok(Math.abs(w[12] - 10 * Math.exp(-81 / 50)) < 1e-5);
  assert.ok(w[12] < thin);
  // One cell in the middle of a membrane field: no second cell, no extra weight anywhere.
  const width = 12;
  const lone = new Uint8Array(width * width).fill(1);
  for (let y = 4; y < 8; y++) for (let x = 4; x < 8; x++) lone[y * width + x] = 0;
  assert.ok(boundaryWeights(lone, width, width).every((v) => v === 0));
});

test('cells farther apart than 3σ from a pixel do not count as its second cell', () => {
  // σ = 1: reach 3 px. Column 9 of a 6-px gap is 1 px from A and 6 px from B; B is out of reach, so the weight is 0,
  // where the untruncated formula would give 10·exp(−49/2) ≈ 2e−10 — the same to float precision.
  const { target } = twoCells(6);
  const w = boundaryWeights(target, 20, 10, { w0: 10, sigma: 1 });
  assert.equal(w[9], 0);
});

test('crops carry the weights along with the target, through flips and elastic warps', () => {
  const { target, width, height } = twoCells(2);
  const weight = new Float32Array(target.length);
  for (let i = 0; i < weight.length; i++) weight[i] = target[i] * 7 + (i % 3);
  const slice: TrainingSlice = { width, height, raw: new Float32Array(target.length), channels: 1, target, weight };
  const rng = new Rng(5);
  for (let k = 0; k < 8; k++) {
    const crop = sampleCrop(slice, 8, rng, { flips: true, intensity: false, elasticPx: 2, elasticGrid: 2, intensityChannel: 0 });
    assert.ok(crop.weight, 'the crop has weights');
    // Target and weight come from the same source pixel: membrane pixels carry a weight of 7–9, interior ones 0–2.
    for (let i = 0; i < crop.target.length; i++) assert.equal(crop.weight[i] >= 7, crop.target[i] === 1, `crop ${k}, pixel ${i}`);
  }
  const plain = sampleCrop({ ...slice, weight: undefined }, 8, new Rng(5), { flips: true, intensity: false, elasticPx: 0, elasticGrid: 2, intensityChannel: 0 });
  assert.equal(plain.weight, undefined);
});

test("batches add the slice's weights to the class weights only with the boundary weighting", async () => {
  await initTf();
  const { target, width, height } = twoCells(2);
  const weight = boundaryWeights(target, width, height);
  const slice: TrainingSlice = { width, height, raw: new Float32Array(target.length), channels: 1, target, weight };
  const augment = { flips: false, intensity: false, elasticPx: 0, elasticGrid: 2, intensityChannel: 0 };
  const spec = (weighting: BatchSpec['weighting']): BatchSpec => ({ batchSize: 1, cropPx: 10, augment, weighting, membraneFraction: 0.1 });
  const mean = (w: 'balanced' | 'boundary') => {
    const b = makeBatch([slice], spec(w), 3);
    const ws = b.w.dataSync();
    const ys = b.y.dataSync();
    const out = { membrane: [] as number[], interior: [] as number[] };
    for (let i = 0; i < ws.length; i++) (ys[i] ? out.membrane : out.interior).push(ws[i]);
    b.x.dispose();
    b.y.dispose();
    b.w.dispose();
    return out;
  };
  const balanced = mean('balanced');
  const boundary = mean('boundary');
  // The 10×10 crop of a 20×10 slice starts at x ∈ [0, 10]; with the membrane at columns 9–10 it always holds part of it.
  assert.ok(balanced.membrane.length > 0);
  assert.ok(balanced.membrane.every((w) => Math.abs(w - 5) < 1e-6), 'balanced: 0.5 / 0.1 on membrane');
  assert.ok(boundary.membrane.every((w) => Math.abs(w - (5 + 10 * Math.exp(-9 / 50))) < 1e-5), 'boundary: class weight + separation term');
  assert.deepEqual(boundary.interior, balanced.interior);
});
