// The proofreading tools and deltas on small slices whose right answer is known by construction: brush pixels against
// a brute-force distance test, fills and merges drawn by hand, a split that must follow a membrane line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Labels } from '../types';
import { groundTruthSegments } from '../metrics/ground-truth';
import {
  applyDelta,
  applyDeltas,
  cutSegment,
  deleteSegment,
  deltaBetween,
  deltaFromChanges,
  DeltaMismatchError,
  fillRegion,
  membraneFromRaw,
  mergeSegments,
  paintStroke,
  ProofreadError,
  replaceLabels,
  revertDelta,
  revertDeltas,
  sliceQuality,
  splitSegment,
  strokePixels,
} from './index';

const slice = (width: number, height: number, values?: number[]): Labels => ({ width, height, data: values ? Uint32Array.from(values) : new Uint32Array(width * height) });

/** Pixels whose centre lies within r of segment (a, b): the brush's definition, computed the slow obvious way. */
function bruteStroke(width: number, height: number, pts: number[], r: number): number[] {
  const out: number[] = [];
  const rr = Math.max(0.5, r);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let best = Infinity;
      for (let s = 0; s + 3 < pts.length || (s === 0 && pts.length === 2); s += 2) {
        const [ax, ay] = [pts[s], pts[s + 1]];
        const [bx, by] = pts.length === 2 ? [ax, ay] : [pts[s + 2], pts[s + 3]];
        const dx = bx - ax;
        const dy = by - ay;
        const l2 = dx * dx + dy * dy;
        const t = l2 > 0 ? Math.max(0, Math.min(1, ((x + 0.5 - ax) * dx + (y + 0.5 - ay) * dy) / l2)) : 0;
        best = Math.min(best, Math.hypot(x + 0.5 - ax - t * dx, y + 0.5 - ay - t * dy));
        if (pts.length === 2) break;
      }
      const under = pts.some((_, k) => k % 2 === 0 && Math.floor(pts[k]) === x && Math.floor(pts[k + 1]) === y);
      if (best <= rr || under) out.push(y * width + x);
    }
  }
  return out;
}

test('strokePixels matches the brute-force capsule, clipped at the slice edge', () => {
  const cases: [number[], number][] = [
    [[5.5, 5.5], 0],
    [[5.2, 5.7], 2.5],
    [[1, 1, 18.3, 4.7, 10, 15], 1.7],
    [[-3, 10, 25, 10], 3],
    [[19.9, 0.1, 0.1, 19.9], 0.8],
  ];
  for (const [pts, r] of cases) assert.deepEqual([...strokePixels(20, 20, pts, r)], bruteStroke(20, 20, pts, r), `stroke ${pts} r ${r}`);
  assert.equal(strokePixels(20, 20, [5.5, 5.5], 0).length, 1);
  assert.equal(strokePixels(20, 20, [-50, -50], 2).length, 0);
});

test('a delta applies and reverts exactly, and refuses a slice in another state', () => {
  const l = slice(8, 8);
  l.data.fill(3);
  const before = l.data.slice();
  const d = paintStroke(l, 0, [1.5, 1.5, 6.5, 1.5], 1, 7);
  assert.ok(d.indices.length > 0 && d.before.every((v) => v === 3) && d.after.every((v) => v === 7));
  applyDelta(l.data, d);
  assert.deepEqual(deltaBetween(0, before, l.data), d);
  assert.throws(() => applyDelta(l.data, d), DeltaMismatchError);
  revertDelta(l.data, d);
  assert.deepEqual(l.data, before);
  // A mismatch found half-way leaves the slice untouched.
  l.data[d.indices[d.indices.length - 1]] = 9;
  const snapshot = l.data.slice();
  assert.throws(() => applyDelta(l.data, d), DeltaMismatchError);
  assert.deepEqual(l.data, snapshot);
});

test('a group of deltas over several slices applies and reverts as one, all or nothing', () => {
  const slices = [slice(8, 8), slice(8, 8), slice(8, 8)];
  slices.forEach((l, z) => l.data.fill(z + 1));
  const at = (z: number) => slices[z].data;
  // Slices 0 and 2, and slice 0 a second time on top of the first delta (applied in order, reverted in reverse).
  const d0 = deltaFromChanges(0, at(0), [0, 1, 2], 7);
  const d2 = deltaFromChanges(2, at(2), [10, 11], 8);
  const d0b = deltaFromChanges(0, Uint32Array.from(at(0)).fill(7, 0, 3), [2, 3], 9);
  const before = slices.map((l) => l.data.slice());
  applyDeltas(at, [d0, d2, d0b]);
  assert.deepEqual([...at(0).subarray(0, 5)], [7, 7, 9, 9, 1]);
  assert.deepEqual([...at(2).subarray(9, 13)], [3, 8, 8, 3]);
  assert.deepEqual(at(1), before[1]);
  const after = slices.map((l) => l.data.slice());
  revertDeltas(at, [d0, d2, d0b]);
  slices.forEach((l, z) => assert.deepEqual(l.data, before[z], `slice ${z} reverted`));
  // The last delta of the group does not fit: the ones before it are taken back, every slice is as it was.
  at(0)[3] = 5;
  const held = slices.map((l) => l.data.slice());
  assert.throws(() => applyDeltas(at, [d0, d2, d0b]), DeltaMismatchError);
  slices.forEach((l, z) => assert.deepEqual(l.data, held[z], `slice ${z} untouched after the failed group`));
  // Likewise when reverting: the first delta (reverted last) does not fit.
  at(0)[3] = 1;
  applyDeltas(at, [d0, d2, d0b]);
  at(0)[0] = 4;
  const held2 = slices.map((l) => l.data.slice());
  assert.throws(() => revertDeltas(at, [d0, d2, d0b]), DeltaMismatchError);
  slices.forEach((l, z) => assert.deepEqual(l.data, held2[z], `slice ${z} untouched after the failed revert`));
  assert.deepEqual([...at(2)], [...after[2]]);
});

test('the brush skips locked segments and records only real changes', () => {
  const l = slice(4, 1, [1, 2, 2, 5]);
  const d = paintStroke(l, 2, [0, 0.5, 4, 0.5], 0.5, 2, new Set([5]));
  assert.equal(d.z, 2);
  assert.deepEqual([...d.indices], [0]);
  const e = paintStroke(l, 0, [0, 0.5, 4, 0.5], 0.5, 0);
  assert.deepEqual([...e.after], [0, 0, 0, 0]);
});

test('fill floods the 4-connected region only, and not a locked one', () => {
  // prettier-ignore
  const l = slice(5, 3, [
    1, 1, 0, 2, 2,
    1, 0, 2, 2, 0,
    0, 1, 1, 0, 1,
  ]);
  const d = fillRegion(l, 0, 0.5, 0.5, 9);
  assert.deepEqual([...d.indices], [0, 1, 5]);
  assert.throws(() => fillRegion(l, 0, 4.5, 0.5, 9, new Set([2])), ProofreadError);
  assert.throws(() => fillRegion(l, 0, 7, 0, 9), /outside/);
});

test('merge relabels into the first id and closes the line between, not lines to others', () => {
  // prettier-ignore
  const l = slice(7, 3, [
    1, 1, 0, 2, 2, 0, 3,
    1, 1, 0, 2, 2, 0, 3,
    1, 1, 0, 2, 2, 0, 3,
  ]);
  const d = mergeSegments(l, 0, [2, 1]);
  applyDelta(l.data, d);
  assert.deepEqual([...l.data.slice(0, 7)], [2, 2, 2, 2, 2, 0, 3]);
  assert.throws(() => mergeSegments(l, 0, [2, 2]), ProofreadError);
  assert.throws(() => mergeSegments(l, 0, [2, 3], new Set([3])), /locked/);
});

test('split by seeds follows the membrane inside the segment and leaves others alone', () => {
  // One segment (id 1) of 12×6 with a membrane ridge at column 7; a second segment (id 4) beside it.
  const w = 14;
  const h = 6;
  const l = slice(w, h);
  const map = { width: w, height: h, data: new Float32Array(w * h).fill(0.1) };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) l.data[y * w + x] = x < 12 ? 1 : 4;
    map.data[y * w + 7] = 0.9;
  }
  const seedsA = strokePixels(w, h, [1.5, 2.5], 0.5);
  const seedsB = strokePixels(w, h, [10.5, 3.5], 0.5);
  const d = splitSegment(l, map, 0, 1, [seedsA, seedsB], 5);
  applyDelta(l.data, d);
  for (let y = 0; y < h; y++) {
    // The ridge pixel joins one side; every pixel left of it stays 1, every pixel right of it (up to 11) becomes 5.
    for (let x = 0; x < 7; x++) assert.equal(l.data[y * w + x], 1);
    for (let x = 8; x < 12; x++) assert.equal(l.data[y * w + x], 5);
    for (let x = 12; x < w; x++) assert.equal(l.data[y * w + x], 4);
  }
  assert.throws(() => splitSegment(l, map, 0, 1, [seedsA, seedsB], 6), /two places/); // seedsB now lies in segment 5
});

test('cut splits along the line; the largest piece keeps the id', () => {
  const w = 10;
  const l = slice(w, 4);
  l.data.fill(2);
  const line = strokePixels(w, 4, [3.5, -1, 3.5, 5], 0.5);
  const d = cutSegment(l, 0, 2, line, 8);
  applyDelta(l.data, d);
  for (let y = 0; y < 4; y++) assert.deepEqual([...l.data.slice(y * w, y * w + w)], [8, 8, 8, 0, 2, 2, 2, 2, 2, 2]);
  assert.throws(() => cutSegment(l, 0, 2, strokePixels(w, 4, [6.5, 1.5], 0.5), 9), /does not cut/);
});

test('delete empties one segment', () => {
  const l = slice(3, 1, [1, 2, 1]);
  assert.deepEqual([...deleteSegment(l, 0, 1).indices], [0, 2]);
  assert.throws(() => deleteSegment(l, 0, 0), ProofreadError);
});

test('replaceLabels takes the new labels everywhere except locked segments, which stay exactly as they were', () => {
  const l = slice(6, 1, [1, 1, 0, 2, 2, 3]);
  const next = Uint32Array.from([5, 5, 0, 5, 1, 1]);
  // Unlocked: the delta is the plain difference, and reverting it restores the slice.
  const plain = replaceLabels(l, 4, next, 9);
  assert.equal(plain.z, 4);
  assert.deepEqual([...plain.indices], [0, 1, 3, 4, 5]);
  // Segment 1 locked: its pixels keep 1, and the proposal's id 1 elsewhere becomes the fresh id 9, not a second piece of 1.
  const d = replaceLabels(l, 4, next, 9, new Set([1]));
  applyDelta(l.data, d);
  assert.deepEqual([...l.data], [1, 1, 0, 5, 9, 9]);
  revertDelta(l.data, d);
  assert.deepEqual([...l.data], [1, 1, 0, 2, 2, 3]);
  assert.throws(() => replaceLabels(l, 0, new Uint32Array(3), 9), /3 pixels/);
});

test('membraneFromRaw makes dark pixels membrane', () => {
  const m = membraneFromRaw({ width: 3, height: 1, data: Uint8Array.from([0, 128, 255]) });
  assert.ok(m.data[0] > 0.9 && m.data[2] < 0.1 && m.data[1] > 0.3 && m.data[1] < 0.7);
});

test('sliceQuality ranks the merge and the split and scores 1 when fixed', () => {
  const w = 8;
  // Truth: three columns of segments 1 | 2 | 3. Prediction merges 1 and 2, and splits 3 into two rows.
  const truth = slice(w, 4);
  const pred = slice(w, 4);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < w; x++) {
      const j = x < 3 ? 1 : x < 6 ? 2 : 3;
      truth.data[y * w + x] = j;
      pred.data[y * w + x] = j < 3 ? 1 : y < 2 ? 3 : 4;
    }
  }
  const gt = groundTruthSegments({ kind: 'instance', labels: truth });
  const q = sliceQuality(pred, gt);
  assert.ok(q.scores.vrand < 1);
  assert.equal(q.errors[0].kind, 'merge');
  assert.deepEqual(q.errors[0].ids, [1]);
  assert.equal(q.errors[0].share, 1);
  assert.equal(q.errors[1].kind, 'split');
  assert.deepEqual([...q.errors[1].ids].sort(), [3, 4]);
  // Jump targets: the middle of the largest overlap, on the segment named first. The merge's overlaps with true 1
  // and 2 tie (12 px each), the first is kept: x 0–2, centroid (1, 1.5), whose first nearest pixel is (1, 1).
  assert.deepEqual([q.errors[0].x, q.errors[0].y], [1, 1]);
  for (const e of q.errors) assert.equal(pred.data[e.y * w + e.x], e.ids[0]);
  // A boundary pixel absorbed into a segment is never the target: with the overlap's first row a boundary (0, where
  // the first pixel of the overlap in raster order lies), the jump still lands on segment 1.
  const bounded = slice(w, 4, [...pred.data]);
  bounded.data.fill(0, 0, 3);
  const qb = sliceQuality(bounded, gt);
  const mb = qb.errors.find((e) => e.kind === 'merge');
  assert.ok(mb && bounded.data[mb.y * w + mb.x] === 1, 'the jump lands on the merged segment, not its boundary');
  assert.equal(sliceQuality(truth, gt).errors.length, 0);
  assert.equal(sliceQuality(truth, gt).scores.vrand, 1);
});
