// Colorized tiles as ImageBitmaps, made by a small pool of colorize workers and kept in an LRU. A bitmap drawn in the
// current frame is never evicted (closing it would blank a tile on screen); the rest go oldest first beyond the cap.
import type { ColorizeReply, ColorizeRequest } from './colorize.worker';
import type { TilePixels, TileStyle } from './colorize';

// 320 bitmaps of at most 512² RGBA (1 MiB each): five layers × a screen of tiles × three slices, with room to pan.
const MAX_BITMAPS = 320;
// Colorize jobs queued beyond this are dropped until the next frame asks again: after a fast pan, work for tiles
// that scrolled away must not delay the ones on screen.
const MAX_QUEUED = 64;

interface Pending {
  key: string;
  req: Omit<ColorizeRequest, 'id'>;
}

export class BitmapCache {
  private readonly bitmaps = new Map<string, { bitmap: ImageBitmap; frame: number }>();
  private readonly busy = new Map<number, string>(); // request id -> key
  private readonly queued = new Map<string, Pending>();
  private readonly workers: Worker[] = [];
  private readonly idleWorkers: Worker[] = [];
  private nextId = 1;
  private frame = 0;
  onReady: () => void = () => undefined;

  constructor(workerCount = Math.max(1, Math.min(3, (navigator.hardwareConcurrency || 2) - 1))) {
    for (let i = 0; i < workerCount; i++) {
      const w = new Worker(new URL('./colorize.worker.ts', import.meta.url), { type: 'module' });
      w.onmessage = (e: MessageEvent<ColorizeReply>) => this.onReply(w, e.data);
      this.workers.push(w);
      this.idleWorkers.push(w);
    }
  }

  /** Starts a frame: bitmaps used from now on are protected from eviction until the next frame. */
  beginFrame(): void {
    this.frame++;
    this.queued.clear();
  }

  /** The bitmap if made; otherwise asks for it (once) and returns undefined. */
  get(key: string, make?: () => Omit<ColorizeRequest, 'id'> | null): ImageBitmap | undefined {
    const hit = this.bitmaps.get(key);
    if (hit) {
      hit.frame = this.frame;
      this.bitmaps.delete(key);
      this.bitmaps.set(key, hit);
      return hit.bitmap;
    }
    if (make && !this.queued.has(key) && ![...this.busy.values()].includes(key)) {
      // make() also wishes for missing tile data, so it runs even when the colorize queue is full.
      const req = make();
      if (req && this.queued.size < MAX_QUEUED) {
        this.queued.set(key, { key, req });
        this.dispatch();
      }
    }
    return undefined;
  }

  has(key: string): boolean {
    return this.bitmaps.has(key);
  }

  busyCount(): number {
    return this.busy.size + this.queued.size;
  }

  private dispatch(): void {
    while (this.idleWorkers.length > 0 && this.queued.size > 0) {
      const [key, p] = this.queued.entries().next().value as [string, Pending];
      this.queued.delete(key);
      const w = this.idleWorkers.pop() as Worker;
      const id = this.nextId++;
      this.busy.set(id, key);
      // The pixels are copied (structured clone), not transferred: the pixel store keeps them for read-outs.
      w.postMessage({ id, ...p.req } satisfies ColorizeRequest);
    }
  }

  private onReply(w: Worker, r: ColorizeReply): void {
    const key = this.busy.get(r.id);
    this.busy.delete(r.id);
    this.idleWorkers.push(w);
    if (key !== undefined && 'bitmap' in r) {
      this.bitmaps.set(key, { bitmap: r.bitmap, frame: this.frame });
      this.evict();
      this.onReady();
    }
    this.dispatch();
  }

  private evict(): void {
    if (this.bitmaps.size <= MAX_BITMAPS) return;
    for (const [k, v] of this.bitmaps) {
      if (this.bitmaps.size <= MAX_BITMAPS) break;
      if (v.frame >= this.frame - 1) continue; // on screen now or until the next frame replaces it
      v.bitmap.close();
      this.bitmaps.delete(k);
    }
  }

  clear(): void {
    for (const v of this.bitmaps.values()) v.bitmap.close();
    this.bitmaps.clear();
    this.queued.clear();
  }

  destroy(): void {
    this.clear();
    for (const w of this.workers) w.terminate();
  }
}

export type { TilePixels, TileStyle };
