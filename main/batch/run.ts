// The batch coordinator: lists the items (and this shard's share of them), skips those whose manifest record and
// outputs still hold, hands the rest to the worker processes, appends each record to the manifest as it arrives,
// reports progress, and sums up. It holds no pixels, so its memory does not grow with items or stack length.
//
//   discoverItems ─▶ selectShard ─▶ quick skip (stat only) ─▶ runPool ─▶ worker: processItem ─▶ record ─▶ manifest
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { attachGroundTruth, batchError, discoverItems, selectShard, type BatchItem, type Shard } from './items';
import { fingerprint, modelHash, paramsHash } from './hash';
import { latestRecords, manifestName, ManifestWriter, outputsIntact, type BatchParams, type ManifestRecord } from './manifest';
import { runPool } from './pool';
import type { ItemTask } from './task';

export interface BatchRunOptions {
  /** Input folder, list file, or one image. */
  input: string;
  outDir: string;
  models: { membrane: string; refiner: string | null };
  params: BatchParams;
  /** Ground-truth folder mirroring the input (or one file for a batch of one). */
  gt?: string;
  gtMembraneValue?: number;
  folderStacks?: boolean;
  /** Worker processes (default: the CPUs available, at most the items to do). */
  workers?: number;
  /** ONNX Runtime threads per worker (default: CPUs / workers). */
  threads?: number;
  shard?: Shard;
  verify?: boolean;
  /** Called once the items are listed and sorted into skipped and to do. */
  onPlan?: (plan: BatchPlan) => void;
  /** Called after each item the workers finish (done, failed, or found unchanged). */
  onProgress?: (p: BatchProgress) => void;
  /** One-line notices (unmatched ground truth, image conversions, torn manifest lines). */
  onNotice?: (message: string) => void;
  /** Entry file of the worker processes (the Electron app's bundled one); default: worker-boot.mjs from source. */
  workerBoot?: string;
  /** Stops the run (the app's Stop button): items in progress are dropped and redone by the next run. */
  signal?: AbortSignal;
}

export interface BatchPlan {
  items: number;
  totalItems: number;
  shard?: string;
  unchanged: number;
  todo: number;
  workers: number;
  threads: number;
}

export interface BatchProgress {
  /** Items handed to the workers, and how many of them are finished so far. */
  total: number;
  finished: number;
  done: number;
  failed: number;
  processedMpx: number;
  elapsedSeconds: number;
  /** The record that just arrived. */
  record: ManifestRecord;
}

export interface BatchSummary {
  /** Items of this run (this shard's share when sharded). */
  items: number;
  /** Items of the whole input. */
  totalItems: number;
  shard?: string;
  /** Processed now and done. */
  done: number;
  /** Already done with the same input, parameters and model: skipped. */
  unchanged: number;
  failed: number;
  failures: Array<{ key: string; input: string; error: string }>;
  workers: number;
  threads: number;
  seconds: number;
  /** Over the processed items (skipped ones excluded): items per second and megapixels (all slices) per second. */
  itemsPerSecond: number;
  mpxPerSecond: number;
  processedMpx: number;
  peakRssMiB: { coordinator: number; worker: number };
  manifest: string;
  /** The run was stopped before every item was handled (run the same batch again to resume). */
  stopped?: true;
}

/** CPUs this process may use: Slurm's allocation when inside a job, else what the OS reports. */
export function cpusAvailable(): number {
  const slurm = Number(process.env.SLURM_CPUS_PER_TASK);
  const os = availableParallelism();
  return Number.isInteger(slurm) && slurm > 0 ? Math.min(slurm, os) : os;
}

function shardTag(shard?: Shard): string {
  return shard && shard.count > 1 ? `shard-${shard.index}-of-${shard.count}` : 'all';
}

/**
 * One run per shard and output folder at a time: two runs would clear each other's partial outputs. A lock left by a
 * killed run (its process gone) is taken over; one held by another machine can only be taken over by hand.
 */
async function takeLock(path: string): Promise<() => Promise<void>> {
  const me = { host: hostname(), pid: process.pid };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, JSON.stringify(me), { flag: 'wx' });
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    }
    const holder = await readFile(path, 'utf8')
      .then((t) => JSON.parse(t) as { host?: string; pid?: number })
      .catch(() => ({}) as { host?: string; pid?: number });
    if (holder.host && holder.host !== me.host) {
      throw batchError(`another emseg batch on ${holder.host} (pid ${holder.pid}) writes into this folder; if it is gone, delete ${path}`);
    }
    let alive = false;
    try {
      if (holder.pid) process.kill(holder.pid, 0);
      alive = holder.pid !== undefined;
    } catch {
      alive = false;
    }
    if (alive) throw batchError(`another emseg batch (pid ${holder.pid}) is writing into this folder; wait for it, or if that process is not emseg, delete ${path}`);
    await rm(path, { force: true });
  }
  throw batchError(`cannot take the lock ${path}`);
}

/** The items of a batch with their ground truth attached, before sharding. */
export async function listBatch(input: string, opts: { outDir: string; folderStacks?: boolean; gt?: string }): Promise<{ items: BatchItem[]; withGt: number }> {
  const items = await discoverItems(input, { folderStacks: opts.folderStacks, exclude: [resolve(opts.outDir)] });
  if (items.length === 0) throw batchError(`${input}: no images found (PNG, TIFF or JPEG)${opts.folderStacks ? '' : '; for folders of slices as stacks use --folder-stacks'}`);
  const withGt = opts.gt ? await attachGroundTruth(items, opts.gt) : 0;
  return { items, withGt };
}

/** Can the item be skipped on stat alone: done record, same settings, input and ground truth untouched, outputs there. */
async function quickUnchanged(item: BatchItem, prev: ManifestRecord | undefined, outDir: string, hashes: { params: string; model: string }): Promise<boolean> {
  if (!prev || prev.status !== 'done' || prev.input !== item.input) return false;
  if (prev.paramsHash !== hashes.params || prev.model.hash !== hashes.model) return false;
  const fp = await fingerprint(item.input).catch(() => null);
  if (fp === null || fp !== prev.inputFingerprint) return false;
  if (item.gt) {
    if (prev.gt?.path !== item.gt || (await fingerprint(item.gt).catch(() => null)) !== prev.gt.fingerprint) return false;
  } else if (prev.gt) return false;
  return outputsIntact(outDir, prev);
}

export async function runBatch(opts: BatchRunOptions): Promise<BatchSummary> {
  const t0 = performance.now();
  const notice = (m: string): void => opts.onNotice?.(m);
  const outDir = resolve(opts.outDir);
  const { items, withGt } = await listBatch(opts.input, { outDir, folderStacks: opts.folderStacks, gt: opts.gt });
  if (opts.gt && withGt === 0) notice(`--gt ${opts.gt}: no ground truth matches any item (expected the input's relative paths)`);
  const mine = selectShard(items, opts.shard);
  const shard = opts.shard && opts.shard.count > 1 ? `${opts.shard.index}/${opts.shard.count}` : undefined;

  await mkdir(join(outDir, '.emseg', 'partial'), { recursive: true });
  const unlock = await takeLock(join(outDir, '.emseg', `lock-${shardTag(opts.shard)}`));
  try {
    // Only this shard's leftovers: other shards may be running on other nodes right now, into the same --out.
    const partialDir = join(outDir, '.emseg', 'partial', shardTag(opts.shard));
    await rm(partialDir, { recursive: true, force: true });
    await mkdir(partialDir, { recursive: true });
    const summary = await processShare({ opts, outDir, partialDir, items, mine, shard, notice });
    await rm(partialDir, { recursive: true, force: true }).catch(() => undefined);
    return { ...summary, seconds: Math.round(performance.now() - t0) / 1000 };
  } finally {
    await unlock();
  }
}

interface RunContext {
  opts: BatchRunOptions;
  outDir: string;
  partialDir: string;
  items: BatchItem[];
  mine: BatchItem[];
  shard: string | undefined;
  notice: (m: string) => void;
}

/** Decides what to skip, runs the rest on the pool and records every outcome. */
async function processShare({ opts, outDir, partialDir, items, mine, shard, notice }: RunContext): Promise<BatchSummary> {
  // With --refine-rounds 0 the refiner still counts: its model.json holds the round-0 thresholds.
  const refiner = opts.models.refiner;
  const model = { membrane: resolve(opts.models.membrane), refiner: refiner && resolve(refiner), hash: await modelHash([opts.models.membrane, refiner]) };
  // The tile edge changes speed and memory, not results (tiled equals whole-slice inference; ml/infer/tiled.test.ts),
  // so it is left out of the hash: a rerun with another --tile keeps what is done.
  const { tilePx: _tile, ...resultParams } = opts.params;
  const hashes = { params: paramsHash(resultParams), model: model.hash };
  const { records: previous, badLines } = await latestRecords(outDir);
  if (badLines > 0) notice(`${badLines} unreadable manifest line(s) ignored (a run killed mid-write); those items are redone`);

  const todo: BatchItem[] = [];
  let unchanged = 0;
  for (const item of mine) {
    // --verify re-hashes inputs and outputs in the workers instead of trusting sizes and mtimes.
    if (!opts.verify && (await quickUnchanged(item, previous.get(item.key), outDir, hashes))) unchanged++;
    else todo.push(item);
  }

  const cpus = cpusAvailable();
  const workers = Math.max(1, Math.min(opts.workers ?? cpus, Math.max(1, todo.length)));
  const threads = opts.threads ?? Math.max(1, Math.floor(cpus / workers));
  const tasks: ItemTask[] = todo.map((item) => ({
    item,
    outDir,
    partialDir,
    params: opts.params,
    paramsHash: hashes.params,
    model,
    threads,
    gtMembraneValue: opts.gtMembraneValue ?? 0,
    verify: opts.verify === true,
    shard,
    previous: previous.get(item.key),
  }));

  const manifestPath = join(outDir, manifestName(opts.shard));
  const writer = await ManifestWriter.open(manifestPath);
  opts.onPlan?.({ items: mine.length, totalItems: items.length, shard, unchanged, todo: todo.length, workers, threads });
  let done = 0;
  let failed = 0;
  let finished = 0;
  let processedMpx = 0;
  const failures: BatchSummary['failures'] = [];
  const tPool = performance.now();
  let stats = { workersStarted: 0, maxWorkerRssKiB: 0 };
  // Items often give the same notice (the stored thresholds in use, say): the first is shown with its item, the
  // repeats are counted and summed up once the pool is done.
  const repeats = new Map<string, number>();
  try {
    if (tasks.length > 0) {
      stats = await runPool(tasks, workers, {
        signal: opts.signal,
        onNotice: (key, m) => {
          const seen = repeats.get(m);
          repeats.set(m, (seen ?? -1) + 1);
          if (seen === undefined) notice(`${key}: ${m}`);
        },
        onOutcome: async ({ record, unchanged: same }) => {
          finished++;
          if (same) {
            unchanged++;
            // Only the stat fingerprint is new (the file was touched, not changed): record it so the next run skips on stat.
            if (record.inputFingerprint !== previous.get(record.key)?.inputFingerprint) await writer.append(record);
          } else {
            await writer.append(record);
            if (record.status === 'done') {
              done++;
              processedMpx += ((record.width ?? 0) * (record.height ?? 0) * (record.slices ?? 0)) / 1e6;
            } else {
              failed++;
              failures.push({ key: record.key, input: record.input, error: record.error ?? 'failed' });
            }
          }
          opts.onProgress?.({ total: todo.length, finished, done, failed, processedMpx, elapsedSeconds: (performance.now() - tPool) / 1000, record });
        },
      }, opts.workerBoot);
    }
  } finally {
    await writer.close();
  }
  for (const [m, n] of repeats) if (n > 0) notice(`${n} more item(s): ${m}`);
  const poolSeconds = (performance.now() - tPool) / 1000;
  const processed = done + failed;
  return {
    items: mine.length,
    totalItems: items.length,
    ...(shard ? { shard } : {}),
    done,
    unchanged,
    failed,
    failures,
    workers: tasks.length > 0 ? workers : 0,
    threads,
    seconds: Math.round(poolSeconds * 1000) / 1000,
    itemsPerSecond: poolSeconds > 0 && processed > 0 ? Math.round((processed / poolSeconds) * 1000) / 1000 : 0,
    mpxPerSecond: poolSeconds > 0 && processedMpx > 0 ? Math.round((processedMpx / poolSeconds) * 1000) / 1000 : 0,
    processedMpx: Math.round(processedMpx * 1000) / 1000,
    peakRssMiB: { coordinator: Math.round(process.resourceUsage().maxRSS / 1024), worker: Math.round(stats.maxWorkerRssKiB / 1024) },
    manifest: manifestPath,
    ...(opts.signal?.aborted && finished < todo.length ? { stopped: true as const } : {}),
  };
}
