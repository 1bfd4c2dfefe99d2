// The proofreading tools as pure functions of one label slice: each returns the delta it would make (delta.ts) and
// leaves the slice untouched, so the caller decides whether to apply, journal and put it on the undo stack.
//
// Coordinates are continuous data coordinates: pixel (x, y) covers [x, x+1) × [y, y+1) and its centre is at
// (x + 0.5, y + 0.5), so a pointer position converts to data space without rounding and the brush is symmetric.
// Locked segments are never changed: brush pixels on them are skipped, and fill, merge, split and delete refuse them.
import type { Labels, MembraneMap } from '../types';
import { connectedComponents } from '../segmentation/components';
import { floodFromSeeds } from '../segmentation/watershed';
import { deltaBetween, deltaFromChanges, type LabelDelta } from './delta';

/** A tool refused an edit for a reason the user should read (a locked segment, a cut that cuts nothing). */
export class ProofreadError extends Error {
  override name = 'ProofreadError';
  readonly userFacing = true;
}

const NONE: ReadonlySet<number> = new Set();

/**
 * Pixels within radiusPx of the polyline through `points` (x0, y0, x1, y1, …), measured from pixel centres, plus
 * the pixel under every vertex (so a click with a tiny brush paints one pixel). A radius below 0.5 counts as 0.5.
 * Returns increasing pixel indices, clipped to the slice.
 */
export function strokePixels(width: number, height: number, points: ArrayLike<number>, radiusPx: number): Uint32Array {
  if (points.length < 2 || points.length % 2 !== 0) throw new RangeError('strokePixels: points must be x, y pairs');
  const r = Math.max(0.5, radiusPx);
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let k = 0; k < points.length; k += 2) {
    minX = Math.min(minX, points[k]);
    maxX = Math.max(maxX, points[k]);
    minY = Math.min(minY, points[k + 1]);
    maxY = Math.max(maxY, points[k + 1]);
  }
  // Work in the stroke's bounding box only: a stroke on a 4096² slice touches a few thousand pixels, not 16 million.
  const bx0 = Math.max(0, Math.floor(minX - r));
  const by0 = Math.max(0, Math.floor(minY - r));
  const bx1 = Math.min(width - 1, Math.ceil(maxX + r));
  const by1 = Math.min(height - 1, Math.ceil(maxY + r));
  if (bx0 > bx1 || by0 > by1) return new Uint32Array(0);
  const bw = bx1 - bx0 + 1;
  const mark = new Uint8Array(bw * (by1 - by0 + 1));
  const r2 = r * r;
  const n = points.length / 2;
  for (let s = 0; s < Math.max(1, n - 1); s++) {
    const ax = points[2 * s];
    const ay = points[2 * s + 1];
    const cx = n > 1 ? points[2 * s + 2] : ax;
    const cy = n > 1 ? points[2 * s + 3] : ay;
    const dx = cx - ax;
    const dy = cy - ay;
    const len2 = dx * dx + dy * dy;
    const x0 = Math.max(bx0, Math.floor(Math.min(ax, cx) - r));
    const x1 = Math.min(bx1, Math.ceil(Math.max(ax, cx) + r));
    const y0 = Math.max(by0, Math.floor(Math.min(ay, cy) - r));
    const y1 = Math.min(by1, Math.ceil(Math.max(ay, cy) + r));
    for (let y = y0; y <= y1; y++) {
      const py = y + 0.5;
      for (let x = x0; x <= x1; x++) {
        const px = x + 0.5;
        // Distance from the pixel centre to the segment: project onto it, clamp to its ends.
        const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
        const ex = px - (ax + t * dx);
        const ey = py - (ay + t * dy);
        if (ex * ex + ey * ey <= r2) mark[(y - by0) * bw + (x - bx0)] = 1;
      }
    }
  }
  for (let k = 0; k < points.length; k += 2) {
    const x = Math.floor(points[k]);
    const y = Math.floor(points[k + 1]);
    if (x >= bx0 && x <= bx1 && y >= by0 && y <= by1) mark[(y - by0) * bw + (x - bx0)] = 1;
  }
  let count = 0;
  for (let i = 0; i < mark.length; i++) count += mark[i];
  const out = new Uint32Array(count);
  for (let y = by0, m = 0; y <= by1; y++) {
    const row = (y - by0) * bw;
    for (let x = bx0; x <= bx1; x++) if (mark[row + x - bx0]) out[m++] = y * width + x;
  }
  return out;
}

/** A brush stroke that sets `label` (0 erases) under the stroke, skipping locked segments. */
export function paintStroke(labels: Labels, z: number, points: ArrayLike<number>, radiusPx: number, label: number, locked: ReadonlySet<number> = NONE): LabelDelta {
  let pixels = strokePixels(labels.width, labels.height, points, radiusPx);
  if (locked.size > 0) pixels = pixels.filter((i) => !locked.has(labels.data[i]));
  return deltaFromChanges(z, labels.data, pixels, label);
}

function checkPoint(labels: Labels, x: number, y: number, what: string): number {
  const xi = Math.floor(x);
  const yi = Math.floor(y);
  if (!(xi >= 0 && yi >= 0 && xi < labels.width && yi < labels.height)) throw new ProofreadError(`${what}: (${x}, ${y}) is outside the ${labels.width}×${labels.height} slice`);
  return yi * labels.width + xi;
}

function refuseLocked(locked: ReadonlySet<number>, id: number, what: string): void {
  if (locked.has(id)) throw new ProofreadError(`${what}: segment ${id} is locked`);
}

/** Floods the 4-connected region of equal value under (x, y) with `label`. */
export function fillRegion(labels: Labels, z: number, x: number, y: number, label: number, locked: ReadonlySet<number> = NONE): LabelDelta {
  const { width, height, data } = labels;
  const start = checkPoint(labels, x, y, 'fill');
  const value = data[start];
  refuseLocked(locked, value, 'fill');
  if (value === label) return deltaFromChanges(z, data, [], label);
  const seen = new Uint8Array(width * height);
  const stack = [start];
  seen[start] = 1;
  const region: number[] = [];
  while (stack.length > 0) {
    const i = stack.pop() as number;
    region.push(i);
    const px = i % width;
    const near = [px > 0 ? i - 1 : -1, px + 1 < width ? i + 1 : -1, i >= width ? i - width : -1, i + width < width * height ? i + width : -1];
    for (const j of near) {
      if (j >= 0 && !seen[j] && data[j] === value) {
        seen[j] = 1;
        stack.push(j);
      }
    }
  }
  region.sort((a, b) => a - b);
  return deltaFromChanges(z, data, region, label);
}

/**
 * Merges segments `ids` into the first of them. The boundary pixels (0) between merged segments join too: a 0 pixel
 * whose 4-neighbours include two different merged ids and no other segment, which is exactly the 1-px watershed
 * line between them; boundaries towards other segments stay.
 */
export function mergeSegments(labels: Labels, z: number, ids: readonly number[], locked: ReadonlySet<number> = NONE): LabelDelta {
  const set = new Set(ids);
  if (set.size < 2 || set.has(0)) throw new ProofreadError('merge: pick at least two different segments (not the boundary)');
  for (const id of set) refuseLocked(locked, id, 'merge');
  const target = ids[0];
  const { width, height, data } = labels;
  const n = width * height;
  // Membership by table lookup: this loop visits every pixel of the slice (16 M on 4096²), a Set per pixel is slow.
  let maxId = 0;
  for (const id of set) if (id > maxId) maxId = id;
  const member = new Uint8Array(maxId + 1);
  for (const id of set) member[id] = 1;
  const isMember = (v: number) => v <= maxId && member[v] === 1;
  const changed: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (v !== 0) {
      if (v !== target && v <= maxId && member[v] === 1) changed.push(i);
      continue;
    }
    const x = i % width;
    let first = 0;
    let two = false;
    let foreign = false;
    for (let side = 0; side < 4; side++) {
      const j = side === 0 ? (x > 0 ? i - 1 : -1) : side === 1 ? (x + 1 < width ? i + 1 : -1) : side === 2 ? i - width : i + width;
      if (j < 0 || j >= n) continue;
      const w = data[j];
      if (w === 0) continue;
      if (!isMember(w)) foreign = true;
      else if (first === 0) first = w;
      else if (w !== first) two = true;
    }
    if (two && !foreign) changed.push(i);
  }
  return deltaFromChanges(z, data, changed, target);
}

/** Sets every pixel of segment `id` to 0 (boundary). */
export function deleteSegment(labels: Labels, z: number, id: number, locked: ReadonlySet<number> = NONE): LabelDelta {
  if (id === 0) throw new ProofreadError('delete: that is the boundary, not a segment');
  refuseLocked(locked, id, 'delete');
  const changed: number[] = [];
  for (let i = 0; i < labels.data.length; i++) if (labels.data[i] === id) changed.push(i);
  return deltaFromChanges(z, labels.data, changed, 0);
}

function segmentBox(labels: Labels, id: number): { x0: number; y0: number; x1: number; y1: number; size: number } {
  const { width, data } = labels;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  let size = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== id) continue;
    const x = i % width;
    const y = (i - x) / width;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
    size++;
  }
  return { x0, y0, x1, y1, size };
}

/**
 * Splits segment `id` by a seeded watershed of the membrane map inside that segment only: seed group 0 keeps `id`,
 * group k (k ≥ 1) becomes `firstNewId + k - 1`. Basins grow in order of increasing P(membrane), so the new border
 * runs along the membrane between the seeds; pixels outside the segment are masked and never change. Seed pixels
 * outside the segment are ignored; parts of the segment no seed can reach keep `id`.
 */
export function splitSegment(
  labels: Labels,
  map: MembraneMap,
  z: number,
  id: number,
  seedGroups: readonly ArrayLike<number>[],
  firstNewId: number,
  locked: ReadonlySet<number> = NONE,
): LabelDelta {
  const { width, height, data } = labels;
  if (map.width !== width || map.height !== height) throw new RangeError(`split: membrane map is ${map.width}×${map.height}, labels ${width}×${height}`);
  if (id === 0) throw new ProofreadError('split: seeds must lie in a segment, not on the boundary');
  refuseLocked(locked, id, 'split');
  const box = segmentBox(labels, id);
  if (box.size === 0) throw new ProofreadError(`split: no segment ${id} on slice ${z}`);
  // The watershed runs on the segment's bounding box: a split costs the segment's size, not the slice's.
  const bw = box.x1 - box.x0 + 1;
  const bh = box.y1 - box.y0 + 1;
  const crop = new Float32Array(bw * bh);
  const seeds = new Uint32Array(bw * bh);
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const i = (y + box.y0) * width + x + box.x0;
      // Outside the segment: above the mask threshold below, so the flood never enters it.
      crop[y * bw + x] = data[i] === id ? Math.min(1, Math.max(0, map.data[i])) : 2;
    }
  }
  let groups = 0;
  seedGroups.forEach((g, k) => {
    let any = false;
    for (let m = 0; m < g.length; m++) {
      const i = g[m];
      if (i >= data.length || data[i] !== id) continue;
      const x = (i % width) - box.x0;
      const y = Math.floor(i / width) - box.y0;
      seeds[y * bw + x] = k + 1;
      any = true;
    }
    if (any) groups++;
  });
  if (groups < 2) throw new ProofreadError(`split: draw seeds in at least two places inside segment ${id}`);
  const flooded = floodFromSeeds({ width: bw, height: bh, data: crop }, seeds, { maskThreshold: 1.5, watershedLines: false, levels: 256 });
  const changed: number[] = [];
  const values: number[] = [];
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const g = flooded.data[y * bw + x];
      if (g <= 1) continue; // group 0 keeps the id; 0 = unreached, keeps it too
      changed.push((y + box.y0) * width + x + box.x0);
      values.push(firstNewId + g - 2);
    }
  }
  return deltaFromChanges(z, data, changed, values);
}

/**
 * Splits segment `id` along a cut line: the line's pixels inside the segment become boundary (0) and each 4-connected
 * piece left is a segment; the largest keeps `id`, the others get firstNewId, firstNewId + 1, … in raster order.
 */
export function cutSegment(labels: Labels, z: number, id: number, line: ArrayLike<number>, firstNewId: number, locked: ReadonlySet<number> = NONE): LabelDelta {
  const { width, data } = labels;
  if (id === 0) throw new ProofreadError('cut: the line must cross a segment');
  refuseLocked(locked, id, 'cut');
  const box = segmentBox(labels, id);
  if (box.size === 0) throw new ProofreadError(`cut: no segment ${id} on slice ${z}`);
  const bw = box.x1 - box.x0 + 1;
  const bh = box.y1 - box.y0 + 1;
  const mask = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y++) for (let x = 0; x < bw; x++) mask[y * bw + x] = data[(y + box.y0) * width + x + box.x0] === id ? 1 : 0;
  for (let m = 0; m < line.length; m++) {
    const i = line[m];
    if (i >= data.length || data[i] !== id) continue;
    mask[(Math.floor(i / width) - box.y0) * bw + (i % width) - box.x0] = 0;
  }
  const cc = connectedComponents(mask, bw, bh, 4);
  if (cc.count < 2) throw new ProofreadError(`cut: the line does not cut segment ${id} in two`);
  const sizes = new Uint32Array(cc.count + 1);
  for (let k = 0; k < cc.labels.length; k++) sizes[cc.labels[k]]++;
  let keep = 1;
  for (let c = 2; c <= cc.count; c++) if (sizes[c] > sizes[keep]) keep = c;
  const newId = new Uint32Array(cc.count + 1);
  for (let c = 1, next = firstNewId; c <= cc.count; c++) newId[c] = c === keep ? id : next++;
  const changed: number[] = [];
  const values: number[] = [];
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const i = (y + box.y0) * width + x + box.x0;
      if (data[i] !== id) continue;
      const c = cc.labels[y * bw + x];
      changed.push(i);
      values.push(c === 0 ? 0 : newId[c]);
    }
  }
  return deltaFromChanges(z, data, changed, values);
}

/**
 * Replaces the slice by `next` (a model's segmentation the user accepted) as one delta. Locked segments keep every
 * pixel they have; where `next` would put a locked id somewhere else, that piece gets a fresh id instead (firstNewId,
 * firstNewId + 1, … per locked id met), so a lock means the segment stays exactly as it was.
 */
export function replaceLabels(labels: Labels, z: number, next: Uint32Array, firstNewId: number, locked: ReadonlySet<number> = NONE): LabelDelta {
  const { data } = labels;
  if (next.length !== data.length) throw new RangeError(`replaceLabels: ${next.length} pixels for a slice of ${data.length}`);
  if (locked.size === 0) return deltaBetween(z, data, next);
  const fresh = new Map<number, number>();
  const changed: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (locked.has(data[i])) continue;
    let v = next[i];
    if (locked.has(v)) {
      let f = fresh.get(v);
      if (f === undefined) {
        f = firstNewId + fresh.size;
        fresh.set(v, f);
      }
      v = f;
    }
    if (v !== data[i]) {
      changed.push(i);
      values.push(v);
    }
  }
  return deltaFromChanges(z, data, changed, values);
}

/**
 * A stand-in membrane map from the raw slice when no model has produced one: EM membranes are dark (stained), so
 * 1 − normalised intensity ranks pixels the way P(membrane) would. The 1st and 99th percentiles set the range so a
 * few saturated pixels do not flatten the rest.
 */
export function membraneFromRaw(raw: { width: number; height: number; data: ArrayLike<number> }): MembraneMap {
  const n = raw.width * raw.height;
  const sample: number[] = [];
  const step = Math.max(1, Math.floor(n / 65536));
  for (let i = 0; i < n; i += step) sample.push(raw.data[i]);
  sample.sort((a, b) => a - b);
  const lo = sample[Math.floor(sample.length * 0.01)] ?? 0;
  const hi = sample[Math.min(sample.length - 1, Math.floor(sample.length * 0.99))] ?? 1;
  const span = hi > lo ? hi - lo : 1;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.min(1, Math.max(0, 1 - (raw.data[i] - lo) / span));
  return { width: raw.width, height: raw.height, data };
}
