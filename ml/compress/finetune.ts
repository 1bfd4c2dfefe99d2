// Fine-tuning under a weight constraint, in this thread: one training replica (ml/train/trainer.ts) whose
// afterApply hook enforces the constraint after every update (CCI masks from shadow weights, pruning masks, Lp-sphere
// projection, binary weight clipping); beforeApply sees the raw gradients first (LpSGD updates from them). Optional
// distillation mixes a teacher's membrane probabilities into the targets.
// Unconstrained fine-tuning (structured pruning) uses the multi-threaded trainer in main/engine/train.ts instead; the
// constraints keep per-replica state that the worker protocol does not carry.
import * as tf from '@tensorflow/tfjs';
import { Replica, makeBatch, type BatchSpec } from '../train/trainer';
import type { TrainingSlice } from '../train/augment';
import { mixSeed } from '../train/rng';

export interface FineTuneOptions {
  slices: TrainingSlice[];
  spec: BatchSpec;
  steps: number;
  /** Peak learning rate; cosine decay to 5 % over the run (fine-tuning starts from trained weights: no warm-up). */
  lr: number;
  seed: number;
  afterApply?: (model: tf.LayersModel) => void;
  /** Called with this step's raw gradients (trainable-weight order) and the schedule's lr / peak lr, before Adam. */
  beforeApply?: (grads: Float32Array[], lrScale: number) => void;
  /**
   * Distillation from a (full-precision) teacher: targets y' = (1 − weight) · y + weight · σ(teacher(x)). Binary
   * cross-entropy is linear in its target, so this is exactly (1 − weight) · BCE(labels) + weight · BCE(teacher).
   */
  distill?: { teacher: tf.LayersModel; weight: number };
  onStep?: (step: number, loss: number) => void;
  signal?: AbortSignal;
}

export function fineTune(model: tf.LayersModel, opts: FineTuneOptions): { steps: number; loss: number } {
  const replica = new Replica(model, opts.lr);
  replica.afterApply = opts.afterApply;
  let ema = Number.NaN;
  let step = 0;
  for (; step < opts.steps && !opts.signal?.aborted; step++) {
    const lrScale = 0.05 + 0.95 * 0.5 * (1 + Math.cos((Math.PI * step) / opts.steps));
    replica.setLearningRate(opts.lr * lrScale);
    const batch = makeBatch(opts.slices, opts.spec, mixSeed(opts.seed, step));
    if (opts.distill) {
      const y = distillTargets(opts.distill.teacher, batch.x, batch.y, opts.distill.weight);
      batch.y.dispose();
      batch.y = y;
    }
    const { loss, grads } = replica.gradients(batch);
    opts.beforeApply?.(grads, lrScale);
    replica.applyGradients(grads);
    tf.dispose([batch.x, batch.y, batch.w]);
    ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
    opts.onStep?.(step + 1, ema);
  }
  replica.optimizer.dispose();
  return { steps: step, loss: ema };
}

/** Distillation targets (1 − weight) · y + weight · σ(teacher(x)), the teacher in inference mode. */
export function distillTargets(teacher: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor4D, weight: number): tf.Tensor4D {
  if (!(weight >= 0 && weight <= 1)) throw new RangeError(`distillation weight must be in [0, 1], got ${weight}`);
  return tf.tidy(() => {
    const t = tf.sigmoid(teacher.apply(x, { training: false }) as tf.Tensor);
    return tf.add(tf.mul(y, 1 - weight), tf.mul(t, weight)) as tf.Tensor4D;
  });
}

/**
 * Re-estimate every batch norm's moving mean and variance on `inputs` (NHWC crops), layer by layer in model order so
 * each sees the statistics of the layers before it already fixed. A binarized network starts from a float network's
 * statistics, which do not describe ±1 convolutions; a short fine-tuning run (momentum 0.95) would not forget them.
 */
export function recalibrateBatchNorm(model: tf.LayersModel, inputs: readonly tf.Tensor4D[]): void {
  for (const bn of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
    const probe = tf.model({ inputs: model.inputs, outputs: bn.input as tf.SymbolicTensor });
    let sum: Float64Array | null = null;
    let sq: Float64Array | null = null;
    let n = 0;
    for (const x of inputs) {
      const [s1, s2, count] = tf.tidy(() => {
        const a = probe.predict(x) as tf.Tensor4D;
        return [tf.sum(a, [0, 1, 2]).dataSync(), tf.sum(tf.square(a), [0, 1, 2]).dataSync(), a.shape[0] * a.shape[1] * a.shape[2]] as const;
      });
      sum ??= new Float64Array(s1.length);
      sq ??= new Float64Array(s1.length);
      for (let c = 0; c < s1.length; c++) {
        sum[c] += s1[c];
        sq[c] += s2[c];
      }
      n += count;
    }
    if (!sum || !sq || n === 0) return;
    const mean = Float32Array.from(sum, (v) => v / n);
    const variance = Float32Array.from(sq, (v, c) => Math.max(0, v / n - mean[c] * mean[c]));
    const [gamma, beta] = bn.getWeights().map((t) => tf.clone(t));
    const ts = [gamma, beta, tf.tensor1d(mean), tf.tensor1d(variance)];
    bn.setWeights(ts);
    tf.dispose(ts);
  }
}
