// The handlers behind the door: what each contract call does, the same for Electron and browser mode. The transport
// gives it what differs (a native dialog or none, how job processes start, where config and cache live); the door
// has already validated every argument.
//
//   openStack ─> AccessGuard (inside an opened folder?) ─> io.openStack ─> registry of open stacks (+ ground truth)
//   readSlice / readResult ─> PyramidCache (level from the level below, LRU by bytes) ─> cutTile ─> ArrayBuffer
//   startJob / cancelJob / listJobs ─> JobManager (one process per job) ─> result files ─> readResult
//   listModels / openModel / chooseModel ─> the model picker's list (models.ts), which also vouches for model folders
import { mkdir, readdir, realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStack, type Stack } from '../io';
import type { Image2D } from '../../ml/types';
import { AccessGuard } from './access';
import { levelCount, MAX_UPLOAD_BYTES, TILE_SIZE_PX, tileRect, type ApiEvent, type BrowseEntry, type JobParams, type StackSummary, type TileArgs } from './contract';
import { ApiError, type Handlers } from './door';
import { writeFileAtomic } from '../engine/atomic';
import { cutTile, PyramidCache, type DownsampleMode } from './pyramid';
import { RecentList } from './recent';
import { findTruthPath, resolveStackPath, truthToLabels } from './truth';
import { JobManager } from '../jobs/manager';
import type { SpawnJobProcess } from '../jobs/protocol';
import { readResultSlice, resultFile } from '../jobs/results';
import { projectHandlers } from './projects';
import { createBatchService } from './batches';
import { createModelService } from './models';
import { COMPRESSED_MODELS, DEFAULT_MEMBRANE_MODEL } from '../engine/models';

export interface BackendOptions {
  transport: 'electron' | 'browser';
  spawnJob: SpawnJobProcess;
  /** Folder for recent.json. */
  configDir: string;
  /** Folder for this session's job results (deleted by close()). */
  resultsDir: string;
  onEvent: (e: ApiEvent) => void;
  /** Folders the user opened before this session (command-line arguments). */
  roots?: string[];
  /** The operating system's dialog (Electron); absent in browser mode. */
  pickPath?: (mode: 'file' | 'folder', caller: unknown) => Promise<string | null>;
  samplePath?: string;
  home?: string;
  /** Models of batch runs (default: the shipped ones). */
  batchModels?: { membrane: string; refiner: string | null };
  /** The model picker's folders (default: the shipped membrane model and sample-data/models/compressed). */
  modelFolders?: { shipped: string; compressed: string };
  /** Entry file of batch worker processes (the Electron app's bundled one); default: from source. */
  batchWorkerBoot?: string;
  /** Bytes of pyramid levels kept in memory (default 768 MiB: an 8192² uint8 slice with its levels is 85 MiB). */
  cacheBytes?: number;
}

/** The sample stack: sample-data/isbi2012-val at the repository root (same relative place from out/main/). */
export function defaultSamplePath(): string {
  return process.env.EMSEG_SAMPLE_STACK ?? fileURLToPath(new URL('../../sample-data/isbi2012-val', import.meta.url));
}

interface OpenStack {
  summary: StackSummary;
  stack: Stack;
  truth: Stack | null;
}

// Dropped files a session may upload in all: a few large stacks; beyond that, Open… reads them where they are.
const MAX_UPLOAD_SESSION_BYTES = 8 * MAX_UPLOAD_BYTES;

const STACK_FILE_EXTENSIONS = new Set(['.tif', '.tiff', '.png', '.jpg', '.jpeg']);
const IMAGE_FOLDER_NAMES = new Set(['image', 'images', 'raw']);
const VERSION = '0.1.0';

export interface Backend {
  handlers: Handlers;
  /** Grants access to a folder the user chose outside the API (a command-line argument, a dropped path). */
  addRoot(path: string): Promise<void>;
  close(): Promise<void>;
}

export async function createBackend(opts: BackendOptions): Promise<Backend> {
  const home = opts.home ?? homedir();
  const samplePath = opts.samplePath ?? defaultSamplePath();
  const guard = new AccessGuard();
  const recent = new RecentList(opts.configDir);
  const pyramid = new PyramidCache(opts.cacheBytes ?? 768 * 1024 ** 2);
  // A job's end saves the open projects (their handlers are made below, before any job can end).
  const jobs = new JobManager({ spawn: opts.spawnJob, resultsDir: opts.resultsDir, emit: opts.onEvent, onEnd: (jobId) => proofreading.jobEnded(jobId) });
  const stacks = new Map<string, OpenStack>();
  const byPath = new Map<string, OpenStack>();
  let stackCounter = 0;
  let uploadedBytes = 0;
  /** Folders of dropped files (real paths): their stacks get a plain name and stay out of the recent list. */
  const uploadFolders = new Set<string>();

  await guard.addRoot(home, 'Home');
  await guard.addRoot(samplePath, 'Sample stack');
  for (const r of opts.roots ?? []) await guard.addRoot(r);
  // Stacks opened in earlier sessions were opened by the user, so their folders stay reachable from the recent list.
  for (const e of await recent.list()) await guard.addRoot(STACK_FILE_EXTENSIONS.has(extname(e.path).toLowerCase()) ? dirname(e.path) : e.path);

  async function open(path: string): Promise<StackSummary> {
    const real = await resolveStackPath(await guard.check(path));
    const existing = byPath.get(real);
    if (existing) return existing.summary;
    const stack = await openStack(real, { cacheBytes: 0 });
    let truth: Stack | null = null;
    const truthPath = await findTruthPath(real);
    if (truthPath) {
      const t = await openStack(truthPath, { cacheBytes: 0 }).catch(() => null);
      const ok = t && t.info.width === stack.info.width && t.info.height === stack.info.height && t.info.depth === stack.info.depth;
      if (ok) truth = t;
      else await t?.close();
    }
    const { info } = stack;
    const uploaded = [...uploadFolders].some((f) => real === f || real.startsWith(`${f}${sep}`));
    // 'isbi2012-val/image' says more than 'image'; dropped slices have only a session folder's random name.
    const name = uploaded && info.kind === 'folder' ? 'dropped slices' : IMAGE_FOLDER_NAMES.has(basename(real)) ? `${basename(dirname(real))}/${basename(real)}` : basename(real);
    const summary: StackSummary = {
      stackId: `s${++stackCounter}`,
      path: real,
      name,
      kind: info.kind,
      width: info.width,
      height: info.height,
      depth: info.depth,
      pixelType: info.pixelType,
      ...(info.pixelSizeNm ? { pixelSizeNm: info.pixelSizeNm } : {}),
      tileSizePx: TILE_SIZE_PX,
      levels: levelCount(info.width, info.height, TILE_SIZE_PX),
      hasTruth: truth !== null,
    };
    const entry = { summary, stack, truth };
    stacks.set(summary.stackId, entry);
    byPath.set(real, entry);
    await guard.addRoot(info.kind === 'folder' ? real : dirname(real));
    if (!uploaded) {
      await recent
        .add({ path: real, name, openedAt: new Date().toISOString(), width: info.width, height: info.height, depth: info.depth })
        .catch(() => undefined);
    }
    return summary;
  }

  function getStack(stackId: string): OpenStack {
    const s = stacks.get(stackId);
    if (!s) throw new ApiError('not-found', `no open stack ${stackId}`);
    return s;
  }

  /** Common checks and cutting for every tile read. */
  async function tile(s: OpenStack, t: TileArgs, key: string, mode: DownsampleMode, load: () => Promise<Image2D>): Promise<ArrayBuffer> {
    if (t.z >= s.summary.depth) throw new ApiError('not-found', `slice ${t.z} of ${s.summary.depth}`);
    if (!tileRect(s.summary, t.level, t.tx, t.ty)) throw new ApiError('not-found', `no tile ${t.tx},${t.ty} at level ${t.level}`);
    const img = await pyramid.level(key, t.level, load, mode);
    const buf = cutTile(img, s.summary, t.level, t.tx, t.ty);
    if (!buf) throw new ApiError('not-found', 'tile outside the slice');
    return buf;
  }

  const batches = createBatchService({ guard, jobs, open, emit: opts.onEvent, workerBoot: opts.batchWorkerBoot, models: opts.batchModels });
  const models = createModelService({
    guard,
    configDir: opts.configDir,
    shipped: opts.modelFolders?.shipped ?? DEFAULT_MEMBRANE_MODEL,
    compressedDir: opts.modelFolders?.compressed ?? COMPRESSED_MODELS,
  });

  const proofreading = projectHandlers({
    guard,
    pyramid,
    openStack: open,
    stackOf: getStack,
    async jobLabels(jobId, stackId, z) {
      const job = jobs.get(jobId);
      if (!job || job.info.stackId !== stackId) throw new ApiError('not-found', `no job ${jobId} of stack ${stackId}`);
      if (!job.info.hasLabels) throw new ApiError('user', `job ${jobId} makes no labels`);
      if (!job.ready.has(z)) return null;
      const { width, height } = getStack(stackId).summary;
      return readResultSlice(resultFile(job.outDir, z, 'labels'), width, height, 'labels');
    },
    jobsOf: (stackId) => jobs.list().filter((j) => j.stackId === stackId),
    jobResults(jobId) {
      const job = jobs.get(jobId);
      if (!job) return null;
      const { outDir, info } = job;
      const { width, height } = getStack(info.stackId).summary;
      const read = async <T extends Float32Array | Uint32Array>(z: number, layer: `round-${number}` | 'labels'): Promise<T> =>
        (await readResultSlice(resultFile(outDir, z, layer), width, height, layer)).data as T;
      return {
        info,
        async read(z) {
          const maps: Float32Array[] = [];
          for (let r = 0; r < info.rounds; r++) maps.push(await read<Float32Array>(z, `round-${r}`));
          return { z, maps, labels: info.hasLabels ? await read<Uint32Array>(z, 'labels') : null };
        },
        lastMap: async (z) => ({ width, height, data: await read<Float32Array>(z, `round-${info.rounds - 1}`) }),
      };
    },
    emit: opts.onEvent,
  });

  const handlers: Handlers = {
    ...proofreading.handlers,
    async appInfo() {
      const sampleReachable = await guard.check(samplePath).then(
        () => true,
        () => false,
      );
      return { transport: opts.transport, nativePicker: opts.pickPath !== undefined, samplePath: sampleReachable ? samplePath : null, version: VERSION };
    },

    openStack: ({ path }) => open(path),

    async sampleStack() {
      try {
        return await open(samplePath);
      } catch (e) {
        if (e instanceof ApiError && (e.code === 'forbidden' || e.code === 'not-found')) {
          throw new ApiError('not-found', `the sample stack is not installed (expected at ${samplePath})`);
        }
        throw e;
      }
    },

    listRecent: () => recent.list(),

    async pickPath({ mode }, ctx) {
      if (!opts.pickPath) throw new ApiError('unsupported', 'no native file dialog in browser mode: use browseFolder');
      const path = await opts.pickPath(mode, ctx.caller);
      if (path === null) return null;
      // The user chose this path in the operating system's dialog: that is what opening a folder means.
      await guard.addRoot(mode === 'folder' ? path : dirname(path));
      return { path };
    },

    async browseFolder({ path }) {
      const real = await guard.check(path ?? home);
      let dirents;
      try {
        dirents = await readdir(real, { withFileTypes: true });
      } catch {
        throw new ApiError('user', `${real}: not a folder that can be listed`);
      }
      const entries: BrowseEntry[] = [];
      for (const d of dirents) {
        if (d.name.startsWith('.')) continue;
        if (d.isDirectory()) entries.push({ name: d.name, kind: 'folder' });
        else if (d.isFile() && STACK_FILE_EXTENSIONS.has(extname(d.name).toLowerCase())) entries.push({ name: d.name, kind: 'file' });
      }
      const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
      entries.sort((a, b) => (a.kind === b.kind ? collator.compare(a.name, b.name) : a.kind === 'folder' ? -1 : 1));
      const parent = dirname(real);
      return { path: real, parent: parent !== real && guard.containsReal(parent) ? parent : null, roots: guard.list(), entries: entries.slice(0, 5000) };
    },

    async readSlice(a) {
      const s = getStack(a.stackId);
      return tile(s, a, `raw:${a.stackId}:${a.z}`, 'mean', () => s.stack.readSlice(a.z));
    },

    async readResult(a) {
      if (a.layer === 'truth') {
        const s = getStack(a.stackId ?? '');
        const truth = s.truth;
        if (!truth) throw new ApiError('not-found', `stack ${a.stackId} has no ground truth`);
        return tile(s, a, `truth:${a.stackId}:${a.z}`, 'pick', async () => truthToLabels(await truth.readSlice(a.z)));
      }
      const job = jobs.get(a.jobId ?? '');
      if (!job) throw new ApiError('not-found', `no job ${a.jobId}`);
      const s = getStack(job.info.stackId);
      const layer = a.layer;
      const round = layer === 'labels' ? -1 : Number(layer.slice('round-'.length));
      if (!job.ready.has(a.z)) throw new ApiError('not-found', `slice ${a.z} of job ${a.jobId} is not ready`);
      if (layer === 'labels' ? !job.info.hasLabels : round >= job.info.rounds) throw new ApiError('not-found', `job ${a.jobId} has no ${layer}`);
      const { width, height } = s.summary;
      return tile(s, a, `job:${a.jobId}:${a.z}:${layer}`, layer === 'labels' ? 'pick' : 'mean', () =>
        readResultSlice(resultFile(job.outDir, a.z, layer), width, height, layer),
      );
    },

    async uploadFile({ uploadId, name, data }) {
      if (uploadedBytes + data.byteLength > MAX_UPLOAD_SESSION_BYTES) {
        throw new ApiError('user', 'too much uploaded in this session: open large stacks with Open… instead of dropping them');
      }
      // Uploads live with the session's results (deleted when it ends); the folder counts as opened by the user.
      const folder = join(opts.resultsDir, 'uploads', uploadId);
      await mkdir(folder, { recursive: true });
      await writeFileAtomic(join(folder, name), new Uint8Array(data));
      uploadedBytes += data.byteLength;
      await guard.addRoot(folder);
      const real = await realpath(folder);
      uploadFolders.add(real);
      return { folder: real, file: join(real, name) };
    },

    async startJob({ stackId, kind, params }) {
      const s = getStack(stackId);
      const bad = params.slices?.find((z) => z >= s.summary.depth);
      if (bad !== undefined) throw new ApiError('bad-request', `slice ${bad} is past the stack's ${s.summary.depth} slices`);
      // Model folders are paths like any other: under folders the user opened, or in the model picker's list.
      const checked: JobParams = { ...params };
      if (params.membraneModel !== undefined) checked.membraneModel = await models.resolve(params.membraneModel);
      if (params.refiner !== undefined) checked.refiner = await guard.check(params.refiner);
      const info = jobs.start(kind, { stackId, name: s.summary.name, path: s.summary.path }, checked);
      return { jobId: info.jobId };
    },

    async cancelJob({ jobId }) {
      return { cancelled: jobs.cancel(jobId) };
    },

    listJobs: async () => jobs.list(),

    startBatch: async (a) => batches.startBatch(a.membraneModel === undefined ? a : { ...a, membraneModel: await models.resolve(a.membraneModel) }),
    stopBatch: (a) => batches.stopBatch(a),
    listBatches: () => batches.listBatches(),
    openBatchResult: (a) => batches.openBatchResult(a),
    listModels: () => models.listModels(),
    openModel: (a) => models.openModel(a),
    chooseModel: (a) => models.chooseModel(a),
  };

  return {
    handlers,
    addRoot: (p) => guard.addRoot(p),
    async close() {
      await proofreading.close();
      await batches.close();
      await jobs.close();
      for (const s of stacks.values()) {
        await s.stack.close().catch(() => undefined);
        await s.truth?.close().catch(() => undefined);
      }
      stacks.clear();
    },
  };
}
