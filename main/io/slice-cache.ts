// A least-recently-used cache of decoded slices, bounded by slice count and by bytes, with in-flight deduplication:
// two viewers asking for the same slice at once cause one decode. Callers get their own copy of the pixels, so a
// consumer that normalises a slice in place cannot corrupt what the next caller sees.
import type { Image2D, PixelArray } from '../../ml/types';

export interface SliceCacheLimits {
  maxBytes: number;
  maxSlices: number;
}

function copy(img: Image2D): Image2D {
  return { width: img.width, height: img.height, data: img.data.slice() as PixelArray };
}

export class SliceCache {
  private readonly limits: SliceCacheLimits;
  private readonly entries = new Map<number, Image2D>(); // insertion order = recency order
  private readonly pending = new Map<number, Promise<Image2D>>();
  private bytes = 0;
  // Decoded slices too large to cache go to their first caller without a copy.
  private readonly handedOut = new WeakSet<Image2D>();

  constructor(limits: SliceCacheLimits) {
    this.limits = limits;
  }

  get size(): number {
    return this.entries.size;
  }

  get cachedBytes(): number {
    return this.bytes;
  }

  has(z: number): boolean {
    return this.entries.has(z);
  }

  /** The slice from the cache, or from `decode` (once, however many callers wait for it). */
  async get(z: number, decode: (z: number) => Promise<Image2D>): Promise<Image2D> {
    const hit = this.entries.get(z);
    if (hit) {
      this.entries.delete(z);
      this.entries.set(z, hit);
      return copy(hit);
    }
    let p = this.pending.get(z);
    if (!p) {
      p = decode(z).then(
        (img) => {
          this.pending.delete(z);
          this.put(z, img);
          return img;
        },
        (e: unknown) => {
          this.pending.delete(z);
          throw e;
        },
      );
      this.pending.set(z, p);
    }
    const img = await p;
    if (this.entries.get(z) === img || this.handedOut.has(img)) return copy(img);
    this.handedOut.add(img);
    return img;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private put(z: number, img: Image2D): void {
    const size = img.data.byteLength;
    if (size > this.limits.maxBytes || this.limits.maxSlices <= 0) return;
    this.entries.set(z, img);
    this.bytes += size;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.limits.maxBytes && this.entries.size <= this.limits.maxSlices) break;
      this.entries.delete(k);
      this.bytes -= v.data.byteLength;
    }
  }
}
