// ISBI metrics on tiny hand-computed cases: every expected value below is worked out in the comment above its test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  absorbBoundaries,
  bestThreshold,
  groundTruthSegments,
  scoreLabels,
  scoreMembraneStack,
  scoreStack,
  DEFAULT_THRESHOLDS,
  type GroundTruth,
  type SegmentationScores,
} from './index';
import type { Labels } from '../types';

const labels = (width: number, height: number, ids: number[]): Labels => ({ width, height, data: Uint32Array.from(ids) });
const instance = (width: number, height: number, ids: number[]): GroundTruth => ({ kind: 'instance', labels: labels(width, height, ids) });

function close(actual: SegmentationScores, expected: Partial<SegmentationScores>): void {
  for (const [key, value] of Object.entries(expected)) {
    const got = actual[key as keyof SegmentationScores];
    assert.ok(Math.abs(got - value) < 1e-12, `${key}: got ${got}, expected ${value}`);
  }
}

test('ground truth against itself scores exactly 1', () => {
  // A 6×4 membrane image (0 = membrane) with three cells; the prediction is the same cells with other ids.
  const m = [
    255, 255, 0, 255, 255, 255,
    255, 255, 0, 255, 255, 255,
    0, 0, 0, 0, 0, 0,
    255, 255, 255, 255, 0, 255,
  ];
  const gt: GroundTruth = { kind: 'membrane', image: { width: 6, height: 4, data: Uint8Array.from(m) }, membraneValue: 0 };
  const g = groundTruthSegments(gt);
  assert.equal(g.count, 4);
  assert.equal(g.pixels, 15);
  const pred = labels(6, 4, Array.from(g.segments, (v) => (v === 0 ? 0 : 10 * (5 - v))));
  const s = scoreLabels(pred, gt);
  assert.equal(s.vrand, 1);
  assert.equal(s.vrandSplit, 1);
  assert.equal(s.vrandMerge, 1);
  assert.equal(s.vinfo, 1);
  assert.equal(s.vinfoSplit, 1);
  assert.equal(s.vinfoMerge, 1);
  assert.equal(s.randError, 0);
  assert.equal(s.pixelError, 0);
});

test('a known merge', () => {
  // GT  1 1 2 2 3 3 3 3   (instance labels, no boundary: n = 8)
  // S   1 1 1 1 2 2 2 2   (S merges true segments 1 and 2)
  // Contingency counts c(S=i, T=j): (1,1)=2 (1,2)=2 (2,3)=4; marginals t = 2,2,4; s = 4,4.
  // Σc² = 24, Σt² = 24, Σs² = 32  →  split = 24/24 = 1, merge = 24/32 = 3/4, V_rand = 48/56 = 6/7.
  // H(T) = −(¼ln¼ + ¼ln¼ + ½ln½) = 1.5 ln2, H(S) = ln2, H(S,T) = H(T) (T refines S), I = H(S) = ln2.
  // V_info split = I/H(S) = 1, merge = I/H(T) = 2/3, V_info = ln2 / (½·ln2 + ½·1.5ln2) = 0.8.
  const s = scoreLabels(labels(8, 1, [1, 1, 1, 1, 2, 2, 2, 2]), instance(8, 1, [1, 1, 2, 2, 3, 3, 3, 3]));
  close(s, { vrandSplit: 1, vrandMerge: 0.75, vrand: 6 / 7, vinfoSplit: 1, vinfoMerge: 2 / 3, vinfo: 0.8, randError: 1 / 7, pixelError: 0 });
});

test('a known split', () => {
  // The merge case with S and T swapped: GT 1 1 1 1 2 2 2 2, S 1 1 2 2 3 3 3 3.
  // t = 4,4; s = 2,2,4; Σc² = 24, Σt² = 32, Σs² = 24 → split = 3/4, merge = 1, V_rand = 6/7.
  // H(S) = 1.5 ln2, H(T) = ln2, I = ln2 → split = 2/3, merge = 1, V_info = 0.8.
  const s = scoreLabels(labels(8, 1, [1, 1, 2, 2, 3, 3, 3, 3]), instance(8, 1, [1, 1, 1, 1, 2, 2, 2, 2]));
  close(s, { vrandSplit: 0.75, vrandMerge: 1, vrand: 6 / 7, vinfoSplit: 2 / 3, vinfoMerge: 1, vinfo: 0.8, randError: 1 / 7 });
});

test('a mixed error with ground-truth boundary pixels not counted', () => {
  // GT (uint8, membrane = 255 here):  a a 255 b b b   → segments T: a = 2 px, b = 3 px, the 255 pixel is not counted.
  // S:                                1 2  2  2 2 3
  // Counted pixels: (S,T) = (1,a) (2,a) (2,b) (2,b) (3,b) → c: (1,a)=1 (2,a)=1 (2,b)=2 (3,b)=1; n = 5.
  // t = 2,3; s (counted only) = 1,3,1. Σc² = 1+1+4+1 = 7, Σt² = 13, Σs² = 11.
  // split = 7/13, merge = 7/11, V_rand = 14/24 = 7/12.
  // Σ c·ln c: joint 2ln2; t: 2ln2 + 3ln3; s: 3ln3. H = ln5 − Σ/5.
  // H(S,T) = ln5 − 0.4ln2, H(T) = ln5 − 0.4ln2 − 0.6ln3, H(S) = ln5 − 0.6ln3, I = H(S) + H(T) − H(S,T) = ln5 − 1.2ln3.
  // Pixel error: predicted boundary none, GT boundary 1 of 6 pixels → 1/6.
  const gt: GroundTruth = { kind: 'membrane', image: { width: 6, height: 1, data: Uint8Array.from([7, 7, 255, 9, 9, 9]) }, membraneValue: 255 };
  const s = scoreLabels(labels(6, 1, [1, 2, 2, 2, 2, 3]), gt);
  const ln = Math.log;
  const hST = ln(5) - 0.4 * ln(2);
  const hT = ln(5) - 0.4 * ln(2) - 0.6 * ln(3);
  const hS = ln(5) - 0.6 * ln(3);
  const i = hS + hT - hST;
  close(s, { vrandSplit: 7 / 13, vrandMerge: 7 / 11, vrand: 7 / 12, vinfoSplit: i / hS, vinfoMerge: i / hT, vinfo: (2 * i) / (hS + hT), pixelError: 1 / 6 });
  // Note: with the 255 membrane value the interior values 7 and 9 are one class: their 4-components a and b are split
  // by the membrane pixel alone.
  assert.equal(groundTruthSegments(gt).count, 2);
});

test('boundary absorption: repeated 3×3 maximum on the 0 pixels', () => {
  // Round 1 fills the 0 pixels next to a segment from the old values: (1,0) (0,1) (1,1) → 3; (2,1) (3,1) (2,2) → 7.
  // Round 2: (2,0) sees 3 and 7 → 7; (3,0) → 7; (0,2) sees only 3 → 3; (1,2) sees 3 and 7 → 7.
  // (Checked against scipy: im[zeros] = maximum_filter(im, 3)[zeros] until no zero is left.)
  const out = absorbBoundaries(labels(4, 3, [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]));
  assert.deepEqual(Array.from(out.data), [3, 3, 7, 7, 3, 3, 7, 7, 3, 7, 7, 7]);
  // Nothing to absorb from: stays 0.
  assert.deepEqual(Array.from(absorbBoundaries(labels(2, 2, [0, 0, 0, 0])).data), [0, 0, 0, 0]);
});

test('predicted boundaries are absorbed before scoring; pixel error counts them', () => {
  // GT (0 = membrane) 3 rows of  255 255 0 255 255 ; prediction rows  1 0 0 0 2.
  // Absorption: round 1 → 1 1 0 2 2; round 2 → the middle takes max(1, 2) = 2 → 1 1 2 2 2.
  // Counted pixels (GT columns 0,1,3,4) agree with the prediction → every score is 1.
  // Pixel error: prediction boundary = columns 1-3, GT boundary = column 2 → columns 1 and 3 differ: 6 of 15 = 0.4.
  const gtRow = [255, 255, 0, 255, 255];
  const gt: GroundTruth = { kind: 'membrane', image: { width: 5, height: 3, data: Uint8Array.from([...gtRow, ...gtRow, ...gtRow]) }, membraneValue: 0 };
  const row = [1, 0, 0, 0, 2];
  const s = scoreLabels(labels(5, 3, [...row, ...row, ...row]), gt);
  close(s, { vrand: 1, vinfo: 1, vrandSplit: 1, vrandMerge: 1, pixelError: 0.4 });
});

test('an all-boundary prediction counts every pixel as its own segment', () => {
  // GT 1 1 2 2, S = 0 0 0 0 → four singletons: Σc² = 4, Σs² = 4, Σt² = 8 → split = 1/2, merge = 1, V_rand = 8/12.
  // H(S) = ln4, H(T) = ln2, H(S,T) = ln4, I = ln2 → split = 1/2, merge = 1, V_info = 2ln2/(3ln2) = 2/3.
  const s = scoreLabels(labels(4, 1, [0, 0, 0, 0]), instance(4, 1, [1, 1, 2, 2]));
  close(s, { vrandSplit: 0.5, vrandMerge: 1, vrand: 2 / 3, vinfoSplit: 0.5, vinfoMerge: 1, vinfo: 2 / 3, pixelError: 1 });
});

test('sparse instance ids and a slice without ground-truth interior', () => {
  const s = scoreLabels(labels(4, 1, [4e9, 4e9, 7, 7]), instance(4, 1, [3e9, 3e9, 12, 12]));
  close(s, { vrand: 1, vinfo: 1 });
  const empty = scoreLabels(labels(2, 1, [1, 2]), instance(2, 1, [0, 0]));
  assert.ok(Number.isNaN(empty.vrand));
  assert.equal(empty.pixelError, 1);
});

test('scoreStack: per slice and mean (NaN slices skipped)', () => {
  const merge = { seg: labels(8, 1, [1, 1, 1, 1, 2, 2, 2, 2]), gt: instance(8, 1, [1, 1, 2, 2, 3, 3, 3, 3]), index: 20 };
  const same = { seg: labels(2, 1, [1, 2]), gt: instance(2, 1, [5, 6]), index: 21 };
  const empty = { seg: labels(2, 1, [1, 2]), gt: instance(2, 1, [0, 0]), index: 22 };
  const r = scoreStack([merge, same, empty]);
  assert.deepEqual(r.perSlice.map((p) => p.index), [20, 21, 22]);
  // Mean of V_rand over the two scorable slices: (6/7 + 1) / 2 = 13/14.
  close(r.mean, { vrand: 13 / 14, vrandMerge: 0.875, vinfo: 0.9 });
});

test('bestThreshold sweeps a membrane map and keeps the best V_rand', () => {
  // Map rows 0.1 0.1 0.6 0.1 0.1, GT column 2 membrane. Interior = map < t:
  //  t = 0.05, 0.1 → nothing interior: every pixel a singleton (V_rand < 1);
  //  0.15 ≤ t ≤ 0.6 → two components that equal the ground truth: V_rand = 1, pixel error 0;
  //  t ≥ 0.65 → one component spanning both cells: a merge (V_rand_merge = 1/2).
  // Ties keep the first threshold: 0.15.
  const row = [0.1, 0.1, 0.6, 0.1, 0.1];
  const map = { width: 5, height: 3, data: Float32Array.from([...row, ...row, ...row]) };
  const gtRow = [255, 255, 0, 255, 255];
  const gt: GroundTruth = { kind: 'membrane', image: { width: 5, height: 3, data: Uint8Array.from([...gtRow, ...gtRow, ...gtRow]) }, membraneValue: 0 };
  const r = bestThreshold(map, gt);
  assert.equal(r.curve.length, DEFAULT_THRESHOLDS.length);
  assert.equal(r.threshold, 0.15);
  close(r.best, { vrand: 1, vinfo: 1, pixelError: 0 });
  const high = r.curve.find((c) => c.threshold === 0.7);
  assert.ok(high);
  // t = 0.7: one segment of 12 counted px against two of 6: Σc² = 72, Σt² = 72, Σs² = 144 → merge 1/2, V_rand 2/3.
  close(high, { vrandSplit: 1, vrandMerge: 0.5, vrand: 2 / 3, pixelError: 0.2 });
  const flat = scoreMembraneStack([map], [gt.image]);
  assert.equal(flat.threshold, 0.15);
  assert.equal(flat.vrand, 1);
});
