// Batch normalization in training mode, forward and backward, as two kernels of tfjs' wasm backend that run EMSeg's
// WebAssembly SIMD module (wasm-simd.ts) on the backend's own heap, for batchnorm-training.ts.
//
// Why: timed inside a U-Net training step on 2 × 256² crops (2-core Intel Xeon, one replica), the JavaScript loops of
// batchnorm-training.ts took 280 ms forward and 420 ms backward, 27 % of the step: besides the loops themselves, every
// pass copied the activations out of the wasm heap (dataSync) and the result back in. ONNX Runtime was tried and
// gained only 5 % of the step: it allocates every full-size intermediate and output afresh (3–6 ms per 8 MB tensor).
// Here the module reads and writes the tensors where they are, four channels per instruction, with its functions
// sums and affine. With M = N·H·W pixels and channels last:
//   forward:  μ = Σ x / M (sums with m = 0),  σ² = Σ x · (x − μ) / M (sums with m = μ),  y = x · γ/√(σ²+ε) + (β − μ γ/√(σ²+ε));
//   backward: dβ = Σ dy, dγ = Σ dy · (x − μ) / √(σ²+ε) (one sums), dx = dy · k + x · a + o as in batchnorm-training.ts.
// The module sums blocks of pixels (32 KB of one tensor) in float32 and JavaScript adds the blocks' sums in double,
// so precision is that of the JavaScript path's double sums for all practical purposes (batchnorm-training.test.ts
// holds both to tfjs-layers' numbers). Channel counts that are not a multiple of 4 keep the JavaScript path.
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { heapAddress, scratchViews, simdKernels, type SimdInstance } from './wasm-simd';
import type { WasmBackendLike } from './wasm-conv-gradients';

export const BATCH_NORM_FORWARD = 'EmsegBatchNormTraining';
export const BATCH_NORM_BACKWARD = 'EmsegBatchNormTrainingGrad';

/**
 * Σ u and Σ u · (v − m) per channel over all pixels, in double: the module sums blocks of pixels, this adds them up.
 * `m` must already be in the scratch array m.
 */
function channelSums(inst: SimdInstance, u: number, v: number, pixels: number, channels: number): { s1: Float64Array; s2: Float64Array } {
  const s1 = new Float64Array(channels);
  const s2 = new Float64Array(channels);
  const block = Math.max(1, Math.floor(8192 / channels));
  const rowBytes = 4 * channels;
  // The module allocates nothing, so the heap cannot grow (and detach these views) in between.
  const sc = scratchViews(inst);
  for (let p0 = 0; p0 < pixels; p0 += block) {
    const n = Math.min(block, pixels - p0);
    inst.sums(u + p0 * rowBytes, v + p0 * rowBytes, sc.at(0), sc.at(1), sc.at(2), n, channels);
    for (let c = 0; c < channels; c++) {
      s1[c] += sc.s1[c];
      s2[c] += sc.s2[c];
    }
  }
  return { s1, s2 };
}

/**
 * A kernel's three outputs (one shaped like x, two per channel) and the SIMD module, all allocated before any heap
 * view is taken (an allocation can grow, and so detach, the heap).
 */
function prepare(backend: WasmBackendLike, x: TensorInfo) {
  const channels = x.shape[x.shape.length - 1];
  const pixels = x.shape.reduce((p, d) => p * d, 1) / channels;
  const outs = [backend.makeOutput(x.shape, 'float32'), backend.makeOutput([channels], 'float32'), backend.makeOutput([channels], 'float32')];
  return { channels, pixels, outs, inst: simdKernels(backend, channels) };
}

/** outs[0] = u · k + v · a + o (k, a, o already in the scratch arrays); outs[1] and outs[2] the per-channel results. */
function finish(backend: WasmBackendLike, p: ReturnType<typeof prepare>, u: TensorInfo, v: TensorInfo, first: Float32Array, second: Float32Array): TensorInfo[] {
  const sc = scratchViews(p.inst);
  p.inst.affine(heapAddress(backend, u), heapAddress(backend, v), heapAddress(backend, p.outs[0]), sc.at(3), sc.at(4), sc.at(5), p.pixels, p.channels);
  backend.typedArrayFromHeap(p.outs[1]).set(first);
  backend.typedArrayFromHeap(p.outs[2]).set(second);
  return p.outs;
}

const forwardKernel: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = b as unknown as WasmBackendLike;
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const eps = attrs!.epsilon as number;
  const p = prepare(backend, x);
  const { channels, pixels, inst } = p;
  const xa = heapAddress(backend, x);
  scratchViews(inst).m.fill(0);
  const { s1: sum } = channelSums(inst, xa, xa, pixels, channels);
  const mean = Float32Array.from(sum, (s) => s / pixels);
  scratchViews(inst).m.set(mean);
  const { s2: sq } = channelSums(inst, xa, xa, pixels, channels);
  const variance = Float32Array.from(sq, (s) => Math.max(0, s / pixels));
  const g = backend.typedArrayFromHeap(gamma);
  const be = backend.typedArrayFromHeap(beta);
  const sc = scratchViews(inst);
  for (let c = 0; c < channels; c++) {
    const scale = g[c] / Math.sqrt(variance[c] + eps);
    sc.k[c] = scale;
    sc.a[c] = 0;
    sc.o[c] = be[c] - mean[c] * scale;
  }
  return finish(backend, p, x, x, mean, variance);
};

const backwardKernel: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = b as unknown as WasmBackendLike;
  const { dy, x, gamma, mean, variance } = inputs as Record<'dy' | 'x' | 'gamma' | 'mean' | 'variance', TensorInfo>;
  const eps = attrs!.epsilon as number;
  const p = prepare(backend, x);
  const { channels, pixels, inst } = p;
  const mu = backend.typedArrayFromHeap(mean).slice();
  scratchViews(inst).m.set(mu);
  const { s1: dBeta, s2: dyX } = channelSums(inst, heapAddress(backend, dy), heapAddress(backend, x), pixels, channels);
  const g = backend.typedArrayFromHeap(gamma);
  const v = backend.typedArrayFromHeap(variance);
  const sc = scratchViews(inst);
  const dGamma = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const invStd = 1 / Math.sqrt(v[c] + eps);
    dGamma[c] = dyX[c] * invStd;
    const k = g[c] * invStd;
    const a = (-k * invStd * dGamma[c]) / pixels;
    sc.k[c] = k;
    sc.a[c] = a;
    sc.o[c] = (-k * dBeta[c]) / pixels - a * mu[c];
  }
  return finish(backend, p, dy, x, dGamma, Float32Array.from(dBeta));
};

let active = false;

/**
 * Compute training batch normalization on the wasm backend with the kernels above (on = true) or with
 * batchnorm-training.ts' JavaScript loops. The wasm backend must be registered.
 */
export function useWasmBatchNorm(on: boolean): void {
  if (on && !tf.getKernel(BATCH_NORM_FORWARD, 'wasm')) {
    tf.registerKernel({ kernelName: BATCH_NORM_FORWARD, backendName: 'wasm', kernelFunc: forwardKernel });
    tf.registerKernel({ kernelName: BATCH_NORM_BACKWARD, backendName: 'wasm', kernelFunc: backwardKernel });
  }
  active = on;
}

/** Whether batch normalization of this many channels takes the kernels above on the current backend. */
export function wasmBatchNormFor(channels: number): boolean {
  return active && channels % 4 === 0 && tf.getBackend() === 'wasm';
}
