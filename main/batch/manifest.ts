// The batch manifest: JSON lines in --out, one record appended per finished or failed item. A rerun reads every
// manifest in the folder and the latest record per item wins; an item counts as done only if that record says done
// AND its outputs are on disk with the recorded sizes (and hashes, with --verify).
//
//   manifest.jsonl                  an unsharded run's records; after `emseg batch --merge`, one record per item
//   manifest.shard-<i>-of-<N>.jsonl  the records of `--shard i/N` (each shard appends to its own file, so shards on
//                                    different nodes never write the same file)
//
// Appends are single write() calls of one line on an O_APPEND descriptor, so a kill -9 can at worst leave a torn last
// line; readers skip lines that do not parse, and the writer starts on a fresh line.
import { open, readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { SegmentParams } from '../../ml/segmentation';
import type { SegmentationScores } from '../../ml/metrics';
import { writeFileAtomic } from '../engine/atomic';
import { naturalCompare } from '../io/stack';
import { hashFile } from './hash';
import type { Shard } from './items';

export const MANIFEST = 'manifest.jsonl';

/** The parameters that decide an item's outputs; their hash is part of "unchanged". */
export interface BatchParams {
  /** Refinement rounds; null = the number stored with the refiner (0 without one). */
  refineRounds: number | null;
  /**
   * Only the segmentation parameters the user set; the others come from the thresholds stored with the model for the
   * rounds run (emseg tune-segmentation), else DEFAULT_SEGMENT_PARAMS — as for `emseg segment`.
   */
  segment: Partial<SegmentParams>;
  tta: boolean;
  tilePx: number;
  /** membrane-round-<r>.tif written too. */
  writeRounds: boolean;
  /** --pixel-size: the stacks' in-plane pixel size in nm, over their metadata. */
  pixelSizeNm?: number;
  /** --no-rescale: run at the stacks' own pixel size. */
  noRescale?: true;
}

export interface OutputFile {
  /** Name inside the item's output folder. */
  file: string;
  bytes: number;
  sha256: string;
}

/** Mean over the item's slices of the ISBI scores (NaN, as for a slice without ground-truth interior, is null). */
export type ItemMetrics = { [K in keyof SegmentationScores]: number | null } & { slices: number };

export interface ManifestRecord {
  v: 1;
  key: string;
  input: string;
  kind: 'file' | 'folder';
  /** 'sha256:…' of the input's bytes (a folder: names and bytes of its files); absent if it could not be read. */
  inputHash?: string;
  /** Size and mtime when inputHash was taken (see hash.ts fingerprint). */
  inputFingerprint?: string;
  width?: number;
  height?: number;
  slices?: number;
  params: BatchParams;
  paramsHash: string;
  model: { membrane: string; refiner: string | null; hash: string };
  status: 'done' | 'failed';
  /** One line: what went wrong (failed items). */
  error?: string;
  /** ISO times. */
  start: string;
  end: string;
  seconds: { total: number; hash?: number; segment?: number; metrics?: number };
  outputs?: OutputFile[];
  gt?: { path: string; hash: string; fingerprint: string };
  metrics?: ItemMetrics;
  host: string;
  pid: number;
  shard?: string;
}

export function manifestName(shard?: Shard): string {
  return shard && shard.count > 1 ? `manifest.shard-${shard.index}-of-${shard.count}.jsonl` : MANIFEST;
}

function isRecord(x: unknown): x is ManifestRecord {
  const r = x as Partial<ManifestRecord> | null;
  return typeof r === 'object' && r !== null && r.v === 1 && typeof r.key === 'string' && (r.status === 'done' || r.status === 'failed') && typeof r.end === 'string';
}

/** The records of one manifest file, in file order; lines that do not parse (a torn last line) are counted, not fatal. */
export async function readManifestFile(path: string): Promise<{ records: ManifestRecord[]; badLines: number }> {
  const text = await readFile(path, 'utf8').catch((e: unknown) => {
    if ((e as { code?: string }).code === 'ENOENT') return '';
    throw e;
  });
  const records: ManifestRecord[] = [];
  let badLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r: unknown = JSON.parse(line);
      if (isRecord(r)) records.push(r);
      else badLines++;
    } catch {
      badLines++;
    }
  }
  return { records, badLines };
}

export async function manifestFiles(outDir: string): Promise<string[]> {
  const names = await readdir(outDir).catch(() => [] as string[]);
  return names.filter((n) => n === MANIFEST || /^manifest\.shard-\d+-of-\d+\.jsonl$/.test(n)).sort(naturalCompare);
}

/** The latest record per item over every manifest in outDir (latest by end time; a tie goes to the later line). */
export async function latestRecords(outDir: string): Promise<{ records: Map<string, ManifestRecord>; badLines: number }> {
  const all: Array<{ r: ManifestRecord; order: number }> = [];
  let badLines = 0;
  for (const name of await manifestFiles(outDir)) {
    const m = await readManifestFile(join(outDir, name));
    badLines += m.badLines;
    for (const r of m.records) all.push({ r, order: all.length });
  }
  all.sort((a, b) => (a.r.end < b.r.end ? -1 : a.r.end > b.r.end ? 1 : a.order - b.order));
  const records = new Map<string, ManifestRecord>();
  for (const { r } of all) records.set(r.key, r);
  return { records, badLines };
}

/** Appends records to one manifest file, one write per line. */
export class ManifestWriter {
  private constructor(private readonly fh: FileHandle) {}

  static async open(path: string): Promise<ManifestWriter> {
    const fh = await open(path, 'a+');
    // A run killed mid-write may have left a torn last line: start on a fresh one so the next record stays whole.
    const { size } = await fh.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) await fh.write('\n');
    }
    return new ManifestWriter(fh);
  }

  async append(record: ManifestRecord): Promise<void> {
    await this.fh.write(`${JSON.stringify(record)}\n`);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * Are the recorded outputs of a done record on disk as recorded? Sizes always (cheap, and enough to catch a truncated
 * or missing file); hashes too with verify.
 */
export async function outputsIntact(outDir: string, r: ManifestRecord, verify = false): Promise<boolean> {
  if (r.status !== 'done' || !r.outputs || r.outputs.length === 0) return false;
  for (const o of r.outputs) {
    const path = join(outDir, r.key, o.file);
    const st = await stat(path).catch(() => null);
    if (!st || !st.isFile() || st.size !== o.bytes) return false;
    if (verify && (await hashFile(path)).sha256 !== o.sha256) return false;
  }
  return true;
}

/**
 * `emseg batch --merge`: the latest record of every item over all manifests in outDir (the shards' and any earlier
 * manifest.jsonl), written to manifest.jsonl in key order, atomically. Returns them in that order.
 */
export async function mergeManifests(outDir: string): Promise<{ records: ManifestRecord[]; badLines: number; files: string[] }> {
  const files = await manifestFiles(outDir);
  const { records, badLines } = await latestRecords(outDir);
  const sorted = [...records.values()].sort((a, b) => naturalCompare(a.key, b.key));
  await writeFileAtomic(join(outDir, MANIFEST), sorted.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return { records: sorted, badLines, files };
}
