// Batch normalization in training mode as one operation with a hand-written gradient, for the backends where tfjs
// composes it from small kernels (wasm, cpu).
//
// tfjs-layers normalizes a training batch with moments() (Mean, Square, Sub) and FusedBatchNorm, and differentiates
// through all of them: per layer and step about twenty full-size element-wise kernels and per-channel reductions.
// On wasm the reductions over N·H·W with channels last transpose first, so a U-Net training step spent about a
// quarter of its time there. Here the forward pass is three passes over the activations and the backward pass two, in
// plain loops over channels-last data:
//   x̂ = (x − μ) / √(σ² + ε),  y = γ x̂ + β,  μ and σ² (biased) over every axis but the last;
//   dβ = Σ dy,  dγ = Σ dy · x̂,  dx = γ / (M √(σ² + ε)) · (M dy − dβ − x̂ dγ),  M = N·H·W.
// The numbers equal tfjs-layers' (checked against it in batchnorm-training.test.ts), including the biased batch
// variance that the moving average takes.
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_BACKWARD, BATCH_NORM_FORWARD, wasmBatchNormFor } from './wasm-batchnorm';

export interface BatchMoments {
  mean: Float32Array;
  variance: Float32Array;
}

// The loops below walk channels-last data a block of pixels at a time, one channel per inner loop, so that each sum
// stays in a register (a per-element store into a per-channel array was 2.5× slower) while the block stays in cache.
function blockPixels(channels: number): number {
  return Math.max(64, Math.floor(16384 / channels));
}

/** Per-channel mean and biased variance of channels-last data (two passes, sums in double precision). */
export function channelMoments(x: Float32Array, channels: number): BatchMoments {
  const pixels = x.length / channels;
  const block = blockPixels(channels);
  const sum = new Float64Array(channels);
  for (let p0 = 0; p0 < pixels; p0 += block) {
    const end = Math.min(pixels, p0 + block) * channels;
    for (let c = 0; c < channels; c++) {
      let s = 0;
      for (let i = p0 * channels + c; i < end; i += channels) s += x[i];
      sum[c] += s;
    }
  }
  const mean = new Float32Array(channels);
  for (let c = 0; c < channels; c++) mean[c] = sum[c] / pixels;
  const sq = new Float64Array(channels);
  for (let p0 = 0; p0 < pixels; p0 += block) {
    const end = Math.min(pixels, p0 + block) * channels;
    for (let c = 0; c < channels; c++) {
      const m = mean[c];
      let s = 0;
      for (let i = p0 * channels + c; i < end; i += channels) {
        const d = x[i] - m;
        s += d * d;
      }
      sq[c] += s;
    }
  }
  const variance = new Float32Array(channels);
  for (let c = 0; c < channels; c++) variance[c] = sq[c] / pixels;
  return { mean, variance };
}

/** out = x · a[c] + b[c] (+ dy · k[c] when given), channels last. */
function affine(x: Float32Array, channels: number, a: Float32Array, b: Float32Array, dy?: Float32Array, k?: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  const pixels = x.length / channels;
  const block = blockPixels(channels);
  for (let p0 = 0; p0 < pixels; p0 += block) {
    const end = Math.min(pixels, p0 + block) * channels;
    for (let c = 0; c < channels; c++) {
      const ac = a[c];
      const bc = b[c];
      if (dy && k) {
        const kc = k[c];
        for (let i = p0 * channels + c; i < end; i += channels) out[i] = dy[i] * kc + x[i] * ac + bc;
      } else {
        for (let i = p0 * channels + c; i < end; i += channels) out[i] = x[i] * ac + bc;
      }
    }
  }
  return out;
}

/**
 * y = γ (x − μ) / √(σ² + ε) + β with the batch's own per-channel μ and σ², differentiable in x, γ and β. Returns the
 * normalized tensor and the batch moments (for the moving averages; not differentiated).
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): { y: tf.Tensor; moments: BatchMoments } {
  const channels = x.shape[x.shape.length - 1];
  if (wasmBatchNormFor(channels)) return batchNormTrainingWasm(x, gamma, beta, epsilon);
  let moments: BatchMoments | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, gIn, bIn] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const xs = xIn.dataSync() as Float32Array;
    const g = gIn.dataSync() as Float32Array;
    const b = bIn.dataSync() as Float32Array;
    const mom = channelMoments(xs, channels);
    moments = mom;
    const invStd = new Float32Array(channels);
    const scale = new Float32Array(channels);
    const shift = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      invStd[c] = 1 / Math.sqrt(mom.variance[c] + epsilon);
      scale[c] = g[c] * invStd[c];
      shift[c] = b[c] - mom.mean[c] * scale[c];
    }
    save([xIn]);
    return {
      value: tf.tensor(affine(xs, channels, scale, shift), xIn.shape),
      gradFunc: (dyIn: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const dy = (dyIn as tf.Tensor).dataSync() as Float32Array;
        const xv = saved[0].dataSync() as Float32Array;
        const pixels = xv.length / channels;
        const block = blockPixels(channels);
        const dBeta = new Float64Array(channels);
        const dyX = new Float64Array(channels); // Σ dy · (x − μ)
        for (let p0 = 0; p0 < pixels; p0 += block) {
          const end = Math.min(pixels, p0 + block) * channels;
          for (let c = 0; c < channels; c++) {
            const m = mom.mean[c];
            let s1 = 0;
            let s2 = 0;
            for (let i = p0 * channels + c; i < end; i += channels) {
              const d = dy[i];
              s1 += d;
              s2 += d * (xv[i] - m);
            }
            dBeta[c] += s1;
            dyX[c] += s2;
          }
        }
        // dx = k (dy − dβ/M − x̂ dγ/M) with k = γ/√(σ²+ε) and dγ = Σ dy·x̂, expanded per channel into dy·k + x·a + o.
        const dGamma = new Float32Array(channels);
        const k = new Float32Array(channels);
        const a = new Float32Array(channels);
        const o = new Float32Array(channels);
        for (let c = 0; c < channels; c++) {
          dGamma[c] = dyX[c] * invStd[c];
          k[c] = g[c] * invStd[c];
          a[c] = (-k[c] * invStd[c] * dGamma[c]) / pixels;
          o[c] = (-k[c] * dBeta[c]) / pixels - a[c] * mom.mean[c];
        }
        return [tf.tensor(affine(xv, channels, a, o, dy, k), saved[0].shape), tf.tensor1d(dGamma), tf.tensor1d(Float32Array.from(dBeta))];
      },
    };
  });
  const y = op(x, gamma, beta);
  if (!moments) throw new Error('batchNormTraining: forward pass did not run');
  return { y, moments };
}

/** The same on the wasm backend with EMSeg's SIMD kernels (wasm-batchnorm.ts), on the wasm heap. */
function batchNormTrainingWasm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): { y: tf.Tensor; moments: BatchMoments } {
  let moments: BatchMoments | undefined;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, gIn, bIn] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_FORWARD, { x: xIn, gamma: gIn, beta: bIn }, { epsilon }) as tf.Tensor[];
    moments = { mean: mean.dataSync() as Float32Array, variance: variance.dataSync() as Float32Array };
    save([xIn, gIn, mean, variance]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.engine().runKernel(BATCH_NORM_BACKWARD, { dy: dy as tf.Tensor, x: saved[0], gamma: saved[1], mean: saved[2], variance: saved[3] }, { epsilon }) as tf.Tensor[],
    };
  });
  const y = op(x, gamma, beta);
  if (!moments) throw new Error('batchNormTraining: forward pass did not run');
  return { y, moments };
}

/** Whether batch normalization in training should take the fused path on the current backend. */
export function fusedBatchNormWanted(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}

type BatchNormalization = ReturnType<typeof tf.layers.batchNormalization>;
type BatchNormalizationArgs = NonNullable<Parameters<typeof tf.layers.batchNormalization>[0]>;

/** The fields of tfjs-layers' BatchNormalization that the training path reads (private in its typings). */
interface BatchNormInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

const BatchNormalizationBase = Object.getPrototypeOf(tf.layers.batchNormalization({})).constructor as new (
  args?: BatchNormalizationArgs,
) => BatchNormalization;

/** moving ← moving − (moving − batch) · (1 − momentum), as tfjs-layers updates it. */
function updateMovingAverage(variable: tf.LayerVariable, batch: Float32Array, momentum: number): void {
  const old = variable.read().dataSync() as Float32Array;
  const next = new Float32Array(old.length);
  for (let c = 0; c < old.length; c++) next[c] = old[c] - (old[c] - batch[c]) * (1 - momentum);
  variable.write(tf.tensor1d(next));
}

/**
 * tfjs-layers' BatchNormalization (same class name, weights and inference) whose training pass is
 * batchNormTraining() on wasm and cpu. Other backends (tfjs-node) keep the library's path.
 */
export class TrainingBatchNorm extends BatchNormalizationBase {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const self = this as unknown as BatchNormInternals;
    const lastAxis = self.axis === -1 || self.axis === input.rank - 1;
    if (kwargs?.training !== true || !fusedBatchNormWanted() || !lastAxis || !self.center || !self.scale) {
      return super.call(inputs, kwargs);
    }
    return tf.tidy(() => {
      const { y, moments } = batchNormTraining(input, self.gamma.read() as tf.Tensor1D, self.beta.read() as tf.Tensor1D, self.epsilon);
      updateMovingAverage(self.movingMean, moments.mean, self.momentum);
      updateMovingAverage(self.movingVariance, moments.variance, self.momentum);
      return y;
    });
  }
}

export function trainingBatchNorm(args: BatchNormalizationArgs): TrainingBatchNorm {
  return new TrainingBatchNorm(args);
}
