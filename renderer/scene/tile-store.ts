// The pixel store: tile data (raw slices, membrane maps, labels, ground truth) fetched through the API, kept here and
// never in React state. A byte-bounded LRU of typed arrays plus a fetch queue with two priorities (tiles on screen
// first, then the next and previous slices), at most six requests in flight (the browser's per-host limit), and a
// version number that goes up whenever data arrives so subscribers (the scene, the status bar) know to look again.
import type { EmsegApi, PixelType, ProjectReadLayer, ResultLayer, TileGeometry } from '../../main/api/contract';
import type { TilePixels } from './colorize';

export type TileSource =
  | { kind: 'raw'; stackId: string; pixelType: PixelType }
  | { kind: 'result'; jobId: string; layer: Exclude<ResultLayer, 'truth'> }
  | { kind: 'truth'; stackId: string }
  /** A proofreading project's layer (labels, ground truth, a job's proposed labels, a stored map round); `rev` goes up
   * with every edit and every stored job result, so changed tiles get new keys and are fetched anew. */
  | { kind: 'project'; projectId: string; layer: ProjectReadLayer; rev: number };

export function sourceKey(s: TileSource): string {
  if (s.kind === 'project') return `proj:${s.projectId}:${s.layer}:r${s.rev}`;
  return s.kind === 'result' ? `job:${s.jobId}:${s.layer}` : `${s.kind}:${s.stackId}`;
}

export interface TileAddress {
  z: number;
  level: number;
  tx: number;
  ty: number;
}

export function tileKey(s: TileSource, a: TileAddress): string {
  return `${sourceKey(s)}|${a.z}|${a.level}|${a.tx}|${a.ty}`;
}

export interface TileData {
  width: number;
  height: number;
  data: TilePixels;
}

export const Priority = { Visible: 0, Prefetch: 1 } as const;
export type Priority = (typeof Priority)[keyof typeof Priority];

interface Request {
  key: string;
  source: TileSource;
  addr: TileAddress;
  width: number;
  height: number;
  priority: Priority;
}

// The browser opens at most six HTTP/1.1 connections per host; more requests in flight would only queue there,
// out of our control, where a stale prefetch could delay a visible tile.
const MAX_IN_FLIGHT = 6;
// 384 MiB of tile data: a full screen of float32 maps and labels for three slices with room to pan back.
const MAX_BYTES = 384 * 1024 ** 2;
// A tile that failed is not asked for again for this long (a job's slice that is not ready, a flaky disk).
const RETRY_AFTER_MS = 3000;

function view(source: TileSource, buf: ArrayBuffer): TilePixels {
  // Maps (a job's rounds, a project's stored rounds) are float32; labels and ground truth uint32.
  if (source.kind === 'result' || source.kind === 'project') return source.layer.startsWith('round-') ? new Float32Array(buf) : new Uint32Array(buf);
  if (source.kind === 'truth') return new Uint32Array(buf);
  switch (source.pixelType) {
    case 'uint8':
      return new Uint8Array(buf);
    case 'uint16':
      return new Uint16Array(buf);
    case 'uint32':
      return new Uint32Array(buf);
    case 'float32':
      return new Float32Array(buf);
  }
}

export class TileStore {
  private readonly tiles = new Map<string, TileData>();
  private readonly failed = new Map<string, number>();
  private readonly inFlight = new Set<string>();
  private queue: Request[] = [];
  private bytes = 0;
  private readonly listeners = new Set<() => void>();
  /** Goes up by one whenever a tile arrives. */
  version = 0;

  constructor(private readonly api: EmsegApi) {}

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(key: string): TileData | undefined {
    const t = this.tiles.get(key);
    if (t) {
      this.tiles.delete(key);
      this.tiles.set(key, t);
    }
    return t;
  }

  /** Like get, without counting as a use (hover read-outs should not keep tiles alive). */
  peek(key: string): TileData | undefined {
    return this.tiles.get(key);
  }

  has(key: string): boolean {
    return this.tiles.has(key);
  }

  pending(): number {
    return this.queue.length + this.inFlight.size;
  }

  /**
   * Replaces the wish list: what the scene wants now, in order. Queued requests not wished for any more are dropped
   * (after a fast pan, tiles that scrolled away are never fetched); requests in flight complete and are kept.
   */
  want(requests: { source: TileSource; addr: TileAddress; geometry: TileGeometry; width: number; height: number; priority: Priority }[]): void {
    const now = performance.now();
    const next: Request[] = [];
    const seen = new Set<string>();
    for (const r of requests) {
      const key = tileKey(r.source, r.addr);
      if (seen.has(key) || this.tiles.has(key) || this.inFlight.has(key)) continue;
      const failedAt = this.failed.get(key);
      if (failedAt !== undefined && now - failedAt < RETRY_AFTER_MS) continue;
      seen.add(key);
      next.push({ key, source: r.source, addr: r.addr, width: r.width, height: r.height, priority: r.priority });
    }
    // Stable sort: visible before prefetch, and within each the caller's order (centre of the screen first).
    this.queue = next.sort((a, b) => a.priority - b.priority);
    this.pump();
  }

  private pump(): void {
    while (this.inFlight.size < MAX_IN_FLIGHT && this.queue.length > 0) {
      const r = this.queue.shift() as Request;
      this.inFlight.add(r.key);
      void this.fetch(r);
    }
  }

  private async fetch(r: Request): Promise<void> {
    try {
      const { z, level, tx, ty } = r.addr;
      const buf =
        r.source.kind === 'raw'
          ? await this.api.readSlice({ stackId: r.source.stackId, z, level, tx, ty })
          : r.source.kind === 'truth'
            ? await this.api.readResult({ stackId: r.source.stackId, layer: 'truth', z, level, tx, ty })
            : r.source.kind === 'project'
              ? await this.api.readProject({ projectId: r.source.projectId, layer: r.source.layer, z, level, tx, ty })
              : await this.api.readResult({ jobId: r.source.jobId, layer: r.source.layer, z, level, tx, ty });
      const data = view(r.source, buf);
      if (data.length !== r.width * r.height) throw new Error(`tile ${r.key}: ${data.length} values for ${r.width}×${r.height}`);
      this.put(r.key, { width: r.width, height: r.height, data });
      this.failed.delete(r.key);
    } catch {
      this.failed.set(r.key, performance.now());
    } finally {
      this.inFlight.delete(r.key);
      this.version++;
      for (const l of this.listeners) l();
      this.pump();
    }
  }

  private put(key: string, t: TileData): void {
    this.tiles.set(key, t);
    this.bytes += t.data.byteLength;
    for (const [k, v] of this.tiles) {
      if (this.bytes <= MAX_BYTES || k === key) break;
      this.tiles.delete(k);
      this.bytes -= v.data.byteLength;
    }
  }

  /** Forgets everything (another stack was opened). */
  clear(): void {
    this.tiles.clear();
    this.failed.clear();
    this.queue = [];
    this.bytes = 0;
    this.version++;
  }
}
