// Batch-norm statistics recomputed for fixed weights ("precise BN", Wu & Johnson 2021, "Rethinking 'Batch' in
// BatchNorm"): the plain mean of the batch moments over many training batches, in place of the running averages.
//
// Why: the running averages (momentum 0.95, about the last 20 steps) follow the weights as they change and the crops
// that happened to come; at some validations they are far from what the network's current weights produce, and the
// map's calibration with them. On ISBI a snapshot whose running statistics gave V_rand 0.7297 (split 0.987, merge
// 0.595: every membrane too faint) scored 0.9379 with statistics recomputed over 60 batches, its weights untouched.
//
// The batches are built as in training (same crops, augmentation and batch size per replica), so the moments are
// those the network normalised with while it learned; each BatchNormalization layer's momentum is set to (t − 1) / t
// for the t-th batch, which turns its moving-average update into the cumulative mean (and works on every backend:
// tfjs-layers and TrainingBatchNorm update the same way), and is restored afterwards.
import * as tf from '@tensorflow/tfjs';
import { makeBatch, type BatchSpec } from './trainer';
import type { TrainingSlice } from './augment';

interface MomentumField {
  momentum: number;
}

export function batchNormLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
}

/**
 * Replace the moving mean and variance of every batch-norm layer of `model` by the mean of the batch moments over
 * `batches` training-mode forward passes, batch t being `inputAt(t)` (disposed here). The weights are unchanged.
 */
export function recomputeBatchNormStatistics(model: tf.LayersModel, batches: number, inputAt: (t: number) => tf.Tensor4D): void {
  const layers = batchNormLayers(model) as unknown as MomentumField[];
  if (!layers.length || batches < 1) return;
  const saved = layers.map((l) => l.momentum);
  try {
    for (let t = 1; t <= batches; t++) {
      for (const l of layers) l.momentum = (t - 1) / t;
      const x = inputAt(t);
      tf.tidy(() => {
        model.apply(x, { training: true });
      });
      x.dispose();
    }
  } finally {
    layers.forEach((l, i) => (l.momentum = saved[i]));
  }
}

/** Training batches' inputs as the trainer draws them (crops, augmentation, batch size), the t-th seeded by seed and t. */
export function trainingInputs(slices: TrainingSlice[], spec: BatchSpec, seed: number): (t: number) => tf.Tensor4D {
  return (t) => {
    const batch = makeBatch(slices, { ...spec, malis: 0, weighting: 'plain' }, (seed * 7919 + t * 104729) >>> 0);
    tf.dispose([batch.y, batch.w]);
    return batch.x;
  };
}
