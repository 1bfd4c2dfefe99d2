// A leaner gradient for FusedBatchNorm, registered over tfjs-core's. The stock one tiles 1/sqrt(var + eps) to the full
// activation shape before multiplying (one full-size copy per batch-norm layer per step: ~20% of a U-Net training
// step on wasm); broadcasting the per-channel factor gives the same numbers without the copy.
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs';

function reductionAxes(meanRank: number, xRank: number): number[] {
  return meanRank === 1 ? Array.from({ length: xRank - 1 }, (_, i) => i) : [];
}

export const leanBatchNormGradConfig: GradConfig = {
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const g = dy as Tensor;
    const eps = attrs.varianceEpsilon as number;
    const [x, mean, variance, scale] = saved;
    const scaleValue = scale ?? tf.scalar(1);
    const axes = reductionAxes(mean.rank, x.rank);
    const reduce = (t: Tensor) => (axes.length ? tf.sum(t, axes) : t).reshape(mean.shape);
    const invStd = tf.rsqrt(tf.add(variance, tf.scalar(eps)));
    const dyScaled = tf.mul(g, scaleValue);
    return {
      x: () => tf.mul(g, tf.mul(invStd, scaleValue)),
      mean: () => reduce(tf.mul(dyScaled, tf.neg(invStd))),
      variance: () => reduce(tf.mul(tf.mul(tf.sub(x, mean), dyScaled), tf.mul(tf.pow(invStd, 3), tf.scalar(-0.5)))),
      scale: () => reduce(tf.mul(g, tf.mul(tf.sub(x, mean), invStd))),
      offset: () => reduce(g),
    };
  },
};

export function registerLeanBatchNormGradient(): void {
  tf.registerGradient(leanBatchNormGradConfig);
}
