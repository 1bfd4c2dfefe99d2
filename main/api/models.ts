// The app's model picker, main side: which membrane models the app can run and what the compression table says of
// each, and which one the user chose. Reads model.json and one file size per folder, never the weights: listing ten
// models costs a few kilobytes.
//
//   listModels  ─> the shipped model, every folder of sample-data/models/compressed, folders the user opened
//               ─> per folder: its figures from record.compression.report (the row `emseg compress --report` keeps
//                  in each compressed folder, with the reference row it was compared with), else the validation
//                  scores written with the model, else none ("not measured yet" in the picker)
//   openModel   ─> AccessGuard (inside a folder the user opened?) ─> a membrane model? ─> kept in <config>/models.json
//   chooseModel ─> kept in models.json, so the next session starts with the same model
//   resolve()   ─> startJob / startBatch: a listed folder is accepted as it is (the shipped and compressed folders lie
//                  outside the folders a user opens); any other path goes through the AccessGuard like every path.
import { mkdir, readFile, readdir, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../engine/atomic';
import { inferenceFileBytes, loadModelRecord, type ModelRecord } from '../engine/model-store';
import { zContextOf } from '../../ml/infer/z-context';
import type { AccessGuard } from './access';
import type { Args, ModelInfo, Result } from './contract';
import { ApiError } from './door';

export interface ModelServiceOptions {
  guard: AccessGuard;
  /** Folder of models.json (the opened folders and the choice). */
  configDir: string;
  /** The shipped membrane model's folder. */
  shipped: string;
  /** The folder whose subfolders are the compressed models. */
  compressedDir: string;
}

interface Saved {
  opened: string[];
  chosen: string | null;
}

// A person opens a handful of models; past this many the oldest are forgotten (the folders stay where they are).
const MAX_OPENED = 50;

/** A report's first row, which × and ΔV_rand compare with (stored by `emseg compress --report` since the picker). */
interface Reference {
  path: string;
  mpxPerS: number | null;
  vrand: number | null;
  vinfo: number | null;
}

const numberOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const fields = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const round4 = (v: number): number => Math.round(v * 1e4) / 1e4;

function referenceOf(record: ModelRecord): Reference | null {
  const ref = fields(fields(fields(record.compression).report).reference);
  return typeof ref.path === 'string' ? { path: ref.path, mpxPerS: numberOrNull(ref.mpxPerS), vrand: numberOrNull(ref.vrand), vinfo: numberOrNull(ref.vinfo) } : null;
}

type Figures = Pick<ModelInfo, 'method' | 'mpxPerS' | 'speedup' | 'vrand' | 'vinfo' | 'deltaVrand' | 'sparsity' | 'measured'>;

/**
 * A model's row of the compression table from its record. ΔV_rand compares with the reference row of the same report
 * when the report kept one, else with the source model's validation V_rand recorded at compression time. An
 * uncompressed model that was some report's reference (`asReference`) gets that row's speed and scores.
 */
export function modelFigures(record: ModelRecord, asReference: Reference | undefined): Figures {
  const c = fields(record.compression);
  const method = typeof c.method === 'string' ? c.method : 'none';
  const report = fields(c.report);
  const sourceVrand = numberOrNull(fields(fields(c.source).validation).vrand);
  const sparsity = numberOrNull(report.sparsity) ?? numberOrNull(c.sparsity);
  const vrand = numberOrNull(report.vrand);
  if (vrand !== null) {
    const ref = referenceOf(record);
    const refVrand = ref?.vrand ?? sourceVrand;
    const mpxPerS = numberOrNull(report.mpxPerS);
    const refSpeed = ref?.mpxPerS ?? null;
    return {
      method, mpxPerS, vrand, vinfo: numberOrNull(report.vinfo), sparsity, measured: 'report',
      speedup: mpxPerS !== null && refSpeed ? round4(mpxPerS / refSpeed) : null,
      deltaVrand: refVrand === null ? null : round4(vrand - refVrand),
    };
  }
  if (method === 'none' && asReference && asReference.vrand !== null) {
    return { method, mpxPerS: asReference.mpxPerS, speedup: 1, vrand: asReference.vrand, vinfo: asReference.vinfo, deltaVrand: null, sparsity, measured: 'report' };
  }
  const validation = fields(record.validation);
  const vrandVal = numberOrNull(validation.vrand);
  if (vrandVal !== null) {
    return {
      method, mpxPerS: null, speedup: null, vrand: vrandVal, vinfo: numberOrNull(validation.vinfo), sparsity, measured: 'validation',
      deltaVrand: method === 'none' || sourceVrand === null ? null : round4(vrandVal - sourceVrand),
    };
  }
  return { method, mpxPerS: null, speedup: null, vrand: null, vinfo: null, deltaVrand: null, sparsity, measured: null };
}

interface Found {
  path: string;
  origin: ModelInfo['origin'];
  record: ModelRecord;
  fileBytes: number;
}

/** A complete membrane model folder (model.json is written last), or null for anything else. */
async function readFolder(dir: string, origin: ModelInfo['origin']): Promise<Found | null> {
  try {
    const path = await realpath(dir);
    const record = await loadModelRecord(path);
    if (record.role !== 'membrane') return null;
    return { path, origin, record, fileBytes: await inferenceFileBytes(path, record) };
  } catch {
    return null;
  }
}

function infoOf(f: Found, references: Map<string, Reference>): ModelInfo {
  return {
    path: f.path, name: basename(f.path), origin: f.origin, fileBytes: f.fileBytes, ...modelFigures(f.record, references.get(f.path)),
    pixelSizeNm: f.record.pixelSizeNm ?? null,
    zContext: zContextOf(f.record.config),
  };
}

export function createModelService(opts: ModelServiceOptions) {
  const file = join(opts.configDir, 'models.json');
  // Read-modify-write of models.json one at a time: two quick clicks must not lose an opened folder.
  let queue: Promise<unknown> = Promise.resolve();

  async function load(): Promise<Saved> {
    try {
      const s = fields(JSON.parse(await readFile(file, 'utf8')) as unknown);
      const opened = Array.isArray(s.opened) ? s.opened.filter((p): p is string => typeof p === 'string') : [];
      return { opened, chosen: typeof s.chosen === 'string' ? s.chosen : null };
    } catch {
      // Missing or damaged: a convenience, never a reason to fail (like the recent list).
      return { opened: [], chosen: null };
    }
  }

  function update(change: (s: Saved) => void): Promise<Saved> {
    const next = queue.then(async () => {
      const s = await load();
      change(s);
      await mkdir(opts.configDir, { recursive: true });
      await writeFileAtomic(file, `${JSON.stringify(s, null, 2)}\n`);
      return s;
    });
    queue = next.catch(() => undefined);
    return next;
  }

  async function scan(saved: Saved): Promise<Found[]> {
    const candidates: [string, ModelInfo['origin']][] = [[opts.shipped, 'shipped']];
    const names = await readdir(opts.compressedDir).catch(() => [] as string[]);
    for (const n of names.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))) if (!n.startsWith('.')) candidates.push([join(opts.compressedDir, n), 'compressed']);
    for (const p of saved.opened) candidates.push([p, 'opened']);
    const found: Found[] = [];
    for (const [dir, origin] of candidates) {
      const f = await readFolder(dir, origin);
      if (f && !found.some((x) => x.path === f.path)) found.push(f);
    }
    return found;
  }

  async function list(): Promise<{ infos: ModelInfo[]; chosen: string | null }> {
    const saved = await load();
    const found = await scan(saved);
    const references = new Map<string, Reference>();
    for (const f of found) {
      const ref = referenceOf(f.record);
      if (ref) references.set(ref.path, ref);
    }
    const infos = found.map((f) => infoOf(f, references));
    return { infos, chosen: saved.chosen !== null && infos.some((m) => m.path === saved.chosen) ? saved.chosen : null };
  }

  return {
    async listModels(): Promise<Result<'listModels'>> {
      const { infos, chosen } = await list();
      return { models: infos, chosen };
    },

    async openModel({ path }: Args<'openModel'>): Promise<Result<'openModel'>> {
      const real = await opts.guard.check(path);
      const record = await loadModelRecord(real);
      if (record.role !== 'membrane') throw new ApiError('user', `${real}: a ${record.role} model; the picker chooses the membrane model`);
      const fileBytes = await inferenceFileBytes(real, record).catch(() => {
        throw new ApiError('user', `${real}: neither model.onnx nor weights.bin`);
      });
      const { infos } = await list();
      const listed = infos.find((m) => m.path === real);
      if (listed) return listed;
      await update((s) => {
        s.opened = [...s.opened.filter((p) => p !== real), real].slice(-MAX_OPENED);
      });
      return infoOf({ path: real, origin: 'opened', record, fileBytes }, new Map());
    },

    async chooseModel({ path }: Args<'chooseModel'>): Promise<Result<'chooseModel'>> {
      const real = await realpath(path).catch(() => path);
      const { infos } = await list();
      if (!infos.some((m) => m.path === real)) throw new ApiError('not-found', `${path}: not in the model list (open the folder first)`);
      await update((s) => {
        s.chosen = real;
      });
      return { chosen: real };
    },

    /** The folder a job or batch may load as its membrane model: a listed one as it is, others through the guard. */
    async resolve(path: string): Promise<string> {
      const real = await realpath(path).catch(() => null);
      if (real !== null && (await list()).infos.some((m) => m.path === real)) return real;
      return opts.guard.check(path);
    },
  };
}
