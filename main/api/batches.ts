// The app's batch panel, main side: the same engine as `emseg batch` (main/batch/run.ts: manifest, resume, worker
// processes, failures isolated), driven by the API and reported as events. The coordinator here holds no pixels and
// does no model work — the batch's worker processes do — so the event loop that serves the viewer stays free.
//
//   startBatch ─> runBatch (workers) ─> onPlan / onProgress ─> BatchInfo events ─> the panel
//   stopBatch  ─> AbortSignal ─> the workers are killed; their items stay unrecorded, so a new start resumes them
//   openBatchResult ─> the item's input opened as a stack; its membrane-round-<r>.tif / labels.tif copied slice by slice
//                      into the job result layout and adopted as a finished job the viewer draws like any other
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runBatch } from '../batch/run';
import { latestRecords, type ManifestRecord } from '../batch/manifest';
import { writeReport } from '../batch/report';
import { openStack } from '../io';
import { writeFileAtomic } from '../engine/atomic';
import { DEFAULT_MEMBRANE_MODEL, DEFAULT_REFINER_MODEL } from '../engine/models';
import { MEMBRANE_FILE, membraneRoundFile } from '../engine/outputs';
import { DEFAULT_TILE_PX } from '../../ml/infer/tiled';
import type { AccessGuard } from './access';
import type { ApiEvent, Args, BatchInfo, BatchItemInfo, Result, StackSummary } from './contract';
import { ApiError } from './door';
import type { JobManager } from '../jobs/manager';
import { resultFile } from '../jobs/results';

export interface BatchServiceOptions {
  guard: AccessGuard;
  jobs: JobManager;
  open: (path: string) => Promise<StackSummary>;
  emit: (e: ApiEvent) => void;
  /** The Electron app's bundled batch worker; default: the worker run from source. */
  workerBoot?: string;
  /** Model folders (default: the shipped ones). */
  models?: { membrane: string; refiner: string | null };
}

interface Run {
  info: BatchInfo;
  abort: AbortController;
  items: Map<string, BatchItemInfo>;
  lastEventAt: number;
  done: Promise<void>;
}

// Panel updates at most this often while items stream in; every state change is sent at once.
const EVENT_INTERVAL_MS = 250;
// The panel lists this many items at most (a 100 000-image batch is summarised by its counts and the report).
const MAX_LISTED_ITEMS = 5000;

function itemOf(r: ManifestRecord, status?: BatchItemInfo['status']): BatchItemInfo {
  return {
    key: r.key,
    input: r.input,
    status: status ?? r.status,
    seconds: r.seconds?.total ?? null,
    error: r.error ?? null,
    vrand: r.metrics?.vrand ?? null,
  };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

export function createBatchService(opts: BatchServiceOptions) {
  const runs = new Map<string, Run>();
  let counter = 0;

  const snapshot = (run: Run): BatchInfo => {
    const itemList = [...run.items.values()].sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true })).slice(0, MAX_LISTED_ITEMS);
    return { ...run.info, itemList };
  };
  const emit = (run: Run, force: boolean): void => {
    const t = Date.now();
    if (!force && t - run.lastEventAt < EVENT_INTERVAL_MS) return;
    run.lastEventAt = t;
    opts.emit({ type: 'batch', batch: snapshot(run) });
  };

  /** Everything the output folder's manifest says is done, so the panel lists earlier runs' results too. */
  async function listEarlier(run: Run): Promise<void> {
    const { records } = await latestRecords(run.info.outDir).catch(() => ({ records: new Map<string, ManifestRecord>() }));
    for (const r of records.values()) if (!run.items.has(r.key)) run.items.set(r.key, itemOf(r, r.status === 'done' ? 'unchanged' : 'failed'));
  }

  async function execute(run: Run, refineRounds: number | undefined, report: boolean, membrane: string): Promise<void> {
    const { info } = run;
    const refiner = opts.models ? opts.models.refiner : (await exists(join(DEFAULT_REFINER_MODEL, 'model.json'))) ? DEFAULT_REFINER_MODEL : null;
    const models = { membrane, refiner };
    const t0 = Date.now();
    let final: BatchInfo['state'] = 'failed';
    try {
      const summary = await runBatch({
        input: info.input,
        outDir: info.outDir,
        models,
        params: { refineRounds: refineRounds ?? null, segment: {}, tta: false, tilePx: DEFAULT_TILE_PX, writeRounds: true },
        workerBoot: opts.workerBoot,
        signal: run.abort.signal,
        onPlan: (p) => {
          Object.assign(info, { items: p.items, unchanged: p.unchanged, todo: p.todo });
          void listEarlier(run).then(() => emit(run, true));
        },
        onProgress: (p) => {
          run.items.set(p.record.key, itemOf(p.record));
          Object.assign(info, { finished: p.finished, done: p.done, failed: p.failed });
          const perItem = p.finished > 0 ? p.elapsedSeconds / p.finished : null;
          info.etaSeconds = perItem === null ? null : Math.round(perItem * (p.total - p.finished));
          info.mpxPerSecond = p.elapsedSeconds > 0 ? Math.round((p.processedMpx / p.elapsedSeconds) * 100) / 100 : null;
          emit(run, false);
        },
      });
      final = summary.stopped ? 'stopped' : 'done';
      if (report && !summary.stopped) {
        const { records } = await latestRecords(info.outDir);
        const entries = [...records.values()].map((r) => ({ key: r.key, input: r.input, record: r }));
        info.report = await writeReport(info.outDir, entries);
      }
    } catch (e) {
      final = run.abort.signal.aborted ? 'stopped' : 'failed';
      info.error = final === 'failed' ? (e instanceof Error ? e.message : String(e)).split('\n')[0] : null;
    }
    await listEarlier(run);
    // The end state is set only now, with every item listed, and sent at once: a caller that sees the batch finished
    // (listBatches) never sees it before its final event, nor with its item list still incomplete.
    info.state = final;
    info.etaSeconds = final === 'done' ? 0 : null;
    info.finishedAt = Math.max(t0, Date.now());
    emit(run, true);
  }

  async function checkedOut(outDir: string): Promise<string> {
    // The output folder may not exist yet: its parent must be a folder the user opened.
    if (await exists(outDir)) return opts.guard.check(outDir);
    const parent = await opts.guard.check(dirname(outDir));
    const real = join(parent, outDir.slice(dirname(outDir).length + 1));
    await mkdir(real, { recursive: true });
    return real;
  }

  return {
    /** `membraneModel`, when given, is a folder the caller has already checked (the model picker's choice). */
    async startBatch({ input, outDir, refineRounds, report, membraneModel }: Args<'startBatch'>): Promise<Result<'startBatch'>> {
      const realIn = await opts.guard.check(input);
      const realOut = await checkedOut(outDir);
      for (const r of runs.values()) {
        if (r.info.state === 'running' && r.info.outDir === realOut) throw new ApiError('user', `${realOut}: a batch is already writing into this folder`);
      }
      const membrane = membraneModel ?? opts.models?.membrane ?? DEFAULT_MEMBRANE_MODEL;
      if (!(await exists(join(membrane, 'model.json')))) throw new ApiError('user', `${membraneModel ? 'not a model folder' : 'no membrane model installed'} (expected ${join(membrane, 'model.json')})`);
      await opts.guard.addRoot(realOut);
      const batchId = `b${++counter}`;
      const run: Run = {
        info: {
          batchId, input: realIn, outDir: realOut, state: 'running', items: 0, unchanged: 0, todo: 0, finished: 0, done: 0, failed: 0,
          etaSeconds: null, mpxPerSecond: null, startedAt: Date.now(), finishedAt: null, error: null, itemList: [], report: null,
        },
        abort: new AbortController(),
        items: new Map(),
        lastEventAt: 0,
        done: Promise.resolve(),
      };
      runs.set(batchId, run);
      emit(run, true);
      run.done = execute(run, refineRounds, report === true, membrane);
      return { batchId };
    },

    async stopBatch({ batchId }: Args<'stopBatch'>): Promise<Result<'stopBatch'>> {
      const run = runs.get(batchId);
      if (!run) throw new ApiError('not-found', `no batch ${batchId}`);
      if (run.info.state !== 'running') return { stopped: false };
      run.abort.abort();
      await run.done;
      return { stopped: true };
    },

    listBatches: async (): Promise<Result<'listBatches'>> => [...runs.values()].map(snapshot),

    async openBatchResult({ batchId, key }: Args<'openBatchResult'>): Promise<Result<'openBatchResult'>> {
      const run = runs.get(batchId);
      if (!run) throw new ApiError('not-found', `no batch ${batchId}`);
      const { records } = await latestRecords(run.info.outDir);
      const rec = records.get(key);
      if (!rec || rec.status !== 'done') throw new ApiError('not-found', `batch ${batchId} has no finished item '${key}'`);
      const stack = await opts.open(rec.input);
      const itemDir = join(run.info.outDir, key);
      const files = new Set((rec.outputs ?? []).map((o) => o.file));
      let rounds = 0;
      while (files.has(membraneRoundFile(rounds))) rounds++;
      const maps = rounds > 0 ? Array.from({ length: rounds }, (_, r) => membraneRoundFile(r)) : files.has(MEMBRANE_FILE) ? [MEMBRANE_FILE] : [];
      const hasLabels = files.has('labels.tif');
      // Copy into the session's result layout, slice by slice: a stack of any length never sits in memory whole.
      const folder = opts.jobs.resultFolder(`batch-${batchId}-${key.replace(/[^A-Za-z0-9_-]/g, '_')}-${Date.now()}`);
      await rm(folder, { recursive: true, force: true });
      await mkdir(folder, { recursive: true });
      const slices: number[] = [];
      const sources = await Promise.all([...maps.map((m) => openStack(join(itemDir, m), { cacheBytes: 0 })), ...(hasLabels ? [openStack(join(itemDir, 'labels.tif'), { cacheBytes: 0 })] : [])]);
      try {
        for (const s of sources) {
          if (s.info.width !== stack.width || s.info.height !== stack.height || s.info.depth !== stack.depth) {
            throw new ApiError('user', `${s.info.path}: ${s.info.width}×${s.info.height}×${s.info.depth} does not match its input ${stack.width}×${stack.height}×${stack.depth}`);
          }
        }
        for (let z = 0; z < stack.depth; z++) {
          for (let r = 0; r < maps.length; r++) {
            const img = await sources[r].readSlice(z);
            const f = img.data instanceof Float32Array ? img.data : Float32Array.from(img.data);
            await writeFileAtomic(resultFile(folder, z, `round-${r}`), new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
          }
          if (hasLabels) {
            const img = await sources[maps.length].readSlice(z);
            const l = img.data instanceof Uint32Array ? img.data : Uint32Array.from(img.data);
            await writeFileAtomic(resultFile(folder, z, 'labels'), new Uint8Array(l.buffer, l.byteOffset, l.byteLength));
          }
          slices.push(z);
        }
      } finally {
        for (const s of sources) await s.close().catch(() => undefined);
      }
      const job = opts.jobs.adopt('segment', { stackId: stack.stackId, name: stack.name, path: stack.path }, folder, {
        rounds: maps.length, hasLabels, slices, stage: `batch ${batchId}: ${key}`,
      });
      return { stack, jobId: job.jobId };
    },

    /** Stops every running batch (the app is closing); their items resume on the next start. */
    async close(): Promise<void> {
      for (const r of runs.values()) if (r.info.state === 'running') r.abort.abort();
      await Promise.all([...runs.values()].map((r) => r.done));
    },
  };
}
