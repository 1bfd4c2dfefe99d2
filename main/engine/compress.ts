// Compressed models (issue 6): each method turns a model folder into another ordinary model folder (model.json +
// weights.bin + model.onnx, record.compression says how), so `emseg segment --model`, refinement and the app use it
// like any model; and the report measures every such folder the same way: file size, inference speed in EMSeg (ONNX
// Runtime, tiled, as `emseg segment` runs it) and V_rand / V_info on labelled validation slices.
//
//   int8        ml/compress/int8.ts: static QDQ quantisation calibrated on training slices; the ONNX graph *is* the
//               model (weights.bin is empty: there are no float weights to fine-tune from, and `emseg export` must
//               not overwrite model.onnx from them).
//   structured  ml/compress/structured.ts: filter pruning to a smaller dense U-Net, fine-tuned by the regular
//               multi-threaded trainer (engine/train.ts) from the pruned weights.
//   cci         ml/compress/cci.ts: balanced group sparsity, fine-tuned in this thread with the mask recomputed from
//               dense shadow weights after every step. The ONNX graph is dense (ORT has no balanced-sparse kernel);
//               the speed of the structure is measured by `emseg bench --only compress` with EMSeg's own kernels.
import { mkdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import os from 'node:os';
import { buildModel, sizeMultiple, type UNetConfig } from '../../ml/models';
import { initTf } from '../../ml/tfjs/backend';
import { getWeights, setWeights } from '../../ml/train/trainer';
import { modelToOnnxGraph } from '../../ml/onnx/export';
import { encodeModel } from '../../ml/onnx/proto';
import { quantizeInt8, type Int8Options } from '../../ml/compress/int8';
import { pruneUNet } from '../../ml/compress/structured';
import { CciTraining, kernelSparsity, type CciOptions } from '../../ml/compress/cci';
import { fineTune } from '../../ml/compress/finetune';
import { predictTiled } from '../../ml/infer/tiled';
import { predictTf } from '../../ml/infer/predict-tf';
import { normalizeSlice } from '../../ml/train/normalize';
import { DEFAULT_AUGMENT } from '../../ml/train/augment';
import { asGroundTruth, scoreMembraneStack } from '../../ml/metrics';
import type { MembraneMap } from '../../ml/types';
import { loadModel, saveModel, type ModelRecord } from './model-store';
import { writeFileAtomic } from './atomic';
import { exportModelFolder } from './export';
import { loadInferenceModel } from './models';
import { toTrainingSlice, toValidationSlice, type LabelledSlice } from './datasets';
import { train } from './train';

export const COMPRESSION_METHODS = ['int8', 'structured', 'cci'] as const;
export type CompressionMethod = (typeof COMPRESSION_METHODS)[number];

export interface CompressData {
  train: LabelledSlice[];
  val: LabelledSlice[];
  membraneValue: 0 | 255;
}

export interface FineTuneSettings {
  steps: number;
  batchSize: number;
  cropPx: number;
  lr: number;
  workers: number;
  seed: number;
  evalEvery: number;
}

export interface CompressOptions {
  method: CompressionMethod;
  src: string;
  out: string;
  data: CompressData;
  fineTune: FineTuneSettings;
  int8?: Int8Options & { calibrationSlices?: number };
  structured?: { keepFraction: number };
  cci?: CciOptions;
  log?: (line: string) => void;
}

async function loadTf(dir: string) {
  await initTf();
  const loaded = await loadModel(dir);
  if (loaded.weights.length === 0) throw Object.assign(new Error(`${dir} has no float weights (an int8 model?): compress its source model instead`), { userFacing: true });
  const model = buildModel(loaded.record.config);
  setWeights(model, loaded.weights);
  return { record: loaded.record, model };
}

function scorer(val: LabelledSlice[], membraneValue: number) {
  const gts = val.map((s) => asGroundTruth(s.label, membraneValue));
  return async (maps: MembraneMap[]) => scoreMembraneStack(maps, gts);
}

/** The largest centred crop of a normalised slice whose sides are multiples of `m` (calibration input). */
function calibrationCrop(s: LabelledSlice, m: number) {
  const full = normalizeSlice(s.raw);
  const w = Math.floor(s.raw.width / m) * m;
  const h = Math.floor(s.raw.height / m) * m;
  const x0 = (s.raw.width - w) >> 1;
  const y0 = (s.raw.height - h) >> 1;
  const data = new Float32Array(w * h);
  for (let y = 0; y < h; y++) data.set(full.subarray((y0 + y) * s.raw.width + x0, (y0 + y) * s.raw.width + x0 + w), y * w);
  return { data, channels: 1, height: h, width: w };
}

export async function compressModel(opts: CompressOptions): Promise<ModelRecord> {
  const log = opts.log ?? (() => undefined);
  const { record, model } = await loadTf(opts.src);
  if (record.role !== 'membrane' && opts.method !== 'int8') throw Object.assign(new Error(`${opts.method} compression is implemented for membrane U-Nets; ${opts.src} is a ${record.role}`), { userFacing: true });
  const source = { dir: opts.src, config: record.config, validation: record.validation };
  const score = scorer(opts.data.val, opts.data.membraneValue);
  const ft = opts.fineTune;

  if (opts.method === 'int8') {
    const graph = modelToOnnxGraph(model);
    model.dispose();
    const n = opts.int8?.calibrationSlices ?? 8;
    const calib = opts.data.train.slice(0, n).map((s) => calibrationCrop(s, sizeMultiple(record.config)));
    if (calib.length === 0) throw Object.assign(new Error('int8 calibration needs training slices'), { userFacing: true });
    log(`int8: calibrating activation ranges on ${calib.length} training slice(s)`);
    const { graph: q } = await quantizeInt8(graph, calib, { threads: os.availableParallelism(), ...opts.int8 });
    const compression = {
      method: 'int8', source, calibrationSlices: opts.data.train.slice(0, n).map((s) => s.index), calibration: opts.int8?.calibration ?? 'minmax',
      reduceRange: opts.int8?.reduceRange ?? false, weights: 'int8 symmetric per output channel', activations: 'uint8 asymmetric per tensor (QDQ)',
    };
    const bytes = encodeModel(q, { opset: 13, producer: 'emseg', metadata: { role: record.role, config: JSON.stringify(record.config), compression: 'int8' } });
    const out: ModelRecord = { ...record, weights: [], onnx: 'model.onnx', weightsDtype: undefined, validation: undefined, compression };
    // model.onnx first, model.json last (a folder with a model.json is complete); then the scores of the graph itself.
    await mkdir(opts.out, { recursive: true });
    await writeFileAtomic(join(opts.out, 'model.onnx'), bytes);
    await saveModel(opts.out, out, []);
    if (record.role === 'membrane' && opts.data.val.length > 0) {
      out.validation = await scoreOnnxFolder(opts.out, opts.data);
      await saveModel(opts.out, out, []);
    }
    return out;
  }

  if (opts.method === 'structured') {
    const keepFraction = opts.structured?.keepFraction ?? 0.5;
    const pruned = pruneUNet(model, record.config as UNetConfig, keepFraction);
    const init = getWeights(pruned.model).map((w) => new Float32Array(w));
    const params = (ws: Float32Array[]) => ws.reduce((a, w) => a + w.length, 0);
    const compression = { method: 'structured', source, keepFraction, importance: 'L1 norm of the batch-norm-folded filter', paramsBefore: params(getWeights(model)), paramsAfter: params(init), fineTuneSteps: ft.steps };
    model.dispose();
    pruned.model.dispose();
    log(`structured: ${compression.paramsBefore} → ${compression.paramsAfter} parameters; fine-tuning ${ft.steps} steps`);
    if (ft.steps > 0) {
      await train({
        role: 'membrane', config: pruned.config, train: opts.data.train.map((s) => toTrainingSlice(s, opts.data.membraneValue)), val: opts.data.val.map(toValidationSlice),
        out: opts.out, steps: ft.steps, batchSize: ft.batchSize, cropPx: ft.cropPx, lr: ft.lr, workers: ft.workers, seed: ft.seed, augment: { ...DEFAULT_AUGMENT, elasticPx: 3 },
        weighting: 'balanced', evalEvery: ft.evalEvery, score, init, record: { compression, training: { ...record.training, fineTunedFrom: opts.src } }, log,
      });
    } else {
      const m = buildModel(pruned.config);
      setWeights(m, init);
      const maps = opts.data.val.map((s) => ({ width: s.raw.width, height: s.raw.height, data: predictTf(m, normalizeSlice(s.raw), s.raw.width, s.raw.height, 1, sizeMultiple(pruned.config)) }));
      m.dispose();
      await saveModel(opts.out, { ...record, config: pruned.config, weights: weightEntriesOf(pruned.config), compression, validation: await score(maps) }, init);
    }
    await exportModelFolder(opts.out);
    return (await loadModel(opts.out)).record;
  }

  // cci
  const cciOpts = opts.cci ?? { group: 4, keep: 1 };
  const cci = new CciTraining(model, cciOpts);
  cci.apply();
  log(`cci: G = ${cciOpts.group}, N = ${cciOpts.keep}: ${(100 * kernelSparsity(model, cciOpts)).toFixed(1)} % of the 3×3 kernels zero; fine-tuning ${ft.steps} steps in this thread`);
  const slices = opts.data.train.map((s) => toTrainingSlice(s, opts.data.membraneValue));
  const membraneFraction = slices.reduce((a, s) => a + s.target.reduce((x, y) => x + y, 0), 0) / slices.reduce((a, s) => a + s.target.length, 0);
  fineTune(model, {
    slices, steps: ft.steps, lr: ft.lr, seed: ft.seed, afterApply: cci.afterApply,
    spec: { batchSize: ft.batchSize, cropPx: ft.cropPx, augment: { ...DEFAULT_AUGMENT, elasticPx: 3 }, weighting: 'balanced', membraneFraction },
    onStep: (step, loss) => (step % 50 === 0 ? log(`cci: step ${step}/${ft.steps} loss ${loss.toFixed(4)}`) : undefined),
  });
  const maps = opts.data.val.map((s) => ({ width: s.raw.width, height: s.raw.height, data: predictTf(model, normalizeSlice(s.raw), s.raw.width, s.raw.height, 1, sizeMultiple(record.config)) }));
  const compression = { method: 'cci', source, group: cciOpts.group, keep: cciOpts.keep, sparsity3x3: kernelSparsity(model, cciOpts), fineTuneSteps: ft.steps };
  await saveModel(opts.out, { ...record, compression, validation: await score(maps), onnx: undefined }, getWeights(model));
  model.dispose();
  await exportModelFolder(opts.out);
  return (await loadModel(opts.out)).record;
}

function weightEntriesOf(config: UNetConfig): ModelRecord['weights'] {
  const m = buildModel(config);
  const entries = m.weights.map((w) => ({ name: w.originalName, shape: w.shape as number[] }));
  m.dispose();
  return entries;
}

/** V_rand / V_info of a model folder's ONNX graph on the validation slices (as `emseg segment` computes maps). */
async function scoreOnnxFolder(dir: string, data: CompressData): Promise<Record<string, number>> {
  const row = await measureModelFolder(dir, data.val, data.membraneValue, { threads: os.availableParallelism() });
  return { vrand: row.vrand, vinfo: row.vinfo, threshold: row.threshold };
}

export interface ReportRow {
  model: string;
  method: string;
  fileMB: number;
  mpxPerS: number;
  vrand: number;
  vinfo: number;
  threshold: number;
}

async function fileBytes(dir: string, record: ModelRecord): Promise<number> {
  const onnx = await stat(join(dir, record.onnx ?? 'model.onnx')).catch(() => null);
  return onnx ? onnx.size : (await stat(join(dir, 'weights.bin'))).size;
}

/**
 * One row of the compression table: ONNX file size, Mpx/s of tiled ONNX Runtime inference over the validation
 * slices (after one warm-up slice), and V_rand / V_info at the stack's best threshold.
 */
export async function measureModelFolder(dir: string, val: LabelledSlice[], membraneValue: number, opts: { threads?: number } = {}): Promise<ReportRow> {
  const m = await loadInferenceModel(dir, opts);
  try {
    if (m.record.role !== 'membrane') throw Object.assign(new Error(`${dir}: the report scores membrane models (this is a ${m.record.role})`), { userFacing: true });
    const tiling = { tilePx: 1024, marginPx: m.marginPx, multiple: m.multiple };
    const inputs = val.map((s) => normalizeSlice(s.raw));
    await predictTiled(m.session, inputs[0], 1, val[0].raw.height, val[0].raw.width, tiling);
    const t = performance.now();
    const maps: MembraneMap[] = [];
    for (let k = 0; k < val.length; k++) {
      const s = val[k].raw;
      maps.push({ width: s.width, height: s.height, data: await predictTiled(m.session, inputs[k], 1, s.height, s.width, tiling) });
    }
    const sec = (performance.now() - t) / 1000;
    const px = val.reduce((a, s) => a + s.raw.width * s.raw.height, 0);
    const scores = await scorer(val, membraneValue)(maps);
    return {
      model: basename(dir), method: String(m.record.compression?.method ?? 'none'), fileMB: Number(((await fileBytes(dir, m.record)) / 1e6).toFixed(3)),
      mpxPerS: Number((px / sec / 1e6).toFixed(3)), vrand: Number(scores.vrand.toFixed(4)), vinfo: Number(scores.vinfo.toFixed(4)), threshold: scores.threshold,
    };
  } finally {
    await m.session.release();
  }
}

/** The table as Markdown (README) with speed and V_rand relative to the first (uncompressed) row. */
export function reportMarkdown(rows: ReportRow[], note: string): string {
  const base = rows[0];
  const lines = [
    '| model | method | file (MB) | speed (Mpx/s) | × | V_rand | ΔV_rand | V_info |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.model} | ${r.method} | ${r.fileMB.toFixed(2)} | ${r.mpxPerS.toFixed(2)} | ${(r.mpxPerS / base.mpxPerS).toFixed(2)} | ${r.vrand.toFixed(4)} | ${(r.vrand - base.vrand >= 0 ? '+' : '') + (r.vrand - base.vrand).toFixed(4)} | ${r.vinfo.toFixed(4)} |`),
  ];
  return `${lines.join('\n')}\n\n${note}\n`;
}
