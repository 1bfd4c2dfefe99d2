// Training coordinator: data-parallel training over worker threads (one tfjs replica per core, each on its share of
// every batch, gradients averaged here), validation with the ISBI metrics, checkpoints, resume, progress with ETA.
//
// Layout of the output folder:
//   <out>/checkpoint/         the latest state (weights + Adam state + state.json): a killed run resumes from here
//   <out>/snapshots/step-N/   weights at every validation, kept small (the refiner picks its training maps from them)
//   <out>/history.jsonl       one line per validation
//   <out>/model.json, weights.bin   the best model by validation V_rand, updated as training goes
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import type { Worker } from 'node:worker_threads';
import { initTf } from '../../ml/tfjs/backend';
import { buildModel, seedInitialWeights, sizeMultiple, type ModelConfig } from '../../ml/models';
import { getWeights, setWeights, type AverageState, type BatchSpec, type LossWeighting, type NamedArray } from '../../ml/train/trainer';
import type { AugmentOptions, TrainingSlice } from '../../ml/train/augment';
import { boundaryWeights } from '../../ml/train/boundary-weight';
import { predictTf } from '../../ml/infer/predict-tf';
import { recomputeBatchNormStatistics, trainingInputs } from '../../ml/train/precise-bn';
import type { MembraneMap } from '../../ml/types';
import { loadModel, loadOptimizer, saveModel, weightEntries, type ModelRecord } from './model-store';
import { writeFileAtomic } from './atomic';
import { nextMessage, startWorker } from './workers';
import type { WorkerReply, WorkerRequest } from './train-worker';
import { exchangeBytes, type ExchangeLayout } from '../../ml/train/gradient-exchange';

export interface ValidationSlice {
  index: number;
  width: number;
  height: number;
  channels: number;
  input: Float32Array;
}

export interface TrainOptions {
  role: 'membrane' | 'refiner';
  config: ModelConfig;
  train: TrainingSlice[];
  val: ValidationSlice[];
  out: string;
  steps: number;
  batchSize: number;
  cropPx: number;
  lr: number;
  workers: number;
  seed: number;
  augment: AugmentOptions;
  weighting: LossWeighting;
  /** Weight of the constrained MALIS term added to the weighting's loss (ml/train/malis.ts); 0 or absent: none. */
  malis?: number;
  evalEvery: number;
  /**
   * Decay of a moving average of the weights (Polyak averaging, ml/train/trainer.ts WeightAverage); 0 or absent: none.
   * With it, validation scores both the averaged and the current weights, and the model saved is the average.
   */
  average?: number;
  /**
   * Batches over which each validated model's batch-norm statistics are recomputed for its weights before it is
   * scored and saved (ml/train/precise-bn.ts); 0 or absent: the running averages of training. The checkpoint keeps the
   * running averages, which training resumes with.
   */
  preciseBn?: number;
  /** Scores validation maps; must return at least `vrand`. */
  score: (maps: MembraneMap[]) => Promise<Record<string, number>>;
  /** Weights to start from (fine-tuning); otherwise a fresh initialisation. */
  init?: Float32Array[];
  /** Extra fields for the model record (training data description, rounds…). */
  record?: Partial<ModelRecord>;
  onProgress?: (p: TrainProgress) => void;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  elapsedS: number;
  etaS: number;
  samplesPerS: number;
  lastVal?: Record<string, number>;
}

export interface CheckpointState {
  step: number;
  elapsedS: number;
  best: { step: number; vrand: number } | null;
  seed: number;
}

export interface TrainResult {
  steps: number;
  elapsedS: number;
  best: { step: number; vrand: number } | null;
  backend: string;
}

function learningRate(base: number, step: number, steps: number): number {
  const warmup = Math.min(100, Math.floor(steps / 20));
  if (step < warmup) return (base * (step + 1)) / warmup;
  const t = (step - warmup) / Math.max(1, steps - warmup);
  return base * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * t)));
}

function membraneFraction(slices: TrainingSlice[]): number {
  let m = 0;
  let n = 0;
  for (const s of slices) {
    for (let i = 0; i < s.target.length; i++) m += s.target[i];
    n += s.target.length;
  }
  return n ? m / n : 0.5;
}

async function readState(dir: string): Promise<CheckpointState | null> {
  try {
    return JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as CheckpointState;
  } catch {
    return null;
  }
}

/**
 * A checkpoint is five files (weights, Adam's moments and their shapes, the record, the progress), and a process killed
 * while writing them in place would leave the weights of one step with the optimizer and step count of another. So it
 * is written whole into `<dir>.next` (state.json last, so a folder with one is complete) and swapped in by two renames.
 */
export async function writeCheckpoint(dir: string, record: ModelRecord, weights: Float32Array[], optimizer: NamedArray[], state: CheckpointState): Promise<void> {
  const next = `${dir}.next`;
  const prev = `${dir}.prev`;
  await rm(next, { recursive: true, force: true });
  await saveModel(next, record, weights, optimizer);
  await writeFileAtomic(join(next, 'state.json'), JSON.stringify(state));
  await rm(prev, { recursive: true, force: true });
  await rename(dir, prev).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await rename(next, dir);
  await rm(prev, { recursive: true, force: true });
}

/**
 * The checkpoint to resume from, wherever a kill during writeCheckpoint left it: a complete `<dir>.next` (newer than
 * `<dir>`), else `<dir>`, else `<dir>.prev` (killed between the renames).
 */
export async function readCheckpoint(dir: string): Promise<{ dir: string; state: CheckpointState } | null> {
  for (const d of [`${dir}.next`, dir, `${dir}.prev`]) {
    const state = await readState(d);
    if (state) return { dir: d, state };
  }
  return null;
}

/**
 * The boundary term of each target, computed once per target array: the refiner's training pool repeats the same
 * targets (every stage's maps, every --map-sources set) and train() runs once per stage.
 */
const boundaryTerms = new WeakMap<Uint8Array, Float32Array>();

/** The training slices with the boundary term attached when the weighting asks for it. */
function weightedSlices(slices: TrainingSlice[], weighting: LossWeighting): TrainingSlice[] {
  if (weighting !== 'boundary') return slices;
  return slices.map((s) => {
    if (s.weight) return s;
    let weight = boundaryTerms.get(s.target);
    if (!weight) {
      weight = boundaryWeights(s.target, s.width, s.height);
      boundaryTerms.set(s.target, weight);
    }
    return { ...s, weight };
  });
}

// The weight average rides in the checkpoint's optimizer file, so that it is swapped in with the rest of the checkpoint.
const AVERAGE_PREFIX = 'weight-average/';

function averageEntries(avg: AverageState): NamedArray[] {
  return [
    { name: `${AVERAGE_PREFIX}updates`, shape: [1], data: Float32Array.of(avg.updates) },
    ...avg.values.map((v, k) => ({ name: `${AVERAGE_PREFIX}${k}`, shape: [v.length], data: v })),
  ];
}

export function splitAverage(entries: NamedArray[]): { optimizer: NamedArray[]; average: AverageState | null } {
  const optimizer = entries.filter((e) => !e.name.startsWith(AVERAGE_PREFIX));
  const updates = entries.find((e) => e.name === `${AVERAGE_PREFIX}updates`);
  if (!updates) return { optimizer, average: null };
  const values: Float32Array[] = [];
  for (const e of entries) {
    const k = Number(e.name.slice(AVERAGE_PREFIX.length));
    if (e.name.startsWith(AVERAGE_PREFIX) && Number.isInteger(k)) values[k] = e.data;
  }
  return { optimizer, average: { values, updates: updates.data[0] } };
}

/** The weight average a checkpoint holds, or `current` (its weights) when the run kept none. */
export async function lastAverage(checkpointDir: string, current: Float32Array[]): Promise<Float32Array[]> {
  return splitAverage(await loadOptimizer(checkpointDir)).average?.values ?? current;
}

/** Largest difference between replicas in any weight but the batch-norm statistics (which each replica keeps its own). */
export function replicaDrift(replicas: Float32Array[][], model: tf.LayersModel): number {
  const own = model.weights.map((w) => !w.trainable);
  let drift = 0;
  for (let r = 1; r < replicas.length; r++) {
    replicas[r].forEach((w, k) => {
      if (own[k]) return;
      const w0 = replicas[0][k];
      for (let i = 0; i < w.length; i++) drift = Math.max(drift, Math.abs(w[i] - w0[i]));
    });
  }
  return drift;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const log = opts.log ?? (() => undefined);
  const slices = weightedSlices(opts.train, opts.weighting);
  const backend = await initTf();
  log(backend.note);
  await mkdir(opts.out, { recursive: true });
  const ckptDir = join(opts.out, 'checkpoint');
  const model = buildModel(opts.config);
  let state: CheckpointState = { step: 0, elapsedS: 0, best: null, seed: opts.seed };
  let optimizer: NamedArray[] = [];
  let average: AverageState | null = null;
  const resumed = await readCheckpoint(ckptDir);
  if (resumed) {
    const ck = await loadModel(resumed.dir);
    setWeights(model, ck.weights);
    ({ optimizer, average } = splitAverage(await loadOptimizer(resumed.dir)));
    state = resumed.state;
    log(`resuming from step ${state.step} of ${opts.steps} (${resumed.dir})`);
  } else if (opts.init) {
    setWeights(model, opts.init);
  } else {
    // The same seed, the same starting weights (tfjs' initializers are unseeded): runs can be repeated and compared.
    seedInitialWeights(model, opts.seed);
  }

  const workerCount = Math.max(1, Math.min(opts.workers, opts.batchSize));
  const spec = (i: number): BatchSpec => ({
    batchSize: Math.floor(opts.batchSize / workerCount) + (i < opts.batchSize % workerCount ? 1 : 0),
    cropPx: opts.cropPx,
    augment: opts.augment,
    weighting: opts.weighting,
    malis: opts.malis,
    membraneFraction: membraneFraction(slices),
  });
  const workers: Worker[] = [];
  const stopWorkers = () => Promise.all(workers.map((w) => w.terminate()));
  try {
    for (let i = 0; i < workerCount; i++) workers.push(startWorker(new URL('./train-worker.ts', import.meta.url)));
    const weights0 = getWeights(model);
    const layout: ExchangeLayout = { sizes: model.trainableWeights.map((w) => w.shape.reduce((a: number, b) => a * (b ?? 1), 1)), replicas: workerCount };
    const exchange = { buffer: new SharedArrayBuffer(exchangeBytes(layout)), layout, shares: workers.map((_, i) => spec(i).batchSize / opts.batchSize) };
    await Promise.all(
      workers.map((w, i) => {
        const ready = nextMessage<WorkerReply>(w);
        w.postMessage({
          type: 'init', config: opts.config, weights: weights0, optimizer, slices, spec: spec(i), seed: state.seed, index: i,
          lr: learningRate(opts.lr, state.step, opts.steps),
          average: opts.average ? { decay: opts.average, values: average?.values ?? null, updates: average?.updates ?? 0 } : undefined,
          exchange,
        } satisfies WorkerRequest);
        return ready;
      }),
    );
    log(`training ${opts.role} model on ${workerCount} worker thread(s), batch ${opts.batchSize}×${opts.cropPx}² (${os.cpus().length} cores)`);

    const history = join(opts.out, 'history.jsonl');
    /** The step whose gradients the replicas have computed and not yet applied. */
    let pending: number | undefined;
    let lastVal: Record<string, number> | undefined;
    let sessionStart = performance.now();
    const sessionStep0 = state.step;
    const elapsed0 = state.elapsedS;
    let emaLoss = Number.NaN;

    const gatherState = async (): Promise<{ weights: Float32Array[]; optimizer: NamedArray[]; average?: AverageState }> => {
      if (pending !== undefined) {
        const step = pending;
        await Promise.all(workers.map((w) => {
          const done = nextMessage<WorkerReply>(w);
          w.postMessage({ type: 'apply', step } satisfies WorkerRequest);
          return done;
        }));
        pending = undefined;
      }
      const states = await Promise.all(workers.map((w) => {
        const s = nextMessage<Extract<WorkerReply, { type: 'state' }>>(w);
        w.postMessage({ type: 'state' } satisfies WorkerRequest);
        return s;
      }));
      // Trainable weights are identical in every replica; batch-norm statistics differ (each replica saw its own
      // share of the batches) and are averaged.
      const mean = (pick: (s: (typeof states)[number]) => Float32Array[]) =>
        pick(states[0]).map((w, k) => {
          if (states.length === 1) return w;
          const avg = new Float32Array(w.length);
          for (const s of states) for (let i = 0; i < avg.length; i++) avg[i] += pick(s)[k][i] / states.length;
          return avg;
        });
      // A health check that costs a few ms: the replicas' trainable weights must be bit-identical (gradient-exchange.ts).
      const drift = replicaDrift(states.map((s) => s.weights), model);
      if (drift > 0) log(`warning: the training replicas' weights differ by up to ${drift.toExponential(2)}; the gradient exchange is out of step`);
      const weights = mean((s) => s.weights);
      const avg = states[0].average ? { values: mean((s) => s.average!.values), updates: states[0].average.updates } : undefined;
      return { weights, optimizer: states[0].optimizer, average: avg };
    };

    const scoreWeights = async (weights: Float32Array[]) => {
      setWeights(model, weights);
      const maps: MembraneMap[] = opts.val.map((v) => ({
        width: v.width, height: v.height, data: predictTf(model, v.input, v.width, v.height, v.channels, sizeMultiple(opts.config)),
      }));
      return opts.score(maps);
    };

    // The weights as validated and saved: with --precise-bn, their batch-norm statistics recomputed for them.
    const withStatistics = (weights: Float32Array[], step: number): Float32Array[] => {
      if (!opts.preciseBn) return weights;
      setWeights(model, weights);
      recomputeBatchNormStatistics(model, opts.preciseBn, trainingInputs(slices, spec(0), state.seed * 1000003 + step));
      return getWeights(model);
    };

    const validateAndSave = async (step: number) => {
      const { weights: current, optimizer: opt, average: avg } = await gatherState();
      // With a moving average, the average is the model; the current weights are scored alongside for comparison.
      const live = avg ? await scoreWeights(withStatistics(current, step)) : undefined;
      const weights = withStatistics(avg ? avg.values : current, step);
      const scores = await scoreWeights(weights);
      lastVal = scores;
      const elapsedS = elapsed0 + (performance.now() - sessionStart) / 1000;
      const isBest = !state.best || scores.vrand > state.best.vrand;
      state = { ...state, step, elapsedS, best: isBest ? { step, vrand: scores.vrand } : state.best };
      const record: ModelRecord = {
        format: 'emseg-model', version: 1, role: opts.role, config: opts.config, weights: weightEntries(model),
        ...opts.record,
        training: { ...(opts.record?.training ?? {}), steps: step, stepsPlanned: opts.steps, batchSize: opts.batchSize, cropPx: opts.cropPx, lr: opts.lr,
          weighting: opts.weighting, ...(opts.malis ? { malis: opts.malis } : {}), ...(opts.average ? { weightAverage: opts.average } : {}), ...(opts.preciseBn ? { preciseBnBatches: opts.preciseBn } : {}), augment: opts.augment, workers: workerCount, backend: backend.name, elapsedS: Math.round(elapsedS),
          machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB` },
        validation: { ...scores, step },
      };
      await saveModel(join(opts.out, 'snapshots', `step-${String(step).padStart(6, '0')}`), record, weights);
      if (isBest) await saveModel(opts.out, record, weights);
      await writeCheckpoint(ckptDir, record, current, avg ? [...opt, ...averageEntries(avg)] : opt, state);
      const liveScores = live ? Object.fromEntries(Object.entries(live).map(([k, v]) => [`current_${k}`, v])) : {};
      await writeFile(history, `${JSON.stringify({ step, elapsedS: Math.round(elapsedS), loss: emaLoss, ...scores, ...liveScores })}\n`, { flag: 'a' });
      const liveNote = live ? ` (current weights: vrand ${live.vrand.toFixed(4)})` : '';
      log(`step ${step}: loss ${emaLoss.toFixed(4)} val ${Object.entries(scores).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' ')}${isBest ? ' (best)' : ''}${liveNote}`);
    };

    for (let step = state.step; step < opts.steps; step++) {
      if (opts.signal?.aborted) break;
      const lr = learningRate(opts.lr, step, opts.steps);
      const replies = await Promise.all(workers.map((w) => {
        const r = nextMessage<Extract<WorkerReply, { type: 'grads' }>>(w);
        w.postMessage({ type: 'step', step, lr, apply: pending } satisfies WorkerRequest);
        return r;
      }));
      // Every replica has written its gradients of this step; they average and apply them with the next request.
      pending = step;
      const loss = replies.reduce((a, r, i) => a + r.loss * exchange.shares[i], 0);
      emaLoss = Number.isNaN(emaLoss) ? loss : 0.98 * emaLoss + 0.02 * loss;
      const done = step + 1;
      if (done % opts.evalEvery === 0 || done === opts.steps) await validateAndSave(done);
      const sessionS = (performance.now() - sessionStart) / 1000;
      const rate = (done - sessionStep0) / Math.max(1e-6, sessionS);
      opts.onProgress?.({
        step: done, steps: opts.steps, loss: emaLoss, elapsedS: elapsed0 + sessionS, etaS: (opts.steps - done) / rate,
        samplesPerS: rate * opts.batchSize, lastVal,
      });
    }
    if (opts.signal?.aborted && state.step < opts.steps) {
      log('stopped; the last checkpoint is kept, run the same command again to resume');
    }
    sessionStart = performance.now();
    return { steps: state.step, elapsedS: state.elapsedS, best: state.best, backend: backend.name };
  } finally {
    await stopWorkers();
    tf.disposeVariables();
  }
}
