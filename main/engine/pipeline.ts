// The main job, slice by slice: raw slice → membrane model (round 0) → refinement rounds → segmentation. Used by
// `emseg segment`, batch processing and the app's jobs. Slices stream through one at a time, so memory does not grow
// with the stack; inference runs on ONNX Runtime's threads, off the caller's event loop.
import { openStack } from '../io';
import { normalizeSlice } from '../../ml/train/normalize';
import { DEFAULT_TILE_PX, predictTiled } from '../../ml/infer/tiled';
import { refineRounds } from '../../ml/infer/refine';
import { inferenceScale, resample } from '../../ml/infer/resample';
import { contextIndices, planar } from '../../ml/infer/z-context';
import { segment, type SegmentParams } from '../../ml/segmentation';
import type { Labels, MembraneMap } from '../../ml/types';
import { ensembleMeanVariance } from '../../ml/compress/binary';
import { DEFAULT_MEMBRANE_MODEL, DEFAULT_REFINER_MODEL, int8Warning, loadInferenceModel, type InferenceModel } from './models';
import { loadModelRecord, type ModelRecord } from './model-store';
import { tunedParams } from '../../ml/segmentation/tune';

export interface PipelineProgress {
  done: number;
  total: number;
  stage: string;
  slice?: number;
}

export interface PipelineOptions {
  stack: string;
  slices?: number[];
  membraneModel?: string;
  /** Refiner folder; null = no refinement. */
  refiner?: string | null;
  /** Refinement rounds; default: the number stored with the refiner (chosen on validation). */
  rounds?: number;
  segment?: Partial<SegmentParams>;
  /** Skip segmentation (predict/refine jobs). */
  skipSegmentation?: boolean;
  tta?: boolean;
  /** A binarized membrane model run as a stochastic ensemble of this many sampled networks (default 1: the model). */
  ensemble?: number;
  tilePx?: number;
  /** The stack's in-plane pixel size in nm, where its metadata lacks it or is wrong. */
  pixelSizeNm?: number;
  /** Run at the stack's own pixel size even where the membrane model was trained at another one. */
  noRescale?: boolean;
  threads?: number;
  onProgress?: (p: PipelineProgress) => void;
  onNotice?: (msg: string) => void;
  signal?: AbortSignal;
  /** Models already loaded (see loadPipelineModels); released by the caller. */
  models?: PipelineModels;
}

export interface SliceResult {
  index: number;
  /** [0] = membrane model output, [r] = after refinement round r. */
  rounds: MembraneMap[];
  labels: Labels | null;
  /** With an ensemble: the per-pixel variance of the members' membrane maps (round 0), the uncertainty map. */
  uncertainty?: MembraneMap;
}

export class JobCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

export interface PipelineModels {
  membrane: InferenceModel;
  refiner: InferenceModel | null;
  rounds: number;
  /** The watershed thresholds stored with the models for this many rounds (tuned on training slices), if any. */
  tuned: TunedSegmentationChoice | null;
}

export interface TunedSegmentationChoice {
  params: Pick<SegmentParams, 'seedThreshold' | 'agglomerationThreshold'>;
  /** One line for the user: the thresholds, the round and where they are stored. */
  note: string;
}

/**
 * The thresholds for maps after `rounds` rounds: the refiner's table (tuned for the membrane model it was trained
 * with); for round 0 the membrane model's own row first, then the refiner's.
 */
function tunedSegmentation(membrane: InferenceModel, refiner: { dir: string; record: ModelRecord } | null, rounds: number): TunedSegmentationChoice | null {
  const candidates = rounds === 0 ? [membrane, refiner] : [refiner];
  for (const c of candidates) {
    const tuned = c?.record.segmentation;
    const params = tunedParams(tuned, rounds);
    if (c && tuned && params) {
      return { params, note: `watershed seeds at P < ${params.seedThreshold}, agglomeration below ${params.agglomerationThreshold} (chosen for round ${rounds} on the ${tuned.tunedOn}, stored in ${c.dir})` };
    }
  }
  return null;
}

export async function loadPipelineModels(opts: Pick<PipelineOptions, 'membraneModel' | 'refiner' | 'rounds' | 'threads' | 'ensemble'>): Promise<PipelineModels> {
  const membrane = await loadInferenceModel(opts.membraneModel ?? DEFAULT_MEMBRANE_MODEL, { threads: opts.threads, ensemble: opts.ensemble });
  // The refiner's record first: with 0 rounds, asked for or stored, the refiner is never run and only its round-0
  // thresholds are wanted (and a missing refiner is no error then).
  const refinerDir = opts.refiner === null ? null : (opts.refiner ?? DEFAULT_REFINER_MODEL);
  const refinerRecord = refinerDir === null ? null : opts.rounds === 0 ? await loadModelRecord(refinerDir).catch(() => null) : await loadModelRecord(refinerDir);
  const rounds = refinerRecord ? (opts.rounds ?? refinerRecord.rounds ?? 1) : 0;
  const refiner = rounds > 0 ? await loadInferenceModel(refinerDir!, { threads: opts.threads }) : null;
  const tuned = tunedSegmentation(membrane, refinerRecord && { dir: refinerDir!, record: refinerRecord }, rounds);
  return { membrane, refiner, rounds, tuned };
}

export async function releaseModels(m: PipelineModels): Promise<void> {
  await m.membrane.session.release();
  for (const s of m.membrane.members ?? []) await s.release();
  await m.refiner?.session.release();
}

/** Enlargement factors (x, y) that bring the stack to the membrane model's pixel size, with the line that says so. */
export function pixelScale(stackNm: { x: number; y: number } | undefined, modelNm: number | undefined, noRescale?: boolean): { x: number; y: number; note: string | null } {
  const fmt = (v: number) => `${Number(v.toPrecision(3))} nm`;
  if (!modelNm) return { x: 1, y: 1, note: null };
  if (!stackNm) return { x: 1, y: 1, note: `pixel size: the stack does not say its own; run as if it were the model's ${fmt(modelNm)} (--pixel-size <nm> to say it)` };
  const x = inferenceScale(stackNm.x, modelNm);
  const y = inferenceScale(stackNm.y, modelNm);
  const size = stackNm.x === stackNm.y ? fmt(stackNm.x) : `${fmt(stackNm.x)} × ${fmt(stackNm.y)}`;
  if (x === 1 && y === 1) return { x, y, note: null };
  if (noRescale) return { x: 1, y: 1, note: `pixel size: stack ${size}, model ${fmt(modelNm)}; run at the stack's own size as asked (--no-rescale)` };
  const by = x === y ? `${Number(x.toFixed(3))}×` : `${Number(x.toFixed(3))}× in x and ${Number(y.toFixed(3))}× in y`;
  return { x, y, note: `pixel size: stack ${size}, model ${fmt(modelNm)}; slices are resized ${by} for the models and the maps back (--no-rescale runs at the stack's own size)` };
}

/** What to tell the user about a z-context model's neighbours on this stack, if anything. */
export function contextNote(k: number, depth: number, stackZNm: number | undefined, modelZNm: number | undefined): string | null {
  if (k === 0) return null;
  if (depth === 1) return `z-context: the model reads ${k} slice(s) on each side, and this stack has one; it reads the slice itself in their place`;
  if (stackZNm && modelZNm && Math.abs(Math.log(stackZNm / modelZNm)) > Math.log(1.25)) {
    return `z-context: the model was trained on sections ${Number(modelZNm.toPrecision(3))} nm apart and this stack's are ${Number(stackZNm.toPrecision(3))} nm; its neighbours are read as they are, so the maps may be worse than on sections like the model's`;
  }
  return null;
}

export async function* runPipeline(opts: PipelineOptions): AsyncGenerator<SliceResult> {
  const stack = await openStack(opts.stack, { onNotice: opts.onNotice });
  const models = opts.models ?? (await loadPipelineModels(opts));
  try {
    const stackNm = opts.pixelSizeNm ? { x: opts.pixelSizeNm, y: opts.pixelSizeNm } : stack.info.pixelSizeNm;
    const scale = pixelScale(stackNm, models.membrane.record.pixelSizeNm, opts.noRescale);
    if (scale.note) opts.onNotice?.(scale.note);
    const slices = opts.slices ?? Array.from({ length: stack.info.depth }, (_, i) => i);
    // Thresholds given by the caller win over the stored ones.
    const segmentParams: Partial<SegmentParams> = { ...models.tuned?.params, ...opts.segment };
    if (!opts.skipSegmentation && models.tuned) {
      const overridden = opts.segment?.seedThreshold !== undefined || opts.segment?.agglomerationThreshold !== undefined || (opts.segment?.method ?? 'watershed') !== 'watershed';
      opts.onNotice?.(overridden ? `segmentation: your thresholds, not the ones stored with the model (${models.tuned.note})` : `segmentation: ${models.tuned.note}`);
    }
    const perSlice = 1 + models.rounds + (opts.skipSegmentation ? 0 : 1);
    const total = slices.length * perSlice;
    let done = 0;
    const report = (stage: string, slice: number) => opts.onProgress?.({ done, total, stage, slice });
    const tiled = (m: InferenceModel) => ({ tilePx: opts.tilePx ?? DEFAULT_TILE_PX, marginPx: m.marginPx, multiple: m.multiple, tta: opts.tta });
    // Normalised slices at the models' pixel size, by stack index: a z-context model reads the neighbours of each
    // slice too, and slices usually come in order, so the few around the current one are kept.
    const k = models.membrane.zContext;
    const zNote = contextNote(k, stack.info.depth, stackNm?.z ?? stack.info.pixelSizeNm?.z, models.membrane.record.sectionNm);
    if (zNote) opts.onNotice?.(zNote);
    const int8Note = int8Warning(models.membrane.dir, models.membrane.record);
    if (int8Note) opts.onNotice?.(int8Note);
    // Models run at their own pixel size (sh × sw); everything they return is resized back to the slice's h × w.
    const inputs = new Map<number, { norm: Float32Array; w: number; h: number; sh: number; sw: number }>();
    const inputSlice = async (i: number) => {
      let v = inputs.get(i);
      if (!v) {
        const raw = await stack.readSlice(i);
        const { width: w, height: h } = raw;
        const sh = Math.max(1, Math.round(h * scale.y));
        const sw = Math.max(1, Math.round(w * scale.x));
        v = { norm: resample(normalizeSlice(raw), 1, h, w, sh, sw), w, h, sh, sw };
        inputs.set(i, v);
      }
      return v;
    };
    for (const z of slices) {
      if (opts.signal?.aborted) throw new JobCancelled();
      report('predict', z);
      const { norm, w, h, sh, sw } = await inputSlice(z);
      const back = (m: Float32Array) => resample(m, 1, sh, sw, h, w);
      const around = contextIndices(z, k, (i) => i >= 0 && i < stack.info.depth);
      const input = k ? planar(await Promise.all(around.map(async (i) => (await inputSlice(i)).norm))) : norm;
      for (const i of [...inputs.keys()]) if (i <= z - k || i > z + k) inputs.delete(i); // the next slice needs z + 1 − k …
      const c = around.length;
      let map0: Float32Array;
      let uncertainty: MembraneMap | undefined;
      if (models.membrane.members) {
        // Each member is tiled on its own: the mean of tiled maps is the tiled mean (the same crops and blending).
        const maps: Float32Array[] = [];
        for (const m of models.membrane.members) maps.push(await predictTiled(m, input, c, sh, sw, tiled(models.membrane)));
        const { mean, variance } = ensembleMeanVariance(maps);
        map0 = mean;
        uncertainty = { width: w, height: h, data: back(variance) };
      } else {
        map0 = await predictTiled(models.membrane.session, input, c, sh, sw, tiled(models.membrane));
      }
      done++;
      const maps = [back(map0)];
      if (models.refiner && models.rounds > 0) {
        if (opts.signal?.aborted) throw new JobCancelled();
        report('refine', z);
        maps.push(...(await refineRounds(models.refiner.session, models.refiner.inChannels, map0, norm, sh, sw, models.rounds, tiled(models.refiner), back)));
        done += models.rounds;
      }
      let labels: Labels | null = null;
      if (!opts.skipSegmentation) {
        report('segment', z);
        labels = segment({ width: w, height: h, data: maps[maps.length - 1] }, segmentParams);
        done++;
      }
      report('done', z);
      yield { index: z, rounds: maps.map((data) => ({ width: w, height: h, data })), labels, uncertainty };
    }
  } finally {
    if (!opts.models) await releaseModels(models);
    await stack.close();
  }
}
