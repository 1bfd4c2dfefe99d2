// Agglomeration of an over-segmentation (watershed basins) on its region adjacency graph: merge, greedily, the two
// neighbours whose shared boundary has the lowest mean P(membrane), while that mean is below a threshold. Merged edges
// add their sums and counts, so the mean of a merged edge is the mean over all its boundary samples — the mean-affinity
// rule of waterz (Funke et al. 2018) and GASP's average linkage (Bailoni et al. 2022), which is robust to the single
// weak pixel that lets a max/min rule leak through a membrane.
import type { Labels, MembraneMap } from '../types';
import { checkImageSize, find, maxLabel, relabelConsecutive } from './components';

/**
 * Edges of the region adjacency graph. Boundary samples of a pair (a, b), a < b:
 *  - each boundary pixel (id 0) whose 4-neighbours include both a and b adds its map value (watershed lines are 1 px
 *    wide, so this is the line between the two basins);
 *  - each pair of 4-adjacent pixels with ids a and b adds the larger of their two map values (the pass between them;
 *    this covers partitions without boundary pixels).
 * Boundaries thicker than 1 px (masked membrane) separate regions for good: they give no edge.
 */
export interface RegionGraph {
  /** Regions are 1..count. */
  count: number;
  edgeCount: number;
  a: Uint32Array;
  b: Uint32Array;
  sum: Float64Array;
  samples: Float64Array;
}

class EdgeList {
  a = new Uint32Array(64);
  b = new Uint32Array(64);
  sum = new Float64Array(64);
  samples = new Float64Array(64);
  length = 0;
  private index = new Map<number, number>();
  constructor(private stride: number) {}

  add(u: number, v: number, value: number): void {
    const a = u < v ? u : v;
    const b = u < v ? v : u;
    const key = a * this.stride + b;
    let e = this.index.get(key);
    if (e === undefined) {
      e = this.length++;
      if (e === this.a.length) this.grow();
      this.index.set(key, e);
      this.a[e] = a;
      this.b[e] = b;
    }
    this.sum[e] += value;
    this.samples[e] += 1;
  }

  private grow(): void {
    const size = this.a.length * 2;
    const a = new Uint32Array(size);
    a.set(this.a);
    const b = new Uint32Array(size);
    b.set(this.b);
    const sum = new Float64Array(size);
    sum.set(this.sum);
    const samples = new Float64Array(size);
    samples.set(this.samples);
    Object.assign(this, { a, b, sum, samples });
  }
}

/** Writes the distinct non-zero ids among the 4 neighbours of pixel i (column x) into out; returns how many. */
function distinctNeighbourIds(ids: Uint32Array, i: number, x: number, width: number, n: number, out: Uint32Array): number {
  let k = 0;
  for (let side = 0; side < 4; side++) {
    let id = 0;
    if (side === 0) id = i >= width ? ids[i - width] : 0;
    else if (side === 1) id = x > 0 ? ids[i - 1] : 0;
    else if (side === 2) id = x + 1 < width ? ids[i + 1] : 0;
    else id = i + width < n ? ids[i + width] : 0;
    if (id === 0) continue;
    let seen = false;
    for (let j = 0; j < k; j++) if (out[j] === id) seen = true;
    if (!seen) out[k++] = id;
  }
  return k;
}

/** Builds the region adjacency graph of labels (ids need not be consecutive; count = the largest id). */
export function regionGraph(labels: Labels, map: MembraneMap): RegionGraph {
  const { width, height, data: ids } = labels;
  checkImageSize(ids.length, width, height, 'regionGraph');
  if (map.width !== width || map.height !== height) throw new RangeError('regionGraph: labels and map differ in size');
  const m = map.data;
  const count = maxLabel(ids);
  const edges = new EdgeList(count + 1);
  const n = width * height;
  const around = new Uint32Array(4);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const id = ids[i];
      if (id !== 0) {
        // Each adjacent pair once: look right and down only.
        if (x + 1 < width) {
          const r = ids[i + 1];
          if (r !== 0 && r !== id) edges.add(id, r, m[i] > m[i + 1] ? m[i] : m[i + 1]);
        }
        if (i + width < n) {
          const d = ids[i + width];
          if (d !== 0 && d !== id) edges.add(id, d, m[i] > m[i + width] ? m[i] : m[i + width]);
        }
        continue;
      }
      // A boundary pixel: every pair of distinct ids among its 4 neighbours (at most 6 pairs, usually one).
      const k = distinctNeighbourIds(ids, i, x, width, n, around);
      for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) edges.add(around[p], around[q], m[i]);
    }
  }
  return { count, edgeCount: edges.length, a: edges.a, b: edges.b, sum: edges.sum, samples: edges.samples };
}

/** Binary min-heap of (mean, edge) with lazy deletion; ties go to the lower edge id, i.e. raster order of discovery. */
class EdgeHeap {
  private key = new Float64Array(64);
  private edge = new Uint32Array(64);
  private stamp = new Uint32Array(64);
  size = 0;

  push(key: number, edge: number, stamp: number): void {
    if (this.size === this.key.length) {
      const k = new Float64Array(this.size * 2);
      k.set(this.key);
      const e = new Uint32Array(this.size * 2);
      e.set(this.edge);
      const s = new Uint32Array(this.size * 2);
      s.set(this.stamp);
      this.key = k;
      this.edge = e;
      this.stamp = s;
    }
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(key, edge, this.key[parent], this.edge[parent])) break;
      this.move(parent, i);
      i = parent;
    }
    this.key[i] = key;
    this.edge[i] = edge;
    this.stamp[i] = stamp;
  }

  topKey(): number {
    return this.key[0];
  }
  topEdge(): number {
    return this.edge[0];
  }
  topStamp(): number {
    return this.stamp[0];
  }

  pop(): void {
    const last = --this.size;
    if (last === 0) return;
    const key = this.key[last];
    const edge = this.edge[last];
    const stamp = this.stamp[last];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= last) break;
      if (c + 1 < last && this.less(this.key[c + 1], this.edge[c + 1], this.key[c], this.edge[c])) c++;
      if (!this.less(this.key[c], this.edge[c], key, edge)) break;
      this.move(c, i);
      i = c;
    }
    this.key[i] = key;
    this.edge[i] = edge;
    this.stamp[i] = stamp;
  }

  private less(k1: number, e1: number, k2: number, e2: number): boolean {
    return k1 < k2 || (k1 === k2 && e1 < e2);
  }
  private move(from: number, to: number): void {
    this.key[to] = this.key[from];
    this.edge[to] = this.edge[from];
    this.stamp[to] = this.stamp[from];
  }
}

export interface AgglomerateParams {
  /** Merge while the lowest mean boundary P(membrane) between two neighbours is below this; 0 merges nothing. */
  threshold: number;
}

/**
 * Greedy mean-boundary agglomeration (see the module header and RegionGraph for the boundary samples). Returns new
 * labels with consecutive ids; boundary pixels that separated two merged regions (and no other) join the merged region.
 */
export function agglomerate(labels: Labels, map: MembraneMap, params: AgglomerateParams): Labels {
  const g = regionGraph(labels, map);
  const parent = new Int32Array(g.count + 1);
  for (let i = 0; i <= g.count; i++) parent[i] = i;

  // Per-region neighbour → edge maps (per region, not per pixel: a few thousand per slice).
  const adjacency: Array<Map<number, number> | undefined> = new Array(g.count + 1);
  const neighbours = (r: number): Map<number, number> => {
    let a = adjacency[r];
    if (!a) adjacency[r] = a = new Map();
    return a;
  };
  const ea = g.a.slice(0, g.edgeCount);
  const eb = g.b.slice(0, g.edgeCount);
  const stamp = new Uint32Array(g.edgeCount);
  const dead = new Uint8Array(g.edgeCount);
  const heap = new EdgeHeap();
  for (let e = 0; e < g.edgeCount; e++) {
    neighbours(ea[e]).set(eb[e], e);
    neighbours(eb[e]).set(ea[e], e);
    heap.push(g.sum[e] / g.samples[e], e, 0);
  }

  while (heap.size > 0 && heap.topKey() < params.threshold) {
    const e = heap.topEdge();
    const s = heap.topStamp();
    heap.pop();
    if (dead[e] || s !== stamp[e]) continue;
    dead[e] = 1;
    // Fold the region with fewer neighbours into the other, so each edge moves O(log) times overall.
    let u = ea[e];
    let v = eb[e];
    if (neighbours(u).size < neighbours(v).size) [u, v] = [v, u];
    parent[v] = u;
    const nu = neighbours(u);
    nu.delete(v);
    for (const [w, ev] of neighbours(v)) {
      if (w === u) continue;
      const nw = neighbours(w);
      nw.delete(v);
      const eu = nu.get(w);
      if (eu === undefined) {
        // Only v touched w: the edge now joins u and w, with the same statistics (its heap entry stays valid).
        if (ea[ev] === v) ea[ev] = u;
        else eb[ev] = u;
        nu.set(w, ev);
        nw.set(u, ev);
      } else {
        g.sum[eu] += g.sum[ev];
        g.samples[eu] += g.samples[ev];
        dead[ev] = 1;
        stamp[eu]++;
        heap.push(g.sum[eu] / g.samples[eu], eu, stamp[eu]);
      }
    }
    adjacency[v] = undefined;
  }

  const { width, height, data: ids } = labels;
  const out = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) if (ids[i] !== 0) out[i] = find(parent, ids[i]);
  // A watershed line between two regions that are now one would be a crack inside a segment: fill it. Pixels next to a
  // single original region (masked membrane, the image border of a basin) stay boundary.
  const n = ids.length;
  const around = new Uint32Array(4);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      if (ids[i] !== 0) continue;
      const k = distinctNeighbourIds(ids, i, x, width, n, around);
      if (k < 2) continue;
      const root = find(parent, around[0]);
      let same = true;
      for (let j = 1; j < k && same; j++) same = find(parent, around[j]) === root;
      if (same) out[i] = root;
    }
  }
  relabelConsecutive(out);
  return { width, height, data: out };
}
