// Tiled inference for slices of any size, seam-free.
//
// The slice is padded (by reflection) to the model's size multiple once; tiles are cut from that padded slice at
// offsets that are multiples of the size multiple, so every tile sees the same pooling grid as the whole slice. A tile
// keeps only its core — everything farther than `marginPx` from an edge it shares with another tile — and where cores
// overlap they are blended with tent weights. With the margin at least the model's receptive-field radius (the
// default), each kept pixel saw exactly the context it would see in a whole-slice pass, so tiled and whole-slice
// results agree to float rounding; edges on the slice border see the same zero padding in both.
import type { MapModel } from './onnx-session';
import type { ProgressFn } from '../types';

export interface TiledOptions {
  /** Tile edge in pixels (rounded down to the size multiple). */
  tilePx: number;
  /** Context discarded at shared tile edges; at least the receptive-field radius for exact results. */
  marginPx: number;
  /** H and W of a model input must be multiples of this (2^depth for a U-Net). */
  multiple: number;
  /** 8-fold test-time augmentation: average over the flips and 90° rotations. */
  tta?: boolean;
  onProgress?: ProgressFn;
}

function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

/** Reflect-pad a planar CHW image on the bottom and right. */
export function padReflect(src: Float32Array, c: number, h: number, w: number, ph: number, pw: number): Float32Array {
  if (ph === h && pw === w) return src;
  const out = new Float32Array(c * ph * pw);
  const refl = (i: number, n: number) => {
    if (n === 1) return 0;
    const p = 2 * (n - 1);
    i %= p;
    return i < n ? i : p - i;
  };
  for (let ch = 0; ch < c; ch++)
    for (let y = 0; y < ph; y++) {
      const sy = refl(y, h);
      for (let x = 0; x < pw; x++) out[(ch * ph + y) * pw + x] = src[(ch * h + sy) * w + refl(x, w)];
    }
  return out;
}

/**
 * Default tile edge. Measured on a 2-core Xeon with the shipped models on a 2048² slice: ONNX Runtime computes about
 * 1.4 Mpx/s of U-Net tile for tiles of 500–1100 px and 1.2 Mpx/s for one 2048² tile (which needs 2.5 GB, the refiner
 * 3.7 GB), so what larger tiles save is the context recomputed in the overlaps: 4 tiles of 1136² give the U-Net
 * 1.08 Mpx/s of slice at about 1 GB, one 2048² tile 1.17. `npm run bench -- --only models` measures it.
 */
export const DEFAULT_TILE_PX = 1536;

/**
 * Tiles along one axis of padded length `n`: the fewest tiles of at most `maxTile` px whose cores (tile minus
 * `margin` on every shared edge) cover the axis, each only as large as that needs, so the context computed twice is
 * as small as the tile limit allows. Tile edge and starts are multiples of `multiple`.
 */
export function tileAxis(n: number, maxTile: number, margin: number, multiple: number): { tile: number; starts: number[] } {
  if (maxTile >= n) return { tile: n, starts: [0] };
  if (maxTile - 2 * margin < multiple) throw new Error(`tile ${maxTile} px is too small for a ${margin} px margin`);
  for (let k = 2; ; k++) {
    // k tiles of edge t at starts i·d (the last at n − t): consecutive cores meet iff d ≤ t − 2·margin.
    for (let t = roundUp(Math.ceil((n + 2 * margin * (k - 1)) / k), multiple); t <= maxTile; t += multiple) {
      const d = roundUp(Math.ceil((n - t) / (k - 1)), multiple);
      if (d > t - 2 * margin) continue;
      const starts = [...new Set(Array.from({ length: k }, (_, i) => Math.min(i * d, n - t)))];
      return { tile: t, starts };
    }
  }
}

/**
 * The 8 flips/90° rotations of an h×w image: transform k maps output pixel (y, x) to source pixel (sy, sx); bit 2
 * transposes (so the output is w×h), bits 0 and 1 flip the output's x and y.
 */
function dihedralSource(k: number, y: number, x: number, oh: number, ow: number): [number, number] {
  const yy = k & 2 ? oh - 1 - y : y;
  const xx = k & 1 ? ow - 1 - x : x;
  return k & 4 ? [xx, yy] : [yy, xx];
}

/** Apply dihedral transform k to a planar CHW image. */
export function dihedral(src: Float32Array, c: number, h: number, w: number, k: number): { data: Float32Array; h: number; w: number } {
  const oh = k & 4 ? w : h;
  const ow = k & 4 ? h : w;
  const out = new Float32Array(src.length);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      const [sy, sx] = dihedralSource(k, y, x, oh, ow);
      for (let ch = 0; ch < c; ch++) out[(ch * oh + y) * ow + x] = src[(ch * h + sy) * w + sx];
    }
  return { data: out, h: oh, w: ow };
}

/** Undo dihedral transform k: `t` is the transformed single-channel image, h×w the original size. */
export function undoDihedral(t: Float32Array, h: number, w: number, k: number): Float32Array {
  const oh = k & 4 ? w : h;
  const ow = k & 4 ? h : w;
  const out = new Float32Array(h * w);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      const [sy, sx] = dihedralSource(k, y, x, oh, ow);
      out[sy * w + sx] = t[y * ow + x];
    }
  return out;
}

async function predictPadded(model: MapModel, input: Float32Array, c: number, h: number, w: number, opts: TiledOptions, progress: (d: number) => void): Promise<Float32Array> {
  const m = opts.multiple;
  const ph = roundUp(h, m);
  const pw = roundUp(w, m);
  const padded = padReflect(input, c, h, w, ph, pw);
  const tile = Math.max(m, Math.floor(opts.tilePx / m) * m);
  const { tile: th, starts: ys } = tileAxis(ph, tile, opts.marginPx, m);
  const { tile: tw, starts: xs } = tileAxis(pw, tile, opts.marginPx, m);
  if (ys.length === 1 && xs.length === 1) {
    const out = await model.run(padded, c, ph, pw);
    progress(1);
    return crop(out, ph, pw, h, w);
  }
  const acc = new Float32Array(ph * pw);
  const wsum = new Float32Array(ph * pw);
  const buf = new Float32Array(c * th * tw);
  for (const y0 of ys) {
    for (const x0 of xs) {
      for (let ch = 0; ch < c; ch++)
        for (let y = 0; y < th; y++) buf.set(padded.subarray((ch * ph + y0 + y) * pw + x0, (ch * ph + y0 + y) * pw + x0 + tw), (ch * th + y) * tw);
      const out = await model.run(buf, c, th, tw);
      // Core: drop the margin on every edge shared with another tile.
      const top = y0 > 0 ? opts.marginPx : 0;
      const bottom = y0 + th < ph ? opts.marginPx : 0;
      const left = x0 > 0 ? opts.marginPx : 0;
      const right = x0 + tw < pw ? opts.marginPx : 0;
      for (let y = top; y < th - bottom; y++) {
        const wy = Math.min(y - top + 1, th - bottom - y);
        for (let x = left; x < tw - right; x++) {
          const wgt = Math.min(wy, x - left + 1, tw - right - x);
          const o = (y0 + y) * pw + x0 + x;
          acc[o] += wgt * out[y * tw + x];
          wsum[o] += wgt;
        }
      }
      progress(1);
    }
  }
  for (let i = 0; i < acc.length; i++) acc[i] /= wsum[i];
  return crop(acc, ph, pw, h, w);
}

function crop(src: Float32Array, ph: number, pw: number, h: number, w: number): Float32Array {
  if (ph === h && pw === w) return src;
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) out.set(src.subarray(y * pw, y * pw + w), y * w);
  return out;
}

/** Number of model runs predictTiled will make (for progress totals). */
export function countTiles(h: number, w: number, opts: TiledOptions): number {
  const m = opts.multiple;
  const tile = Math.max(m, Math.floor(opts.tilePx / m) * m);
  const per = (hh: number, ww: number) => {
    const ph = roundUp(hh, m);
    const pw = roundUp(ww, m);
    return tileAxis(ph, tile, opts.marginPx, m).starts.length * tileAxis(pw, tile, opts.marginPx, m).starts.length;
  };
  return opts.tta ? 4 * per(h, w) + 4 * per(w, h) : per(h, w);
}

/** P(membrane) for a planar CHW input of any size. */
export async function predictTiled(model: MapModel, input: Float32Array, c: number, h: number, w: number, opts: TiledOptions): Promise<Float32Array> {
  const total = countTiles(h, w, opts);
  let done = 0;
  const progress = (d: number) => {
    done += d;
    opts.onProgress?.(done, total);
  };
  if (!opts.tta) return predictPadded(model, input, c, h, w, opts, progress);
  const acc = new Float32Array(h * w);
  for (let k = 0; k < 8; k++) {
    const t = dihedral(input, c, h, w, k);
    const p = await predictPadded(model, t.data, c, t.h, t.w, opts, progress);
    const back = undoDihedral(p, h, w, k);
    for (let i = 0; i < acc.length; i++) acc[i] += back[i] / 8;
  }
  return acc;
}
