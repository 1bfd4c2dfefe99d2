// Compressed models (issue 6): each method turns a model folder into another ordinary model folder (model.json +
// weights.bin + model.onnx, record.compression says how), so `emseg segment --model`, refinement and the app use it
// like any model; and the report measures every such folder the same way: file size, inference speed in EMSeg (ONNX
// Runtime, tiled, as `emseg segment` runs it) and V_rand / V_info on labelled validation slices.
//
//   int8        ml/compress/int8.ts: static QDQ quantisation calibrated on training slices; the ONNX graph *is* the
//               model (weights.bin is empty: there are no float weights to fine-tune from, and `emseg export` must
//               not overwrite model.onnx from them).
//   structured  ml/compress/structured.ts: filter pruning to a smaller dense U-Net, the filters chosen and the
//               remaining convolutions refitted on training crops, then fine-tuned by the regular multi-threaded
//               trainer (engine/train.ts) from the pruned weights.
//   cci         ml/compress/cci.ts: balanced group sparsity, fine-tuned in this thread with the mask recomputed from
//               dense shadow weights after every step. The ONNX graph is dense (ORT has no balanced-sparse kernel);
//               the speed of the structure is measured by `emseg bench --only compress` with EMSeg's own kernels.
//   relief      ml/compress/relief.ts: activity-based connection pruning (neural network relief), α per filter,
//               iterated prune → fine-tune rounds; by default also writes the global magnitude baseline at the same
//               sparsity after every round (<out>-magnitude), fine-tuned the same way.
//   magnitude   the baseline alone: global magnitude pruning to --sparsity, reached over the same rounds.
//   lpsphere    ml/compress/lpsphere.ts: filters on the unit Lp sphere, LpSGD with semi-pruning and regrowth.
//   binary      ml/models/binary-layers.ts: the binarized U-Net, initialised from the float model, trained with the
//               straight-through estimator (optionally distilled from the float model's maps); its batch norms are
//               re-estimated afterwards. record.compression.ensemble holds V_rand for K = 1, 2, 4, 8, 16 sampled
//               networks (ONNX, each member's ±1 kernels exported as floats); `emseg segment --ensemble K` averages
//               K members and writes their per-pixel variance as uncertainty.tif.
// The unstructured methods (relief, magnitude, lpsphere) keep exact zeros in weights.bin and model.onnx (batch-norm
// folding multiplies), and record their sparsity. Their ONNX graphs are dense: ORT has no sparse convolution.
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import os from 'node:os';
import { buildModel, sizeMultiple, type UNetConfig } from '../../ml/models';
import { initTf } from '../../ml/tfjs/backend';
import { getWeights, setWeights } from '../../ml/train/trainer';
import { Rng, mixSeed } from '../../ml/train/rng';
import { modelToOnnxGraph } from '../../ml/onnx/export';
import { encodeModel } from '../../ml/onnx/proto';
import { DEFAULT_REDUCE_RANGE, quantizeInt8, type Int8Options } from '../../ml/compress/int8';
import { pruneUNet } from '../../ml/compress/structured';
import { CciTraining, kernelSparsity, type CciOptions } from '../../ml/compress/cci';
import { fineTune, recalibrateBatchNorm } from '../../ml/compress/finetune';
import { PruneMasks, magnitudeRound, prunableConvs, reliefRound } from '../../ml/compress/relief';
import { LpSphereTraining, type LpSphereOptions } from '../../ml/compress/lpsphere';
import { BinaryKernelUpdates, binaryConvLayers, ensembleMeanVariance, initBinaryFromFloat } from '../../ml/compress/binary';
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_TILE_PX, predictTiled } from '../../ml/infer/tiled';
import { predictTf } from '../../ml/infer/predict-tf';
import { normalizeSlice } from '../../ml/train/normalize';
import { DEFAULT_AUGMENT } from '../../ml/train/augment';
import { asGroundTruth, scoreMembraneStack } from '../../ml/metrics';
import type { MembraneMap } from '../../ml/types';
import { inferenceFileBytes, loadModel, saveModel, type ModelRecord } from './model-store';
import { writeFileAtomic } from './atomic';
import { exportModelFolder } from './export';
import { writeModelCard } from './model-card';
import { createMemberModels, loadInferenceModel, modelLabel } from './models';
import { toTrainingSlice, toValidationSlice, type LabelledSlice } from './datasets';
import { train, type TrainOptions } from './train';

export const COMPRESSION_METHODS = ['int8', 'structured', 'cci', 'relief', 'magnitude', 'lpsphere', 'binary'] as const;
export type CompressionMethod = (typeof COMPRESSION_METHODS)[number];

export interface CompressData {
  train: LabelledSlice[];
  val: LabelledSlice[];
  membraneValue: 0 | 255;
}

export type FineTuneSettings = Pick<TrainOptions, 'steps' | 'batchSize' | 'cropPx' | 'lr' | 'workers' | 'seed' | 'evalEvery'>;

export interface CompressOptions {
  method: CompressionMethod;
  src: string;
  out: string;
  data: CompressData;
  fineTune: FineTuneSettings;
  int8?: Int8Options & { calibrationSlices?: number };
  structured?: { keepFraction: number };
  cci?: CciOptions;
  relief?: ReliefSettings;
  magnitude?: { sparsity: number; rounds: number };
  lpsphere?: LpSphereOptions;
  binary?: BinarySettings;
  log?: (line: string) => void;
}

export interface ReliefSettings {
  /** Share of each filter's relief score kept (the paper's α ≈ 0.9 for convolutions). */
  alpha: number;
  /** Prune → fine-tune rounds; the fine-tuning steps are split evenly over them. */
  rounds: number;
  /** Training crops the scores are averaged over. */
  pruningCrops: number;
  /** Also write the global magnitude baseline at equal sparsity to <out>-magnitude. */
  baseline: boolean;
}

export interface BinarySettings {
  /** Weight of the float model's maps in the targets (0 = labels only). */
  distill: number;
  /** Sample the binary weights in training, as ensemble inference does. */
  stochasticTraining: boolean;
  /** Ensemble sizes scored into record.compression.ensemble. */
  ensembleSizes: number[];
  /** Seed of the ensemble members (member k draws from mixSeed(seed, k)). */
  memberSeed: number;
  /** Learning-rate multiplier of the real-valued binary kernels (see BinaryKernelUpdates). */
  kernelLrScale: number;
}

export const DEFAULT_RELIEF: ReliefSettings = { alpha: 0.9, rounds: 3, pruningCrops: 8, baseline: true };
// h = 0.5: below half the filter's mean |w| (about a third of Gaussian weights at the start); η = 0.01 with per-layer
// step sizes: every layer's dual values move by 1 % (RMS) per step at the peak of the schedule, about what Adam's
// 5e-4 does to the U-Net's weights.
export const DEFAULT_LPSPHERE: LpSphereOptions = { p: 1.5, h: 0.5, eta: 0.01, layerwise: true };
// kernelLrScale 10: binary latent weights at 5e-3 with the default 5e-4 (see BinaryKernelUpdates).
export const DEFAULT_BINARY: BinarySettings = { distill: 0.5, stochasticTraining: true, ensembleSizes: [1, 2, 4, 8, 16], memberSeed: 1, kernelLrScale: 10 };

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
  if (record.config.kind === 'unet' && record.config.binary) throw Object.assign(new Error(`${opts.src} is already a binarized model: compress its float source instead`), { userFacing: true });
  if (record.config.kind === 'unet' && record.config.zContext) throw Object.assign(new Error(`${opts.src} reads ${record.config.zContext} neighbouring slice(s) on each side (z-context): compression is implemented for single-slice models`), { userFacing: true });
  const source = { dir: modelLabel(opts.src), config: record.config, validation: record.validation };
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
      reduceRange: opts.int8?.reduceRange ?? DEFAULT_REDUCE_RANGE, weights: 'int8 symmetric per output channel', activations: 'uint8 asymmetric per tensor (QDQ)',
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
    // The folder has no float weights to export from, so its card is written here.
    await writeModelCard(opts.out);
    return out;
  }

  if (opts.method === 'structured') {
    const keepFraction = opts.structured?.keepFraction ?? 0.5;
    // 8 crops of 256 px: 2048 pixels at the bottom level, for up to 256 channels; 16 scored no better.
    const crops = trainingCrops(opts.data, 8, 256, sizeMultiple(record.config), mixSeed(ft.seed, 79));
    if (crops.length === 0) throw Object.assign(new Error('structured pruning needs training slices (its filters are chosen and compensated on their activations)'), { userFacing: true });
    log(`structured: choosing and refitting filters on ${crops.length} training crop(s)`);
    const pruned = pruneUNet(model, record.config as UNetConfig, keepFraction, { crops });
    tf.dispose(crops);
    const init = getWeights(pruned.model).map((w) => new Float32Array(w));
    const params = (ws: Float32Array[]) => ws.reduce((a, w) => a + w.length, 0);
    const compression = {
      method: 'structured', source, keepFraction, paramsBefore: params(getWeights(model)), paramsAfter: params(init), fineTuneSteps: ft.steps, crops: crops.length,
      importance: 'greedy channel elimination by reconstruction cost (Optimal Brain Surgeon on activation covariances)', compensation: 'layer-wise least-squares refit of every convolution to the source',
    };
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

  if (opts.method === 'relief' || opts.method === 'magnitude') return pruneUnstructured(opts, model, record, source);
  if (opts.method === 'lpsphere') return lpSphere(opts, model, record, source);
  if (opts.method === 'binary') return binarize(opts, model, record, source);

  // cci
  const cciOpts = opts.cci ?? { group: 4, keep: 1 };
  const cci = new CciTraining(model, cciOpts);
  cci.apply();
  log(`cci: G = ${cciOpts.group}, N = ${cciOpts.keep}: ${(100 * kernelSparsity(model, cciOpts)).toFixed(1)} % of the 3×3 kernels zero; fine-tuning ${ft.steps} steps in this thread`);
  fineTuneHere(model, opts, ft.steps, 0, { afterApply: cci.afterApply });
  const compression = { method: 'cci', source, group: cciOpts.group, keep: cciOpts.keep, sparsity3x3: kernelSparsity(model, cciOpts), fineTuneSteps: ft.steps };
  return saveTfFolder(opts.out, model, record, compression, opts.data);
}

type Source = { dir: string; config: ModelRecord['config']; validation: ModelRecord['validation'] };

/** Fine-tune in this thread with the run's settings (steps from `stepOffset` on the seed stream) and the hooks. */
function fineTuneHere(model: tf.LayersModel, opts: CompressOptions, steps: number, stepOffset: number, hooks: Pick<Parameters<typeof fineTune>[1], 'afterApply' | 'beforeApply' | 'distill'>): void {
  const ft = opts.fineTune;
  if (steps === 0) return;
  const slices = opts.data.train.map((s) => toTrainingSlice(s, opts.data.membraneValue));
  if (slices.length === 0) throw Object.assign(new Error(`${opts.method}: fine-tuning needs training slices`), { userFacing: true });
  const membraneFraction = slices.reduce((a, s) => a + s.target.reduce((x, y) => x + y, 0), 0) / slices.reduce((a, s) => a + s.target.length, 0);
  const log = opts.log ?? (() => undefined);
  fineTune(model, {
    slices, steps, lr: ft.lr, seed: ft.seed + stepOffset, ...hooks,
    spec: { batchSize: ft.batchSize, cropPx: ft.cropPx, augment: { ...DEFAULT_AUGMENT, elasticPx: 3 }, weighting: 'balanced', membraneFraction },
    onStep: (step, loss) => (step % 50 === 0 || step === steps ? log(`${opts.method}: step ${step}/${steps} loss ${loss.toFixed(4)}`) : undefined),
  });
}

/** Validation maps of a tfjs model (whole slices, as training validates). */
function tfMaps(model: tf.LayersModel, config: ModelRecord['config'], val: LabelledSlice[]): MembraneMap[] {
  return val.map((s) => ({ width: s.raw.width, height: s.raw.height, data: predictTf(model, normalizeSlice(s.raw), s.raw.width, s.raw.height, 1, sizeMultiple(config)) }));
}

/** Save a fine-tuned tfjs model as a model folder (weights.bin float32, so exact zeros stay exact) and export it. */
async function saveTfFolder(out: string, model: tf.LayersModel, record: ModelRecord, compression: Record<string, unknown>, data: CompressData, config = record.config): Promise<ModelRecord> {
  const validation = data.val.length > 0 ? await scorer(data.val, data.membraneValue)(tfMaps(model, config, data.val)) : undefined;
  await saveModel(out, { ...record, config, weights: weightEntriesOf(config), compression, validation, onnx: undefined, weightsDtype: 'float32' }, getWeights(model));
  await exportModelFolder(out);
  return (await loadModel(out)).record;
}

/**
 * Normalised training crops (NHWC, one each) at seeded positions: the relief pruning set, the BN calibration set, the
 * structured pruning statistics.
 */
function trainingCrops(data: CompressData, n: number, cropPx: number, multiple: number, seed: number): tf.Tensor4D[] {
  const rng = new Rng(seed);
  const out: tf.Tensor4D[] = [];
  for (let k = 0; k < n && data.train.length > 0; k++) {
    const s = data.train[k % data.train.length];
    const side = Math.floor(Math.min(cropPx, s.raw.width, s.raw.height) / multiple) * multiple;
    if (side < multiple) throw Object.assign(new Error(`training slice ${s.index} is smaller than the model's size multiple ${multiple}`), { userFacing: true });
    const x0 = rng.int(s.raw.width - side + 1);
    const y0 = rng.int(s.raw.height - side + 1);
    const full = normalizeSlice(s.raw);
    const crop = new Float32Array(side * side);
    for (let y = 0; y < side; y++) crop.set(full.subarray((y0 + y) * s.raw.width + x0, (y0 + y) * s.raw.width + x0 + side), y * side);
    out.push(tf.tensor4d(crop, [1, side, side, 1]));
  }
  return out;
}

/** Zeros over every Conv2D kernel of the model (the first and last layers included). */
function overallSparsity(model: tf.LayersModel): number {
  let zeros = 0;
  let total = 0;
  for (const l of model.layers) {
    if (l.getClassName() !== 'Conv2D') continue;
    const d = l.getWeights()[0].dataSync();
    for (let i = 0; i < d.length; i++) zeros += d[i] === 0 ? 1 : 0;
    total += d.length;
  }
  return total ? zeros / total : 0;
}

const round4 = (v: number) => Number(v.toFixed(4));

/**
 * relief (with its magnitude baseline at equal sparsity) and magnitude alone: R rounds of prune → fine-tune
 * (steps / R each), masks kept through fine-tuning.
 */
async function pruneUnstructured(opts: CompressOptions, model: tf.LayersModel, record: ModelRecord, source: Source): Promise<ModelRecord> {
  const log = opts.log ?? (() => undefined);
  const ft = opts.fineTune;
  const relief = opts.relief ?? DEFAULT_RELIEF;
  const rounds = opts.method === 'relief' ? relief.rounds : (opts.magnitude?.rounds ?? relief.rounds);
  if (!(rounds >= 1)) throw Object.assign(new Error(`${opts.method}: rounds must be at least 1, got ${rounds}`), { userFacing: true });
  const perRound = Math.floor(ft.steps / rounds);
  const stepsOf = (r: number) => (r === rounds - 1 ? ft.steps - perRound * (rounds - 1) : perRound);

  const magnitudeRun = async (m: tf.LayersModel, targets: number[], out: string, extra: Record<string, unknown>): Promise<ModelRecord> => {
    const masks = new PruneMasks(prunableConvs(m));
    for (let r = 0; r < rounds; r++) {
      magnitudeRound(masks, targets[r]);
      log(`magnitude: round ${r + 1}/${rounds}: ${(100 * masks.sparsity()).toFixed(1)} % of the pruned kernels zero; fine-tuning ${stepsOf(r)} steps`);
      fineTuneHere(m, { ...opts, method: 'magnitude' }, stepsOf(r), r * 100003, { afterApply: masks.afterApply });
    }
    const compression = {
      method: 'magnitude', source, ...extra, rounds, roundSparsity: targets.map(round4), sparsity: round4(masks.sparsity()), sparsityAll: round4(overallSparsity(m)),
      pruned: 'global magnitude of the batch-norm-folded weights over the 3×3 convolutions with ≥ 2 inputs', fineTuneSteps: ft.steps,
    };
    return saveTfFolder(out, m, record, compression, opts.data);
  };

  if (opts.method === 'magnitude') {
    const target = opts.magnitude?.sparsity;
    if (target === undefined || !(target > 0 && target < 1)) throw Object.assign(new Error(`magnitude: --sparsity must be in (0, 1), got ${String(target)}`), { userFacing: true });
    // Gradual schedule: the target reached in equal steps over the rounds.
    const result = await magnitudeRun(model, Array.from({ length: rounds }, (_, r) => (target * (r + 1)) / rounds), opts.out, {});
    model.dispose();
    return result;
  }

  const masks = new PruneMasks(prunableConvs(model));
  const crops = trainingCrops(opts.data, relief.pruningCrops, 128, sizeMultiple(record.config), mixSeed(ft.seed, 77));
  const roundSparsity: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      reliefRound(model, masks, crops, relief.alpha);
      roundSparsity.push(masks.sparsity());
      log(`relief: round ${r + 1}/${rounds}, α = ${relief.alpha}: ${(100 * masks.sparsity()).toFixed(1)} % of the pruned kernels zero; fine-tuning ${stepsOf(r)} steps`);
      fineTuneHere(model, opts, stepsOf(r), r * 100003, { afterApply: masks.afterApply });
    }
  } finally {
    tf.dispose(crops);
  }
  const baselineDir = relief.baseline ? `${opts.out.replace(/[/\\]+$/, '')}-magnitude` : undefined;
  const compression = {
    method: 'relief', source, alpha: relief.alpha, rounds, pruningCrops: relief.pruningCrops, roundSparsity: roundSparsity.map(round4), sparsity: round4(masks.sparsity()),
    sparsityAll: round4(overallSparsity(model)), pruned: 'connections (whole k×k kernel slices) of the 3×3 convolutions with ≥ 2 inputs', fineTuneSteps: ft.steps,
    ...(baselineDir ? { baseline: baselineDir } : {}),
  };
  const result = await saveTfFolder(opts.out, model, record, compression, opts.data);
  model.dispose();
  if (baselineDir) {
    // The baseline starts again from the source model and follows relief's sparsity round by round.
    const fresh = await loadTf(opts.src);
    await magnitudeRun(fresh.model, roundSparsity, baselineDir, { baselineOf: modelLabel(opts.out) });
    fresh.model.dispose();
  }
  return result;
}

async function lpSphere(opts: CompressOptions, model: tf.LayersModel, record: ModelRecord, source: Source): Promise<ModelRecord> {
  const log = opts.log ?? (() => undefined);
  const lpOpts = opts.lpsphere ?? DEFAULT_LPSPHERE;
  const lp = new LpSphereTraining(model, lpOpts);
  lp.project();
  log(`lpsphere: p = ${lpOpts.p}, h = ${lpOpts.h}, η = ${lpOpts.eta}${lpOpts.layerwise ? ' (per layer, relative)' : ''}: ${lp.kernelCount} kernels on the unit sphere; fine-tuning ${opts.fineTune.steps} steps`);
  fineTuneHere(model, opts, opts.fineTune.steps, 0, { beforeApply: lp.beforeApply, afterApply: lp.afterApply });
  log(`lpsphere: sparsity ${(100 * lp.sparsity()).toFixed(1)} %, ${lp.pruned} weights pruned and ${lp.regrown} regrown over the run; max |‖w‖_p − 1| = ${lp.maxNormError().toExponential(1)}`);
  const compression = {
    method: 'lpsphere', source, p: lpOpts.p, h: lpOpts.h, eta: lpOpts.eta, layerwiseEta: lpOpts.layerwise === true, sparsity: round4(lp.sparsity()), sparsityAll: round4(overallSparsity(model)),
    prunedOverRun: lp.pruned, regrownOverRun: lp.regrown, constrained: '3×3 convolutions followed by batch norm, per filter', fineTuneSteps: opts.fineTune.steps,
  };
  const result = await saveTfFolder(opts.out, model, record, compression, opts.data);
  model.dispose();
  return result;
}

async function binarize(opts: CompressOptions, teacher: tf.LayersModel, record: ModelRecord, source: Source): Promise<ModelRecord> {
  const log = opts.log ?? (() => undefined);
  const b = opts.binary ?? DEFAULT_BINARY;
  if (record.config.kind !== 'unet' || record.config.binary) throw Object.assign(new Error(`binary: ${opts.src} must be a float membrane U-Net`), { userFacing: true });
  const config: UNetConfig = { ...record.config, binary: { stochasticTraining: b.stochasticTraining } };
  const model = buildModel(config);
  setWeights(model, getWeights(teacher));
  initBinaryFromFloat(model);
  const ft = opts.fineTune;
  log(`binary: fine-tuning ${ft.steps} steps with the straight-through estimator${b.stochasticTraining ? ' (stochastic binary weights)' : ''}${b.distill > 0 ? `, distilled from the float model (weight ${b.distill})` : ''}`);
  const kernels = new BinaryKernelUpdates(model, b.kernelLrScale);
  fineTuneHere(model, opts, ft.steps, 0, { afterApply: kernels.afterApply, distill: b.distill > 0 ? { teacher, weight: b.distill } : undefined });
  teacher.dispose();
  const crops = trainingCrops(opts.data, 8, 256, sizeMultiple(config), mixSeed(ft.seed, 78));
  recalibrateBatchNorm(model, crops);
  tf.dispose(crops);
  // What the weights take bit-packed (1 bit per binary kernel weight, float32 for the rest), against the float file.
  const binaryWeights = binaryConvLayers(model).reduce((a, l) => a + l.getWeights()[0].size, 0);
  const allWeights = model.getWeights().reduce((a, t) => a + t.size, 0);
  const compression: Record<string, unknown> = {
    method: 'binary', source, kernelLrScale: b.kernelLrScale, binaryWeightFraction: round4(binaryWeights / allWeights), packedWeightsMB: Number(((binaryWeights / 8 + 4 * (allWeights - binaryWeights)) / 1e6).toFixed(3)), distill: b.distill, stochasticTraining: b.stochasticTraining, fineTuneSteps: ft.steps, memberSeed: b.memberSeed,
    binarized: 'weights and activations of every block convolution but the first; the 1×1 output layer and the transposed convolutions in float',
  };
  // The deterministic network (sign(w)) is the folder's model.onnx; the ensemble is scored from the saved folder.
  const result = await saveTfFolder(opts.out, model, { ...record }, compression, opts.data, config);
  model.dispose();
  if (opts.data.val.length > 0 && b.ensembleSizes.length > 0) {
    const ensemble = await measureEnsemble(opts.out, opts.data.val, opts.data.membraneValue, b.ensembleSizes, { threads: os.availableParallelism() });
    log(`binary: ensemble V_rand ${ensemble.map((r) => `K=${r.k}: ${r.vrand.toFixed(4)}`).join(', ')}`);
    const loaded = await loadModel(opts.out);
    const rec = { ...loaded.record, compression: { ...loaded.record.compression, ensemble } };
    await saveModel(opts.out, rec, loaded.weights);
    return rec;
  }
  return result;
}

export interface EnsembleRow {
  k: number;
  vrand: number;
  vinfo: number;
  threshold: number;
  /** Mean over pixels of the per-pixel variance across the K members' maps. */
  meanVariance: number;
  mpxPerS: number;
}

/**
 * V_rand / V_info of a binarized folder's stochastic ensembles of each size in `sizes` (members 0…K−1 of the
 * folder's member seed, nested: K = 2 is K = 1 plus one), tiled ONNX inference as `emseg segment` runs it.
 */
export async function measureEnsemble(dir: string, val: LabelledSlice[], membraneValue: number, sizes: number[], opts: { threads?: number } = {}): Promise<EnsembleRow[]> {
  const maxK = Math.max(...sizes);
  const maps: Float32Array[][] = [];
  const seconds: number[] = [];
  const inputs = val.map((s) => normalizeSlice(s.raw));
  // One member's session at a time: sixteen U-Net sessions at once would hold gigabytes of ORT arenas.
  for (let k = 0; k < maxK; k++) {
    const member = await createMemberModels(dir, 1, { ...opts, first: k });
    const m = member.sessions[0];
    try {
      const tiling = { tilePx: DEFAULT_TILE_PX, marginPx: member.marginPx, multiple: member.multiple };
      await predictTiled(m, inputs[0], 1, val[0].raw.height, val[0].raw.width, tiling);
      const t = performance.now();
      const mine: Float32Array[] = [];
      for (let z = 0; z < val.length; z++) mine.push(await predictTiled(m, inputs[z], 1, val[z].raw.height, val[z].raw.width, tiling));
      seconds.push((performance.now() - t) / 1000);
      maps.push(mine);
    } finally {
      await m.release();
    }
  }
  const score = scorer(val, membraneValue);
  const px = val.reduce((a, s) => a + s.raw.width * s.raw.height, 0);
  const rows: EnsembleRow[] = [];
  for (const k of sizes) {
    const per = val.map((s, z) => ensembleMeanVariance(maps.slice(0, k).map((m) => m[z])));
    const scores = await score(per.map((p, z) => ({ width: val[z].raw.width, height: val[z].raw.height, data: p.mean })));
    const meanVariance = per.reduce((a, p) => a + p.variance.reduce((x, y) => x + y, 0), 0) / px;
    const sec = seconds.slice(0, k).reduce((a, b) => a + b, 0);
    rows.push({ k, vrand: round4(scores.vrand), vinfo: round4(scores.vinfo), threshold: scores.threshold, meanVariance: Number(meanVariance.toExponential(3)), mpxPerS: Number((px / sec / 1e6).toFixed(3)) });
  }
  return rows;
}

function weightEntriesOf(config: ModelRecord['config']): ModelRecord['weights'] {
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
  /** Exact zeros in the pruned kernels (relief, magnitude, lpsphere), from record.compression. */
  sparsity?: number;
}

/**
 * One row of the compression table: ONNX file size, Mpx/s of tiled ONNX Runtime inference over the validation
 * slices (after one warm-up slice), and V_rand / V_info at the stack's best threshold.
 */
export async function measureModelFolder(dir: string, val: LabelledSlice[], membraneValue: number, opts: { threads?: number } = {}): Promise<ReportRow> {
  const m = await loadInferenceModel(dir, opts);
  try {
    if (m.record.role !== 'membrane') throw Object.assign(new Error(`${dir}: the report scores membrane models (this is a ${m.record.role})`), { userFacing: true });
    const tiling = { tilePx: DEFAULT_TILE_PX, marginPx: m.marginPx, multiple: m.multiple };
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
      model: basename(dir), method: String(m.record.compression?.method ?? 'none'), fileMB: Number(((await inferenceFileBytes(dir, m.record)) / 1e6).toFixed(3)),
      mpxPerS: Number((px / sec / 1e6).toFixed(3)), vrand: Number(scores.vrand.toFixed(4)), vinfo: Number(scores.vinfo.toFixed(4)), threshold: scores.threshold,
      ...(typeof m.record.compression?.sparsity === 'number' ? { sparsity: m.record.compression.sparsity } : {}),
    };
  } finally {
    await m.session.release();
  }
}

/** The table as Markdown (README) with speed and V_rand relative to the first (uncompressed) row. */
export function reportMarkdown(rows: ReportRow[], note: string): string {
  const base = rows[0];
  const lines = [
    '| model | method | file (MB) | speed (Mpx/s) | × | V_rand | ΔV_rand | V_info | sparsity |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.model} | ${r.method} | ${r.fileMB.toFixed(2)} | ${r.mpxPerS.toFixed(2)} | ${(r.mpxPerS / base.mpxPerS).toFixed(2)} | ${r.vrand.toFixed(4)} | ${(r.vrand - base.vrand >= 0 ? '+' : '') + (r.vrand - base.vrand).toFixed(4)} | ${r.vinfo.toFixed(4)} | ${r.sparsity === undefined ? '' : `${(100 * r.sparsity).toFixed(1)} %`} |`),
  ];
  return `${lines.join('\n')}\n\n${note}\n`;
}
