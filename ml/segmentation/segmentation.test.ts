// Behaviour of the segmentation building blocks on tiny slices whose right answer can be drawn by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  agglomerate,
  connectedComponents,
  distanceTransform,
  regionGraph,
  segment,
  thresholdSegment,
  watershed,
  watershedSeeds,
  DEFAULT_SEGMENT_PARAMS,
} from './index';
import type { Labels, MembraneMap } from '../types';

const map = (width: number, height: number, values: number[]): MembraneMap => ({ width, height, data: Float32Array.from(values) });
const rows = (row: number[], height: number): number[] => Array.from({ length: height }, () => row).flat();

/** Deterministic pseudo-random numbers in [0, 1) (an LCG; enough for test inputs). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

/** No two 4-adjacent pixels carry different non-zero ids (basins are separated by boundary pixels). */
function separated(l: Labels): boolean {
  const { width, height, data } = l;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const a = data[y * width + x];
      if (a === 0) continue;
      if (x + 1 < width && data[y * width + x + 1] !== 0 && data[y * width + x + 1] !== a) return false;
      if (y + 1 < height && data[(y + 1) * width + x] !== 0 && data[(y + 1) * width + x] !== a) return false;
    }
  }
  return true;
}

test('connected components: 4- versus 8-connectivity, raster-order ids', () => {
  const diagonal = Uint8Array.from([1, 0, 1, 0, 1, 0, 1, 0, 1]);
  const four = connectedComponents(diagonal, 3, 3, 4);
  assert.equal(four.count, 5);
  assert.deepEqual(Array.from(four.labels), [1, 0, 2, 0, 3, 0, 4, 0, 5]);
  const eight = connectedComponents(diagonal, 3, 3, 8);
  assert.equal(eight.count, 1);
  assert.deepEqual(Array.from(eight.labels), [1, 0, 1, 0, 1, 0, 1, 0, 1]);
  // A U shape: the two arms are joined only on the last row (needs the union, not just the left neighbour).
  const u = connectedComponents(Uint8Array.from([1, 0, 1, 1, 0, 1, 1, 1, 1]), 3, 3, 4);
  assert.equal(u.count, 1);
  assert.deepEqual(Array.from(u.labels), [1, 0, 1, 1, 0, 1, 1, 1, 1]);
});

test('thresholdSegment: interior below the threshold, small components removed, ids consecutive', () => {
  // 0.2 = interior, 0.9 = membrane. Components: a 1-px speck at x=0, 4 px at x=2-3 (two rows), 2 px at x=5.
  const m = map(6, 2, [0.2, 0.9, 0.2, 0.2, 0.9, 0.2, 0.9, 0.9, 0.2, 0.2, 0.9, 0.2]);
  assert.deepEqual(Array.from(thresholdSegment(m, { threshold: 0.5 }).data), [1, 0, 2, 2, 0, 3, 0, 0, 2, 2, 0, 3]);
  assert.deepEqual(Array.from(thresholdSegment(m, { threshold: 0.5, minSizePx: 2 }).data), [0, 0, 1, 1, 0, 2, 0, 0, 1, 1, 0, 2]);
  assert.deepEqual(Array.from(thresholdSegment(m, { threshold: 0.1 }).data), new Array(12).fill(0));
});

test('distance transform is exact Euclidean', () => {
  // One background pixel in the centre of 5×5: the distance is the Euclidean distance to it.
  const mask = new Uint8Array(25).fill(1);
  mask[12] = 0;
  const d = distanceTransform(mask, 5, 5);
  assert.equal(d[12], 0);
  assert.equal(d[0], Math.fround(Math.sqrt(8)));
  assert.equal(d[2], 2);
  assert.equal(d[1], Math.fround(Math.sqrt(5)));
  // Brute force on a random mask.
  const w = 17;
  const h = 11;
  const r = noise(w * h, 7);
  const m = Uint8Array.from(r, (v) => (v < 0.85 ? 1 : 0));
  const dt = distanceTransform(m, w, h);
  for (let i = 0; i < w * h; i++) {
    let best = Infinity;
    for (let j = 0; j < w * h; j++) {
      if (m[j]) continue;
      const dx = (i % w) - (j % w);
      const dy = Math.floor(i / w) - Math.floor(j / w);
      best = Math.min(best, Math.sqrt(dx * dx + dy * dy));
    }
    assert.equal(dt[i], Math.fround(best), `pixel ${i}`);
  }
  assert.equal(distanceTransform(new Uint8Array(4).fill(1), 2, 2)[0], Infinity);
});

test('watershed: two basins separated by a ridge give two labels and a 1-px line', () => {
  // Columns: 0.5 0.1 0.5 0.7 0.9 0.7 0.5 0.1 0.5 — seeds (P < 0.3) in columns 1 and 7, the ridge in column 4.
  const m = map(9, 5, rows([0.5, 0.1, 0.5, 0.7, 0.9, 0.7, 0.5, 0.1, 0.5], 5));
  const l = watershed(m, { seedThreshold: 0.3, minSeedSizePx: 2 });
  assert.deepEqual(Array.from(l.data), rows([1, 1, 1, 1, 0, 2, 2, 2, 2], 5));
  // Without lines the ridge joins a basin; everything is labelled.
  const full = watershed(m, { seedThreshold: 0.3, minSeedSizePx: 2, watershedLines: false });
  for (let y = 0; y < 5; y++) {
    const row = Array.from(full.data.subarray(y * 9, y * 9 + 9));
    assert.deepEqual(row.slice(0, 4), [1, 1, 1, 1]);
    assert.deepEqual(row.slice(5), [2, 2, 2, 2]);
    assert.ok(row[4] === 1 || row[4] === 2);
  }
  // A mask keeps the membrane (P ≥ 0.6) out of both basins.
  const masked = watershed(m, { seedThreshold: 0.3, minSeedSizePx: 2, maskThreshold: 0.6 });
  assert.deepEqual(Array.from(masked.data), rows([1, 1, 1, 0, 0, 0, 2, 2, 2], 5));
  // Seeds smaller than minSeedSizePx do not count: one 5-px seed column each, so 6 px removes both.
  assert.equal(watershedSeeds(m, { seedThreshold: 0.3, minSeedSizePx: 6 }).count, 0);
});

test('distance seeds split two touching cells that threshold seeds see as one', () => {
  // Two discs of radius 6 whose centres are 10 px apart, joined by a neck; P = 0 inside, 1 outside.
  const w = 28;
  const h = 16;
  const values: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const a = Math.hypot(x - 9, y - 8) <= 6;
      const b = Math.hypot(x - 19, y - 8) <= 6;
      values.push(a || b ? 0 : 1);
    }
  }
  const m = map(w, h, values);
  assert.equal(watershedSeeds(m, { seeds: 'threshold', seedThreshold: 0.5, minSeedSizePx: 1 }).count, 1);
  const seeds = watershedSeeds(m, { seeds: 'distance', seedThreshold: 0.5, minSeedSizePx: 1, seedMinDistancePx: 4 });
  assert.equal(seeds.count, 2);
  const l = watershed(m, { seeds: 'distance', seedThreshold: 0.5, minSeedSizePx: 1, seedMinDistancePx: 4, maskThreshold: 0.5 });
  assert.equal(Math.max(...l.data), 2);
  assert.equal(l.data[8 * w + 9], 1);
  assert.equal(l.data[8 * w + 19], 2);
  assert.ok(separated(l));
});

test('watershed is deterministic and separates basins on a noisy map', () => {
  const w = 64;
  const h = 48;
  const data = noise(w * h, 42);
  // Smooth the noise a little so that basins have some size.
  const smooth = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      let k = 0;
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          const xx = x + dx;
          const yy = y + dy;
          if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
          s += data[yy * w + xx];
          k++;
        }
      }
      smooth[y * w + x] = s / k;
    }
  }
  const m: MembraneMap = { width: w, height: h, data: smooth };
  const params = { seedThreshold: 0.45, minSeedSizePx: 1 };
  const a = watershed(m, params);
  const b = watershed({ width: w, height: h, data: smooth.slice() }, params);
  assert.deepEqual(a.data, b.data);
  assert.ok(Math.max(...a.data) > 2);
  assert.ok(separated(a));
  const sa = segment(m);
  assert.deepEqual(sa.data, segment(m).data);
});

/**
 * 7×5 labels with watershed lines (0):     map values on the lines:
 *   A A A 0 C C C                            line A|C (x=3, y=0..1): 0.9
 *   A A A 0 C C C                            line A/B (y=2, x=0..2): 0.1
 *   0 0 0 0 C C C                            line B|C (x=3, y=3..4): 0.3
 *   B B B 0 C C C                            (x=3, y=2) touches only C: no edge
 *   B B B 0 C C C
 * Edges: A–B mean 0.1 (3 samples), A–C mean 0.9 (2), B–C mean 0.3 (2).
 */
function threeRegions(): { labels: Labels; map: MembraneMap } {
  const A = 1;
  const B = 2;
  const C = 3;
  const ids = [A, A, A, 0, C, C, C, A, A, A, 0, C, C, C, 0, 0, 0, 0, C, C, C, B, B, B, 0, C, C, C, B, B, B, 0, C, C, C];
  const m = [0, 0, 0, 0.9, 0, 0, 0, 0, 0, 0, 0.9, 0, 0, 0, 0.1, 0.1, 0.1, 0.5, 0, 0, 0, 0, 0, 0, 0.3, 0, 0, 0, 0, 0, 0, 0.3, 0, 0, 0];
  return { labels: { width: 7, height: 5, data: Uint32Array.from(ids) }, map: map(7, 5, m) };
}

test('region graph: boundary samples per pair', () => {
  const { labels, map: m } = threeRegions();
  const g = regionGraph(labels, m);
  const edges = new Map<string, number[]>();
  for (let e = 0; e < g.edgeCount; e++) edges.set(`${g.a[e]}-${g.b[e]}`, [g.sum[e], g.samples[e]]);
  const near = (k: string, mean: number, samples: number): void => {
    const [sum, n] = edges.get(k) ?? [Number.NaN, 0];
    assert.equal(n, samples, k);
    assert.ok(Math.abs(sum / n - mean) < 1e-6, k);
  };
  assert.equal(g.edgeCount, 3);
  near('1-2', 0.1, 3);
  near('1-3', 0.9, 2);
  near('2-3', 0.3, 2);
});

test('agglomeration merges a weak boundary, keeps a strong one, and pools merged edges', () => {
  const { labels, map: m } = threeRegions();
  // Threshold 0.5: A–B (0.1) merges first. Then A∪B–C pools A–C and B–C: (2·0.9 + 2·0.3) / 4 = 0.6 ≥ 0.5 → stop.
  // (Keeping B–C's own 0.3 would wrongly merge everything.) The A/B line is filled; the others stay boundary.
  const out = agglomerate(labels, m, { threshold: 0.5 });
  assert.deepEqual(Array.from(out.data), [1, 1, 1, 0, 2, 2, 2, 1, 1, 1, 0, 2, 2, 2, 1, 1, 1, 0, 2, 2, 2, 1, 1, 1, 0, 2, 2, 2, 1, 1, 1, 0, 2, 2, 2]);
  // Threshold 0.65: the pooled 0.6 merges too: one segment; the corner pixel (3,2) touches only C and stays 0.
  const all = agglomerate(labels, m, { threshold: 0.65 });
  assert.equal(Math.max(...all.data), 1);
  assert.equal(all.data[2 * 7 + 3], 0);
  assert.equal(all.data[3], 1);
  // Threshold 0: nothing merges; ids are renumbered in raster order (A = 1, C = 2, B = 3).
  const none = agglomerate(labels, m, { threshold: 0 });
  assert.deepEqual(Array.from(none.data), Array.from(labels.data, (v) => [0, 1, 3, 2][v]));
});

test('segment: consecutive ids, both methods, defaults documented', () => {
  const m = map(9, 5, rows([0.5, 0.1, 0.5, 0.7, 0.9, 0.7, 0.5, 0.1, 0.5], 5));
  const ws = segment(m, { minSeedSizePx: 2, minSizePx: 1 });
  assert.deepEqual(Array.from(ws.data), rows([1, 1, 1, 1, 0, 2, 2, 2, 2], 5));
  // A weak ridge (0.4 < 0.5) is agglomerated away.
  const weak = map(9, 5, rows([0.2, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.1, 0.2], 5));
  const merged = segment(weak, { seedThreshold: 0.15, minSeedSizePx: 2, minSizePx: 1 });
  assert.deepEqual(Array.from(merged.data), new Array(45).fill(1));
  const th = segment(m, { method: 'threshold', threshold: 0.6, minSizePx: 1 });
  assert.deepEqual(Array.from(th.data), rows([1, 1, 1, 0, 0, 0, 2, 2, 2], 5));
  assert.equal(DEFAULT_SEGMENT_PARAMS.method, 'watershed');
});
