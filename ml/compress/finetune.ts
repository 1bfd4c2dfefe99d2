// Fine-tuning under a weight constraint, in this thread: one training replica (ml/train/trainer.ts) whose
// afterApply hook enforces the constraint after every update (CCI masks from shadow weights, Lp-sphere projection…).
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
  onStep?: (step: number, loss: number) => void;
  signal?: AbortSignal;
}

export function fineTune(model: tf.LayersModel, opts: FineTuneOptions): { steps: number; loss: number } {
  const replica = new Replica(model, opts.lr);
  replica.afterApply = opts.afterApply;
  let ema = Number.NaN;
  let step = 0;
  for (; step < opts.steps && !opts.signal?.aborted; step++) {
    replica.setLearningRate(opts.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos((Math.PI * step) / opts.steps))));
    const batch = makeBatch(opts.slices, opts.spec, mixSeed(opts.seed, step));
    const { loss, grads } = replica.gradients(batch);
    replica.applyGradients(grads);
    tf.dispose([batch.x, batch.y, batch.w]);
    ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
    opts.onStep?.(step + 1, ema);
  }
  replica.optimizer.dispose();
  return { steps: step, loss: ema };
}
