// Adam in one wasm SIMD pass per variable, for training on tfjs' wasm backend.
//
// Why: tfjs' AdamOptimizer runs about 13 small kernels per variable (moments, bias correction, square root, update,
// three assigns), over 800 kernel calls a step for the U-Net's 64 variables; a training replica spent 35–50 ms a step
// in it (2-core AMD EPYC). Here one kernel (wasm-simd.ts adam) reads w, m, v and g once and writes the three new
// tensors, in the same order of float operations, so its results match tfjs' Adam.
//
// FusedAdam is an AdamOptimizer: same constructor, same state (moments named <variable>/m and /v, the iteration
// count), so checkpoints written by either load into the other. On any other backend it is tfjs' Adam.
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { ADAM_COEFFICIENTS, heapAddress, scratchViews, simdKernels } from './wasm-simd';
import type { WasmBackendLike } from './wasm-conv-gradients';

export const ADAM_KERNEL = 'EmsegAdam';

type Coefficients = Record<(typeof ADAM_COEFFICIENTS)[number], number>;

const adamKernel: KernelFunc = ({ inputs, backend: b, attrs }) => {
  const backend = b as unknown as WasmBackendLike;
  const { w, m, v, g } = inputs as Record<'w' | 'm' | 'v' | 'g', TensorInfo>;
  const k = attrs as unknown as Coefficients;
  const outs = [backend.makeOutput(w.shape, 'float32'), backend.makeOutput(w.shape, 'float32'), backend.makeOutput(w.shape, 'float32')];
  // The module and its scratch are allocated before any address is taken (an allocation can grow the heap).
  const inst = simdKernels(backend, 4 * ADAM_COEFFICIENTS.length);
  const sc = scratchViews(inst);
  ADAM_COEFFICIENTS.forEach((name, j) => sc.k.fill(k[name], 4 * j, 4 * j + 4));
  const n = w.shape.reduce((p, d) => p * d, 1);
  const quads = n >> 2;
  const [wo, mo, vo] = outs;
  const at = (t: TensorInfo) => heapAddress(backend, t);
  inst.adam(at(w), at(m), at(v), at(g), at(wo), at(mo), at(vo), quads, sc.at(3));
  if (n % 4) {
    // The last one to three weights, in float32 steps as the module computes them.
    const f = Math.fround;
    const [W, M, V, G, WO, MO, VO] = [w, m, v, g, wo, mo, vo].map((t) => backend.typedArrayFromHeap(t));
    for (let i = 4 * quads; i < n; i++) {
      MO[i] = f(f(k.beta1 * M[i]) + f(k.oneMinusBeta1 * G[i]));
      VO[i] = f(f(k.beta2 * V[i]) + f(k.oneMinusBeta2 * f(G[i] * G[i])));
      const denominator = f(f(Math.sqrt(f(VO[i] / k.biasCorrection2))) + k.epsilon);
      WO[i] = f(f(f(f(MO[i] / k.biasCorrection1) / denominator) * k.minusLr) + W[i]);
    }
  }
  return outs;
};

/** Register the fused Adam kernel for the wasm backend (once). */
export function registerWasmAdam(): void {
  if (!tf.getKernel(ADAM_KERNEL, 'wasm')) tf.registerKernel({ kernelName: ADAM_KERNEL, backendName: 'wasm', kernelFunc: adamKernel });
}

/** What FusedAdam needs of AdamOptimizer's private state (tfjs-core 4.x field names). */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
  accumulatedSecondMoment: Array<{ originalName: string; variable: tf.Variable } | undefined>;
}

export class FusedAdam extends tf.AdamOptimizer {
  override applyGradients(variableGradients: Parameters<tf.AdamOptimizer['applyGradients']>[0]): void {
    if (tf.getBackend() !== 'wasm' || !tf.getKernel(ADAM_KERNEL, 'wasm')) {
      super.applyGradients(variableGradients);
      return;
    }
    const self = this as unknown as AdamInternals;
    const list: Array<{ name: string; tensor: tf.Tensor | undefined }> = Array.isArray(variableGradients)
      ? variableGradients
      : Object.keys(variableGradients).map((name) => ({ name, tensor: variableGradients[name] as tf.Tensor | undefined }));
    const f = Math.fround;
    const k: Coefficients = {
      beta1: f(this.beta1), oneMinusBeta1: f(1 - this.beta1), beta2: f(this.beta2), oneMinusBeta2: f(1 - this.beta2),
      biasCorrection1: f(1 - self.accBeta1.dataSync()[0]), biasCorrection2: f(1 - self.accBeta2.dataSync()[0]),
      epsilon: f(this.epsilon), minusLr: f(-this.learningRate),
    };
    tf.tidy(() => {
      list.forEach(({ name, tensor: gradient }, i) => {
        const value = tf.engine().registeredVariables[name];
        const moment = (slot: AdamInternals['accumulatedFirstMoment'], suffix: string) => {
          slot[i] ??= { originalName: `${name}/${suffix}`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
          return slot[i].variable;
        };
        const m = moment(self.accumulatedFirstMoment, 'm');
        const v = moment(self.accumulatedSecondMoment, 'v');
        if (!gradient) return;
        const [w2, m2, v2] = tf.engine().runKernel(ADAM_KERNEL, { w: value, m, v, g: gradient }, k as unknown as tf.NamedAttrMap) as tf.Tensor[];
        m.assign(m2);
        v.assign(v2);
        value.assign(w2);
      });
      self.accBeta1.assign(tf.mul(self.accBeta1, this.beta1));
      self.accBeta2.assign(tf.mul(self.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}
