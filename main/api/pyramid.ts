// Slice pyramids and tile cutting for the viewer. Level 0 is the slice as read; level L+1 halves level L (2×2 mean for
// intensities and membrane maps, top-left pick for labels, since the mean of two segment ids is a third, wrong id).
// Levels are built lazily, one from the one below, and kept in a byte-bounded LRU, so panning an 8192² slice at a
// zoom that needs level 3 costs one decode and three halvings, and every later tile of that slice is a copy of rows.
import type { Image2D, PixelArray } from '../../ml/types';
import { tileRect, type TileGeometry } from './contract';

export type DownsampleMode = 'mean' | 'pick';

type ArrayCtor = new (n: number) => PixelArray;

function ctorOf(a: PixelArray): ArrayCtor {
  return a.constructor as ArrayCtor;
}

/** Level L+1 from level L: each output pixel covers a 2×2 block (fewer at an odd right or bottom edge). */
export function downsample2x(img: Image2D, mode: DownsampleMode): Image2D {
  const { width: w, height: h, data: src } = img;
  const ow = Math.ceil(w / 2);
  const oh = Math.ceil(h / 2);
  const out = new (ctorOf(src))(ow * oh);
  const rounding = src instanceof Float32Array ? 0 : 0.5;
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * 2;
    const y1 = Math.min(y0 + 1, h - 1);
    const r0 = y0 * w;
    const r1 = y1 * w;
    const o = oy * ow;
    if (mode === 'pick') {
      for (let ox = 0; ox < ow; ox++) out[o + ox] = src[r0 + ox * 2];
      continue;
    }
    for (let ox = 0; ox < ow; ox++) {
      const x0 = ox * 2;
      const x1 = Math.min(x0 + 1, w - 1);
      // At an odd edge the clamped index repeats the edge pixel, which is the mean of the pixels that exist.
      const sum = src[r0 + x0] + src[r0 + x1] + src[r1 + x0] + src[r1 + x1];
      out[o + ox] = rounding ? Math.floor(sum / 4 + rounding) : sum / 4;
    }
  }
  return { width: ow, height: oh, data: out };
}

/** Copies one tile out of a level image; the buffer holds exactly the tile's pixels, row-major. */
export function cutTile(img: Image2D, g: TileGeometry, level: number, tx: number, ty: number): ArrayBuffer | null {
  const r = tileRect(g, level, tx, ty);
  if (!r) return null;
  const out = new (ctorOf(img.data))(r.width * r.height);
  for (let y = 0; y < r.height; y++) {
    const start = (r.y + y) * img.width + r.x;
    out.set(img.data.subarray(start, start + r.width), y * r.width);
  }
  return out.buffer as ArrayBuffer;
}

/**
 * Pyramid levels of many slices (raw, results, ground truth), keyed by the caller, bounded by bytes. Concurrent
 * requests for the same level share one computation.
 */
export class PyramidCache {
  private readonly entries = new Map<string, Image2D>();
  private readonly pending = new Map<string, Promise<Image2D>>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  async level(key: string, level: number, loadLevel0: () => Promise<Image2D>, mode: DownsampleMode): Promise<Image2D> {
    const k = `${key}@${level}`;
    const hit = this.entries.get(k);
    if (hit) {
      this.entries.delete(k);
      this.entries.set(k, hit);
      return hit;
    }
    const inFlight = this.pending.get(k);
    if (inFlight) return inFlight;
    const p = (async () => {
      const img = level === 0 ? await loadLevel0() : downsample2x(await this.level(key, level - 1, loadLevel0, mode), mode);
      this.put(k, img);
      return img;
    })();
    this.pending.set(k, p);
    try {
      return await p;
    } finally {
      this.pending.delete(k);
    }
  }

  /** Forgets every level of keys starting with this prefix (a closed stack, a deleted job). */
  drop(prefix: string): void {
    for (const [k, v] of this.entries) {
      if (k.startsWith(prefix)) {
        this.entries.delete(k);
        this.bytes -= v.data.byteLength;
      }
    }
  }

  private put(k: string, img: Image2D): void {
    this.entries.set(k, img);
    this.bytes += img.data.byteLength;
    for (const [old, v] of this.entries) {
      if (this.bytes <= this.maxBytes || old === k) break;
      this.entries.delete(old);
      this.bytes -= v.data.byteLength;
    }
  }
}
