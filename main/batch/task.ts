// What the batch coordinator sends a worker process for one item, what comes back, and the messages between them.
// Kept free of engine imports: the coordinator loads this, and it must stay a small process (no ONNX Runtime, no tfjs)
// however many items it hands out.
import { hostname } from 'node:os';
import type { BatchItem } from './items';
import type { BatchParams, ManifestRecord } from './manifest';

export interface ItemTask {
  item: BatchItem;
  /** Absolute --out. */
  outDir: string;
  /** Where this run builds output folders before renaming them into place (inside outDir: same file system). */
  partialDir: string;
  params: BatchParams;
  paramsHash: string;
  model: ManifestRecord['model'];
  /** ONNX Runtime threads of this worker. */
  threads?: number;
  /** Pixel value of membrane in 8/16-bit ground truth (ISBI: 0). */
  gtMembraneValue: number;
  /** Re-hash inputs and outputs instead of trusting size and mtime. */
  verify: boolean;
  /** 'i/N' when sharded, recorded with each item. */
  shard?: string;
  /** The item's latest manifest record, if any: an unchanged input then skips hashing, an intact item skips work. */
  previous?: ManifestRecord;
}

export interface ItemOutcome {
  record: ManifestRecord;
  /** The record's outputs were already there and current: nothing was computed. */
  unchanged: boolean;
}

export type ToWorker = { type: 'item'; task: ItemTask };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'notice'; key: string; message: string }
  | { type: 'result'; outcome: ItemOutcome; maxRssKiB: number };

/** One line for the manifest and the summary, whatever the error carried (decoder messages can span lines). */
export function oneLineError(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.replace(/\s*[\r\n]+\s*/g, ' ').trim() || 'unknown error';
  // Keeps a record well under the 4 KiB that one append writes whole.
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}

export function baseRecord(task: ItemTask, start: Date): Omit<ManifestRecord, 'status' | 'end' | 'seconds'> {
  return {
    v: 1,
    key: task.item.key,
    input: task.item.input,
    kind: task.item.kind,
    params: task.params,
    paramsHash: task.paramsHash,
    model: task.model,
    start: start.toISOString(),
    host: hostname(),
    pid: process.pid,
    ...(task.shard ? { shard: task.shard } : {}),
  };
}

export function failedRecord(task: ItemTask, error: unknown, start: Date, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  const end = new Date();
  return {
    ...baseRecord(task, start),
    ...extra,
    status: 'failed',
    error: oneLineError(error),
    end: end.toISOString(),
    seconds: { ...extra.seconds, total: (end.getTime() - start.getTime()) / 1000 },
  };
}
