// One replica of a model being trained: builds batches, computes the weighted BCE loss and its gradients, applies
// (averaged) gradients with Adam, and hands weights in and out as flat Float32Arrays. Training with several replicas
// (one per core, each on part of the batch) averages their gradients and applies the same update in every replica,
// which keeps their trainable weights bit-identical.
import * as tf from '@tensorflow/tfjs';
import { sampleCrop, type AugmentOptions, type TrainingSlice } from './augment';
import { Rng } from './rng';
import { addMalisTerm } from './malis';
import { FusedAdam } from '../tfjs/wasm-adam';

/**
 * 'plain': every pixel weighs 1. 'balanced': both classes the same total weight. 'boundary': balanced plus the U-Net
 * separation term on membranes between close cells (boundary-weight.ts; the slices carry it as `weight`).
 */
export type LossWeighting = 'plain' | 'balanced' | 'boundary';

export const LOSS_WEIGHTINGS: readonly LossWeighting[] = ['plain', 'balanced', 'boundary'];

export interface BatchSpec {
  batchSize: number;
  cropPx: number;
  augment: AugmentOptions;
  weighting: LossWeighting;
  /** Fraction of membrane pixels in the training set, for class balancing. */
  membraneFraction: number;
  /**
   * Weight of the constrained MALIS term (malis.ts) added to the weighting's per-pixel loss: each of its two passes
   * weighs this much relative to the per-pixel term. 0 or absent: none.
   */
  malis?: number;
}

export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor4D;
  w: tf.Tensor4D;
  /** With a MALIS term: the targets and weights on the host, completed from each step's prediction (batchLoss). */
  malis?: { y: Float32Array; w: Float32Array; crops: number; cropPx: number; lambda: number };
}

export function makeBatch(slices: TrainingSlice[], spec: BatchSpec, seed: number): Batch {
  const rng = new Rng(seed);
  const { batchSize: n, cropPx: s } = spec;
  const ch = slices[0].channels;
  const xs = new Float32Array(n * s * s * ch);
  const ys = new Float32Array(n * s * s);
  // The boundary term, for 'boundary' only (the other weightings add nothing per pixel).
  const extra = spec.weighting === 'boundary' ? new Float32Array(n * s * s) : null;
  for (let i = 0; i < n; i++) {
    const crop = sampleCrop(slices[rng.int(slices.length)], s, rng, spec.augment);
    xs.set(crop.raw, i * s * s * ch);
    ys.set(crop.target, i * s * s);
    if (extra && crop.weight) extra.set(crop.weight, i * s * s);
  }
  // Balanced weighting gives both classes the same total weight, normalised so the mean weight is 1.
  const pm = Math.min(0.99, Math.max(0.01, spec.membraneFraction));
  const balanced = spec.weighting !== 'plain';
  const wm = balanced ? 0.5 / pm : 1;
  const wi = balanced ? 0.5 / (1 - pm) : 1;
  const ws = new Float32Array(ys.length);
  for (let i = 0; i < ys.length; i++) ws[i] = (ys[i] > 0.5 ? wm : wi) + (extra ? extra[i] : 0);
  return {
    x: tf.tensor4d(xs, [n, s, s, ch]),
    y: tf.tensor4d(ys, [n, s, s, 1]),
    w: tf.tensor4d(ws, [n, s, s, 1]),
    malis: spec.malis ? { y: ys, w: ws, crops: n, cropPx: s, lambda: spec.malis } : undefined,
  };
}

/**
 * The loss of a batch given the model's logits. With MALIS the decisive pixels come from this very prediction (the
 * training-mode forward pass of this step), read back once; the weights are constants to the gradient.
 */
export function batchLoss(logits: tf.Tensor, batch: Batch): tf.Scalar {
  if (!batch.malis) return weightedBce(logits, batch.y, batch.w);
  const { crops, cropPx, lambda } = batch.malis;
  const prob = tf.tidy(() => tf.sigmoid(logits)).dataSync() as Float32Array;
  const y = batch.malis.y.slice();
  const w = batch.malis.w.slice();
  addMalisTerm(prob, y, w, crops, cropPx, lambda);
  const shape: [number, number, number, number] = [crops, cropPx, cropPx, 1];
  return tf.tidy(() => weightedBce(logits, tf.tensor4d(y, shape), tf.tensor4d(w, shape)));
}

/** Weighted binary cross-entropy on logits, in its numerically stable form. */
export function weightedBce(logits: tf.Tensor, y: tf.Tensor, w: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const perPixel = tf.relu(logits).sub(logits.mul(y)).add(tf.log1p(tf.exp(tf.abs(logits).neg())));
    return perPixel.mul(w).mean() as tf.Scalar;
  });
}

/**
 * An exponential moving average of all of a model's weights (trainable ones and batch-norm statistics), updated after
 * every step (Polyak averaging). Until the window 1 / (1 − decay) is full it is the plain mean of the weights after
 * every update so far (decay (t − 1) / t at update t), so it forgets the starting weights at once and averages over
 * the whole window from then on.
 */
/** A weight average as checkpoints and worker messages carry it: the averaged arrays and the updates they took. */
export interface AverageState {
  values: Float32Array[];
  updates: number;
}

export class WeightAverage {
  constructor(
    readonly decay: number,
    public values: Float32Array[],
    public updates = 0,
  ) {}

  update(current: Float32Array[]): void {
    this.updates++;
    const d = Math.min(this.decay, (this.updates - 1) / this.updates);
    for (let k = 0; k < this.values.length; k++) {
      const v = this.values[k];
      const w = current[k];
      for (let i = 0; i < v.length; i++) v[i] = d * v[i] + (1 - d) * w[i];
    }
  }
}

export class Replica {
  readonly model: tf.LayersModel;
  /** Set to keep a moving average of the weights (see WeightAverage). */
  average?: WeightAverage;
  readonly optimizer: tf.AdamOptimizer;
  private readonly vars: tf.Variable[];
  /**
   * Called after every weight update: weight constraints of compressed training (ml/compress: sparsity masks
   * recomputed from dense shadow weights, Lp-sphere projection) rewrite the weights here.
   */
  afterApply?: (model: tf.LayersModel) => void;

  constructor(model: tf.LayersModel, learningRate: number) {
    this.model = model;
    this.optimizer = new FusedAdam(learningRate, 0.9, 0.999, 1e-7);
    this.vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  setLearningRate(lr: number): void {
    // tfjs' Adam reads its learningRate field at every step.
    (this.optimizer as unknown as { learningRate: number }).learningRate = lr;
  }

  /** Loss and per-variable gradients (flat, in trainable-weight order) for one (partial) batch. */
  gradients(batch: Batch): { loss: number; grads: Float32Array[] } {
    const { value, grads } = tf.variableGrads(() => {
      const logits = this.model.apply(batch.x, { training: true }) as tf.Tensor;
      return batchLoss(logits, batch);
    }, this.vars);
    const loss = value.dataSync()[0];
    const out = this.vars.map((v) => grads[v.name].dataSync() as Float32Array);
    tf.dispose([value, ...Object.values(grads)]);
    return { loss, grads: out };
  }

  applyGradients(grads: Float32Array[]): void {
    this.applyTensors(this.vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(grads[i], v.shape) })));
  }

  /**
   * Apply the weighted sum of several replicas' gradients (parts[r][k]: replica r's gradient of variable k, weighted by
   * shares[r]), summed by the backend's kernels, not in a JavaScript loop (3–6× faster for the U-Net's 1.9 M weights).
   */
  applyWeightedSum(parts: ArrayLike<number>[][], shares: number[]): void {
    this.applyTensors(this.vars.map((v, k) => ({
      name: v.name,
      tensor: tf.tidy(() => {
        let sum = tf.tensor(parts[0][k] as Float32Array, v.shape).mul(shares[0]);
        for (let r = 1; r < parts.length; r++) sum = sum.add(tf.tensor(parts[r][k] as Float32Array, v.shape).mul(shares[r]));
        return sum;
      }),
    })));
  }

  private applyTensors(named: { name: string; tensor: tf.Tensor }[]): void {
    this.optimizer.applyGradients(named);
    tf.dispose(named.map((n) => n.tensor));
    this.afterApply?.(this.model);
    this.average?.update(getWeights(this.model));
  }
}

/** All weights (trainable and batch-norm statistics) in model order, as flat arrays. */
export function getWeights(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((t) => t.dataSync() as Float32Array);
}

export function setWeights(model: tf.LayersModel, weights: Float32Array[]): void {
  const current = model.getWeights();
  if (current.length !== weights.length) throw new Error(`expected ${current.length} weight arrays, got ${weights.length}`);
  const ts = current.map((t, i) => tf.tensor(weights[i], t.shape));
  model.setWeights(ts);
  tf.dispose(ts);
}

export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Adam's moments and step count, by variable name, for checkpoints that resume exactly. */
export async function getOptimizerState(opt: tf.Optimizer): Promise<NamedArray[]> {
  const ws = await opt.getWeights();
  return ws.map((w) => ({ name: w.name, shape: w.tensor.shape, data: w.tensor.dataSync() as Float32Array }));
}

export async function setOptimizerState(opt: tf.Optimizer, state: NamedArray[]): Promise<void> {
  if (state.length === 0) return;
  await opt.setWeights(state.map((w) => ({ name: w.name, tensor: tf.tensor(w.data, w.shape) })));
}
