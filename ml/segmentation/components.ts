// Connected components, relabelling and threshold segmentation of one slice: the building blocks of the watershed,
// the agglomeration and the ISBI metrics. Everything works on flat typed arrays with a union-find over pixel indices,
// so a 8192² slice costs a few passes and no per-pixel objects.
import type { Labels, MembraneMap } from '../types';

export type Connectivity = 4 | 8;

export interface Components {
  /** Component id per pixel, 0 where the mask is 0; ids are 1..count in raster order of each component's first pixel. */
  labels: Uint32Array;
  count: number;
}

/** Root of pixel i, halving the path on the way (keeps later finds nearly constant time). */
export function find(parent: Int32Array, i: number): number {
  while (parent[i] !== i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

/** Joins the sets of a and b; the smaller root wins, so every root is the set's first pixel in raster order. */
function union(parent: Int32Array, a: number, b: number): number {
  const ra = find(parent, a);
  const rb = find(parent, b);
  if (ra === rb) return ra;
  if (ra < rb) {
    parent[rb] = ra;
    return ra;
  }
  parent[ra] = rb;
  return rb;
}

/** Throws unless `length` values fill a width×height image. */
export function checkImageSize(length: number, width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || length !== width * height) {
    throw new RangeError(`${what}: ${length} values for ${width}×${height}`);
  }
}

/** Connected components of the non-zero pixels of a mask. */
export function connectedComponents(mask: Uint8Array, width: number, height: number, connectivity: Connectivity = 4): Components {
  checkImageSize(mask.length, width, height, 'connectedComponents');
  const n = width * height;
  const parent = new Int32Array(n);
  const eight = connectivity === 8;
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      if (!mask[i]) continue;
      parent[i] = i;
      let r = i;
      if (x > 0 && mask[i - 1]) {
        r = find(parent, i - 1);
        parent[i] = r;
      }
      if (y > 0) {
        const up = i - width;
        if (mask[up]) r = union(parent, r, up);
        if (eight) {
          if (x > 0 && mask[up - 1]) r = union(parent, r, up - 1);
          if (x + 1 < width && mask[up + 1]) r = union(parent, r, up + 1);
        }
      }
    }
  }
  // Roots are first pixels, so a root is met before any other pixel of its set and its label is ready when needed.
  const labels = new Uint32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    const r = find(parent, i);
    labels[i] = r === i ? ++count : labels[r];
  }
  return { labels, count };
}

export function maxLabel(labels: Uint32Array): number {
  let max = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] > max) max = labels[i];
  return max;
}

/**
 * Renumbers the non-zero ids in place to 1..count in raster order of first appearance (0 stays 0) and returns count.
 * Raster order makes the numbering depend only on the partition, never on how the ids were produced.
 */
export function relabelConsecutive(labels: Uint32Array): number {
  const max = maxLabel(labels);
  let count = 0;
  if (max <= 2 * labels.length + 1024) {
    const table = new Uint32Array(max + 1);
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i];
      if (v === 0) continue;
      let t = table[v];
      if (t === 0) t = table[v] = ++count;
      labels[i] = t;
    }
    return count;
  }
  // Sparse ids (for example instance labels with random 32-bit ids): a hash map instead of a table of size max.
  const table = new Map<number, number>();
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v === 0) continue;
    let t = table.get(v);
    if (t === undefined) table.set(v, (t = ++count));
    labels[i] = t;
  }
  return count;
}

/** Sets segments smaller than minSizePx to 0 (boundary), renumbers the rest consecutively and returns their count. */
export function removeSmallSegments(labels: Uint32Array, minSizePx: number): number {
  let count = relabelConsecutive(labels);
  if (minSizePx <= 1 || count === 0) return count;
  const sizes = new Uint32Array(count + 1);
  for (let i = 0; i < labels.length; i++) sizes[labels[i]]++;
  let small = 0;
  for (let id = 1; id <= count; id++) if (sizes[id] < minSizePx) small++;
  if (small === 0) return count;
  for (let i = 0; i < labels.length; i++) if (sizes[labels[i]] < minSizePx) labels[i] = 0;
  count = relabelConsecutive(labels);
  return count;
}

export interface ThresholdSegmentParams {
  /** Pixels with map < threshold are interior. */
  threshold: number;
  connectivity?: Connectivity;
  /** Components with fewer pixels are removed (set to 0). */
  minSizePx?: number;
}

/** Interior = map < threshold; segments = its connected components of at least minSizePx pixels. */
export function thresholdSegment(map: MembraneMap, params: ThresholdSegmentParams): Labels {
  const { width, height, data } = map;
  checkImageSize(data.length, width, height, 'thresholdSegment');
  const mask = new Uint8Array(width * height);
  const t = params.threshold;
  // NaN compares false, so an undefined prediction counts as membrane.
  for (let i = 0; i < mask.length; i++) mask[i] = data[i] < t ? 1 : 0;
  const { labels } = connectedComponents(mask, width, height, params.connectivity ?? 4);
  if ((params.minSizePx ?? 0) > 1) removeSmallSegments(labels, params.minSizePx ?? 0);
  return { width, height, data: labels };
}

