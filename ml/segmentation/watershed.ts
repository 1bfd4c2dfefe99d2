// Seeded watershed of a membrane map: seeds are confident cell interiors, and basins grow from them in order of
// increasing P(membrane) until they meet on the membranes. The map is quantised to a few hundred levels so that a bucket
// queue (one FIFO per level) replaces a heap: O(1) per pixel, and FIFO order inside a level breaks ties by insertion
// order, which makes the result deterministic.
import type { Labels, MembraneMap } from '../types';
import { checkImageSize, connectedComponents, relabelConsecutive, removeSmallSegments, type Components } from './components';
import { distanceTransform } from './distance';

export interface SeedParams {
  /**
   * 'threshold': each connected component of map < seedThreshold (4-connected) is one seed.
   * 'distance': the interior mask map < seedThreshold is distance-transformed and each maximum of the distance, at
   * least seedMinDistancePx from a higher accepted one, is a seed (one seed per cell body even when two bodies touch
   * through a gap in the membrane).
   */
  seeds: 'threshold' | 'distance';
  seedThreshold: number;
  /** Interior components smaller than this are not seeds (specks of low P(membrane) inside membranes). */
  minSeedSizePx: number;
  /** 'distance' seeds: minimum distance between two seeds (px). */
  seedMinDistancePx: number;
}

export interface FloodParams {
  /** Pixels with map ≥ maskThreshold are never flooded and stay 0 (boundary); null floods everything. */
  maskThreshold: number | null;
  /**
   * true: a pixel reached by two basins becomes 0, so basins are separated by a 1-px line of boundary pixels (the
   * ISBI convention of 0 = boundary, and the agglomeration reads the map along these lines).
   * false: every reachable pixel joins the basin that reached it first (a partition without boundary pixels).
   */
  watershedLines: boolean;
  /** Quantisation levels of the map for the bucket queue; 256 resolves P(membrane) to 0.004, finer than a CNN is sure. */
  levels: number;
}

export type WatershedParams = SeedParams & FloodParams;

export const DEFAULT_WATERSHED_PARAMS: Readonly<WatershedParams> = Object.freeze({
  seeds: 'threshold',
  // For untuned maps (models store their own, tune.ts): 0.3 keeps seeds well inside cells on a calibrated map, where
  // membranes sit near 1 and cytoplasm near 0.
  seedThreshold: 0.3,
  // At 4 nm/px a neurite profile covers hundreds of px; a 16 px blob (16×16 nm) is noise, not a cell.
  minSeedSizePx: 16,
  seedMinDistancePx: 6,
  maskThreshold: null,
  watershedLines: true,
  levels: 256,
});

/** Seeds as labels 1..count (0 = not a seed). */
export function watershedSeeds(map: MembraneMap, params: Partial<SeedParams> = {}): Components {
  const p = { ...DEFAULT_WATERSHED_PARAMS, ...params };
  const { width, height, data } = map;
  checkImageSize(data.length, width, height, 'watershedSeeds');
  const n = width * height;
  const interior = new Uint8Array(n);
  for (let i = 0; i < n; i++) interior[i] = data[i] < p.seedThreshold ? 1 : 0;
  const cc = connectedComponents(interior, width, height, 4);
  const count = removeSmallSegments(cc.labels, p.minSeedSizePx);
  if (p.seeds === 'threshold') return { labels: cc.labels, count };
  for (let i = 0; i < n; i++) interior[i] = cc.labels[i] > 0 ? 1 : 0;
  return distanceSeeds(distanceTransform(interior, width, height), width, height, p.seedMinDistancePx);
}

/**
 * Maxima of a distance map as seeds. A maximum is a connected (8-neighbour) plateau of pixels not lower than any of
 * their 8 neighbours; plateaus are accepted from the highest down (ties in raster order), each suppressing every later
 * candidate within minDistancePx of its first pixel.
 */
function distanceSeeds(dist: Float32Array, width: number, height: number, minDistancePx: number): Components {
  const n = width * height;
  const isMax = new Uint8Array(n);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const d = dist[i];
      if (!(d > 0)) continue;
      let ok = true;
      for (let dy = -1; dy <= 1 && ok; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width || (dx === 0 && dy === 0)) continue;
          if (dist[yy * width + xx] > d) {
            ok = false;
            break;
          }
        }
      }
      isMax[i] = ok ? 1 : 0;
    }
  }
  // 8-adjacent maxima have equal values (each is ≥ the other), so a component is a plateau of one height.
  const plateaus = connectedComponents(isMax, width, height, 8);
  const first = new Int32Array(plateaus.count + 1).fill(-1);
  for (let i = 0; i < n; i++) {
    const id = plateaus.labels[i];
    if (id > 0 && first[id] < 0) first[id] = i;
  }
  const order = new Uint32Array(plateaus.count);
  for (let k = 0; k < order.length; k++) order[k] = k + 1;
  order.sort((a, b) => dist[first[b]] - dist[first[a]] || a - b);
  const keep = new Uint8Array(plateaus.count + 1);
  const suppressed = new Uint8Array(n);
  const r = Math.max(0, minDistancePx);
  const ri = Math.floor(r);
  for (const id of order) {
    const p = first[id];
    if (suppressed[p]) continue;
    keep[id] = 1;
    if (ri === 0 && r === 0) continue;
    const px = p % width;
    const py = (p - px) / width;
    for (let dy = -ri; dy <= ri; dy++) {
      const yy = py + dy;
      if (yy < 0 || yy >= height) continue;
      for (let dx = -ri; dx <= ri; dx++) {
        const xx = px + dx;
        if (xx < 0 || xx >= width || dx * dx + dy * dy > r * r) continue;
        suppressed[yy * width + xx] = 1;
      }
    }
  }
  const labels = plateaus.labels;
  for (let i = 0; i < n; i++) if (labels[i] > 0 && !keep[labels[i]]) labels[i] = 0;
  const count = relabelConsecutive(labels);
  return { labels, count };
}

/** Quantised level of each pixel: floor(P·levels), clamped; NaN counts as membrane (the highest level). */
function quantise(data: Float32Array, levels: number): Uint8Array | Uint16Array {
  const out = levels <= 256 ? new Uint8Array(data.length) : new Uint16Array(data.length);
  const top = levels - 1;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    out[i] = v > 0 ? Math.min(top, Math.floor(v * levels)) : v <= 0 ? 0 : top;
  }
  return out;
}

const FREE = 0;
const QUEUED = 1;
const DONE = 2;
const MASKED = 3;

interface BucketQueue {
  next: Int32Array;
  head: Int32Array;
  tail: Int32Array;
  /** The level being flooded; it only grows. */
  current: number;
}

/**
 * Queues the free 4-neighbours of pixel i with i's id as their tentative id (the basin that reached them first; final
 * at pop time), each at its own level but never below the level being flooded: a basin that spills into an unseeded
 * hollow fills it at the spill level.
 */
function queueNeighbours(
  i: number,
  x: number,
  width: number,
  n: number,
  state: Uint8Array,
  labels: Uint32Array,
  level: Uint8Array | Uint16Array,
  q: BucketQueue,
): void {
  const id = labels[i];
  for (let side = 0; side < 4; side++) {
    let j: number;
    if (side === 0) {
      if (i < width) continue;
      j = i - width;
    } else if (side === 1) {
      if (x === 0) continue;
      j = i - 1;
    } else if (side === 2) {
      if (x + 1 === width) continue;
      j = i + 1;
    } else {
      if (i + width >= n) continue;
      j = i + width;
    }
    if (state[j] !== FREE) continue;
    state[j] = QUEUED;
    labels[j] = id;
    const l = level[j] > q.current ? level[j] : q.current;
    q.next[j] = -1;
    if (q.tail[l] < 0) q.head[l] = j;
    else q.next[q.tail[l]] = j;
    q.tail[l] = j;
  }
}

/**
 * Floods the map from the given seeds (labels > 0; 4-neighbour growth). Returns new labels: seeds keep their ids, every
 * reached pixel takes a seed's id, and 0 marks watershed lines, masked pixels and pixels no basin could reach.
 */
export function floodFromSeeds(map: MembraneMap, seeds: Uint32Array, params: Partial<FloodParams> = {}): Labels {
  const p = { ...DEFAULT_WATERSHED_PARAMS, ...params };
  const { width, height, data } = map;
  checkImageSize(data.length, width, height, 'floodFromSeeds');
  if (seeds.length !== data.length) throw new RangeError('floodFromSeeds: seeds and map differ in size');
  const n = width * height;
  const levels = Math.max(2, Math.min(65536, Math.round(p.levels)));
  const level = quantise(data, levels);
  const labels = seeds.slice();
  const state = new Uint8Array(n);
  const mask = p.maskThreshold;
  for (let i = 0; i < n; i++) {
    if (labels[i] > 0) state[i] = DONE;
    else if (mask !== null && !(data[i] < mask)) state[i] = MASKED;
  }
  // One FIFO per level as linked lists through `next`: each pixel is queued at most once, so n links suffice.
  const queue: BucketQueue = { next: new Int32Array(n), head: new Int32Array(levels).fill(-1), tail: new Int32Array(levels).fill(-1), current: 0 };
  // Read the seeds, not `labels`: queueing writes tentative ids into `labels`.
  for (let i = 0; i < n; i++) if (seeds[i] > 0) queueNeighbours(i, i % width, width, n, state, labels, level, queue);
  const lines = p.watershedLines;
  const { next, head, tail } = queue;
  while (queue.current < levels) {
    const current = queue.current;
    const i = head[current];
    if (i < 0) {
      queue.current++;
      continue;
    }
    head[current] = next[i];
    if (head[current] < 0) tail[current] = -1;
    state[i] = DONE;
    const x = i % width;
    if (lines) {
      // A pixel whose already-flooded neighbours belong to two basins is where they meet: a boundary pixel that
      // does not flood further, so no two 4-adjacent pixels end up with different ids.
      const id = labels[i];
      if (
        (i >= width && state[i - width] === DONE && labels[i - width] !== 0 && labels[i - width] !== id) ||
        (x > 0 && state[i - 1] === DONE && labels[i - 1] !== 0 && labels[i - 1] !== id) ||
        (x + 1 < width && state[i + 1] === DONE && labels[i + 1] !== 0 && labels[i + 1] !== id) ||
        (i + width < n && state[i + width] === DONE && labels[i + width] !== 0 && labels[i + width] !== id)
      ) {
        labels[i] = 0;
        continue;
      }
    }
    queueNeighbours(i, x, width, n, state, labels, level, queue);
  }
  return { width, height, data: labels };
}

/** Seeded watershed of a membrane map (seeds from watershedSeeds, flooding by floodFromSeeds); ids are 1..n. */
export function watershed(map: MembraneMap, params: Partial<WatershedParams> = {}): Labels {
  const { labels: seeds } = watershedSeeds(map, params);
  const out = floodFromSeeds(map, seeds, params);
  relabelConsecutive(out.data);
  return out;
}
