// Loading models for inference: the ONNX graph of a model folder (exported on the fly from its tfjs weights when the
// folder has none), an ONNX Runtime session on all cores in the inference worker thread (never on the caller's event
// loop), and the tiling parameters that make it seam-free. A binarized model can also run as a stochastic ensemble:
// K member networks sampled from its real-valued weights (ml/compress/binary.ts), each exported to its own session.
import { readFile, access } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, type ModelRecord } from './model-store';
import { buildModel, sizeMultiple, type ModelConfig } from '../../ml/models';
import { zContextOf } from '../../ml/infer/z-context';
import type { MapModel } from '../../ml/infer/onnx-session';
import { createWorkerOnnxModel } from './onnx-worker';
import { defaultMargin } from '../../ml/infer/receptive-field';
import { exportOnnx } from '../../ml/onnx/export';
import { initTf } from '../../ml/tfjs/backend';
import { setWeights } from '../../ml/train/trainer';
import { withMemberKernels } from '../../ml/compress/binary';
import { Rng, mixSeed } from '../../ml/train/rng';

/** The repository's sample-data folder (shipped models and the sample stack). */
export const SAMPLE_DATA = fileURLToPath(new URL('../../sample-data/', import.meta.url));
export const DEFAULT_MEMBRANE_MODEL = join(SAMPLE_DATA, 'models', 'membrane');
export const DEFAULT_REFINER_MODEL = join(SAMPLE_DATA, 'models', 'refiner');
/** Where `emseg compress` writes its folders by default; `--report` and the app's model list look here. */
export const COMPRESSED_MODELS = join(SAMPLE_DATA, 'models', 'compressed');
export const SAMPLE_STACK = join(SAMPLE_DATA, 'isbi2012-val', 'image');

/**
 * How a model folder is named in a record or model card: a folder under sample-data/ as 'sample-data/…' (the same on
 * every clone), any other as given.
 */
export function modelLabel(dir: string): string {
  const rel = relative(dirname(resolve(SAMPLE_DATA)), resolve(dir));
  return rel.startsWith(`sample-data${sep}`) ? rel.split(sep).join('/') : dir;
}

export interface InferenceModel {
  dir: string;
  record: ModelRecord;
  session: MapModel;
  inChannels: number;
  /** Slices read on each side of the one predicted (a z-context membrane model); 0 for the others. */
  zContext: number;
  multiple: number;
  marginPx: number;
  /** Stochastic ensemble members of a binarized model (--ensemble K): their maps are averaged, their variance kept. */
  members?: MapModel[];
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** ONNX bytes of a model folder: its model.onnx, or an export of its tfjs weights. */
export async function onnxBytes(dir: string): Promise<{ record: ModelRecord; bytes: Uint8Array }> {
  const loaded = await loadModel(dir);
  const onnxPath = join(dir, loaded.record.onnx ?? 'model.onnx');
  if (await exists(onnxPath)) return { record: loaded.record, bytes: new Uint8Array(await readFile(onnxPath)) };
  await initTf();
  const model = buildModel(loaded.record.config);
  setWeights(model, loaded.weights);
  const bytes = exportOnnx(model);
  model.dispose();
  return { record: loaded.record, bytes };
}

let thisCpuVnni: boolean | null | undefined;

/**
 * Whether a CPU has VNNI (x86 integer dot products: avx512_vnni or avx_vnni among the flags of /proc/cpuinfo, or of
 * the text given); null where that cannot be read (not Linux, not x86). This machine's answer is read once.
 */
export function cpuHasVnni(cpuinfo?: string): boolean | null {
  if (cpuinfo === undefined) {
    if (thisCpuVnni !== undefined) return thisCpuVnni;
    thisCpuVnni = null;
    if (process.platform !== 'linux' || process.arch !== 'x64') return thisCpuVnni;
    try {
      thisCpuVnni = cpuHasVnni(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      // unreadable: unknown
    }
    return thisCpuVnni;
  }
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? [];
  return flags.includes('avx512_vnni') || flags.includes('avx_vnni');
}

/**
 * A one-line warning for an int8 model with full 8-bit weights (emseg compress --full-range) on a CPU without VNNI,
 * where ONNX Runtime's u8 × s8 products saturate in 16 bits and the maps lose accuracy; undefined otherwise. `vnni`:
 * the CPU's answer (null: unknown); this machine's (cpuHasVnni) when not given, read only for such a model.
 */
export function int8Warning(dir: string, record: ModelRecord, vnni?: boolean | null): string | undefined {
  if (record.compression?.method !== 'int8' || record.compression.reduceRange !== false) return undefined;
  if ((vnni === undefined ? cpuHasVnni() : vnni) !== false) return undefined;
  return `${dir}: int8 model with 8-bit weights (made with --full-range) on a CPU without VNNI, where ONNX Runtime's int8 products saturate and the map loses accuracy; re-make it with emseg compress --method int8 (7-bit weights)`;
}

export async function loadInferenceModel(dir: string, opts: { threads?: number; ensemble?: number } = {}): Promise<InferenceModel> {
  const { record, bytes } = await onnxBytes(dir);
  const k = opts.ensemble ?? 1;
  if (k > 1 && !(record.config.kind === 'unet' && record.config.binary)) throw Object.assign(new Error(`${dir}: an ensemble (--ensemble ${k}) needs a binarized model (emseg compress --method binary)`), { userFacing: true });
  const session = await createWorkerOnnxModel(bytes, opts);
  const cfg: ModelConfig = record.config;
  const multiple = sizeMultiple(cfg);
  const members = k > 1 ? (await createMemberModels(dir, k, opts)).sessions : undefined;
  return { dir, record, session, inChannels: cfg.inChannels, zContext: zContextOf(cfg), multiple, marginPx: defaultMargin(cfg, multiple), members };
}

/**
 * ONNX sessions of K ensemble members (from member `first`, default 0) of a binarized model folder: member k has ±1 kernels drawn with
 * P(+1) = clip((w + 1) / 2, 0, 1) from mixSeed(record.compression.memberSeed, k), exported as an ordinary float graph.
 */
export async function createMemberModels(dir: string, k: number, opts: { threads?: number; first?: number } = {}): Promise<{ sessions: MapModel[]; multiple: number; marginPx: number }> {
  const loaded = await loadModel(dir);
  const cfg = loaded.record.config;
  if (!(cfg.kind === 'unet' && cfg.binary)) throw Object.assign(new Error(`${dir}: not a binarized model (no ensemble members)`), { userFacing: true });
  const seed = Number(loaded.record.compression?.memberSeed ?? 1);
  await initTf();
  const model = buildModel(cfg);
  const sessions: MapModel[] = [];
  try {
    setWeights(model, loaded.weights);
    const first = opts.first ?? 0;
    for (let m = first; m < first + k; m++) {
      const bytes = withMemberKernels(model, new Rng(mixSeed(seed, m)), () => exportOnnx(model));
      sessions.push(await createWorkerOnnxModel(bytes, opts));
    }
  } catch (e) {
    for (const s of sessions) await s.release();
    throw e;
  } finally {
    model.dispose();
  }
  const multiple = sizeMultiple(cfg);
  return { sessions, multiple, marginPx: defaultMargin(cfg, multiple) };
}
