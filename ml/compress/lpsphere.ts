// Lp-sphere sparse training (Li et al. 2021, arXiv:2103.16013). Every filter's weights w (one output channel of a
// convolution) live on the unit Lp sphere, ‖w‖_p = 1 with 1 < p ≤ 2, and are updated by LpSGD, a mirror-descent step
// in the dual space of the Lp norm:
//   v = sign(w)|w|^(p−1);   v ← v − η g;   w = sign(v)|v|^(1/(p−1));   w ← w / ‖w‖_p.
// For p < 2 the map back from v raises small values to a power above 1, so small weights shrink towards zero by
// themselves; semi-pruning then sets every weight below h · mean|w| (per filter) to exactly zero. A zero weight is not
// removed for good: its dual value restarts at 0 and the next step gives it v = −ηg, so a weight whose gradient is
// large regrows above the threshold while the others stay zero (the paper's regrowth on large gradients).
//
// Which kernels: 3×3 Conv2D kernels followed by batch norm (the U-Net's block convolutions). Their scale is
// irrelevant to the network (batch norm divides it out), so the sphere constraint loses no expressiveness; the
// initial projection rescales the batch norm's moving mean and variance with the filter, which keeps the trained
// model's function exact at the start. The 1×1 output layer and the transposed convolutions carry their own bias and
// scale and stay unconstrained (Adam updates them as usual).
//
// It plugs into the fine-tuner (finetune.ts): beforeApply receives the raw gradients, afterApply replaces Adam's
// update of the constrained kernels with the LpSGD update from the stored weights.
import * as tf from '@tensorflow/tfjs';

export interface LpSphereOptions {
  /** The norm's exponent, 1 < p ≤ 2 (smaller = sparser). */
  p: number;
  /** Semi-pruning threshold as a fraction of the filter's mean |w|. */
  h: number;
  /** LpSGD step size η at the fine-tuner's peak learning rate (it follows the same cosine schedule). */
  eta: number;
  /**
   * Per-layer step sizes: η_layer = η · rms(v) / rms(g), so η is the relative step of every layer's dual values.
   * Measured on the ISBI U-Net, mean |g| falls from 4e-2 (first blocks) to 3e-5 (bottom) while the dual values only
   * halve: one global η either freezes the deep layers or throws the shallow ones around. Off = the paper's single η.
   */
  layerwise?: boolean;
}

function checkP(p: number): void {
  if (!(p > 1 && p <= 2)) throw new RangeError(`Lp-sphere training needs 1 < p ≤ 2, got ${p}`);
}

/**
 * One LpSGD step on a weight vector, in place: v = sign(w)|w|^(p−1), v ← v − ηg, w = sign(v)|v|^(1/(p−1)). The
 * strided form addresses one filter inside a tfjs kernel [kh, kw, ci, co]: elements off, off + stride, …, n of them.
 */
export function lpSgdStep(w: Float32Array, g: Float32Array, eta: number, p: number, off = 0, stride = 1, n = w.length): void {
  checkP(p);
  for (let k = 0, i = off; k < n; k++, i += stride) {
    const v = Math.sign(w[i]) * Math.abs(w[i]) ** (p - 1) - eta * g[i];
    w[i] = Math.sign(v) * Math.abs(v) ** (1 / (p - 1));
  }
}

/** ‖w‖_p of one (strided) filter. */
export function lpNorm(w: Float32Array, p: number, off = 0, stride = 1, n = w.length): number {
  let s = 0;
  for (let k = 0, i = off; k < n; k++, i += stride) s += Math.abs(w[i]) ** p;
  return s ** (1 / p);
}

/** Scale one filter onto the unit Lp sphere, in place; returns the factor (1 for an all-zero filter, left as is). */
export function projectToSphere(w: Float32Array, p: number, off = 0, stride = 1, n = w.length): number {
  const norm = lpNorm(w, p, off, stride, n);
  if (!(norm > 0)) return 1;
  const s = 1 / norm;
  for (let k = 0, i = off; k < n; k++, i += stride) w[i] *= s;
  return s;
}

/** Semi-pruning of one filter, in place: weights with |w| < h · mean|w| become 0. Returns how many are zero now. */
export function semiPrune(w: Float32Array, h: number, off = 0, stride = 1, n = w.length): number {
  let mean = 0;
  for (let k = 0, i = off; k < n; k++, i += stride) mean += Math.abs(w[i]) / n;
  let zeros = 0;
  for (let k = 0, i = off; k < n; k++, i += stride) {
    if (Math.abs(w[i]) < h * mean) w[i] = 0;
    if (w[i] === 0) zeros++;
  }
  return zeros;
}

interface Constrained {
  variable: tf.LayerVariable;
  /** Index in model.trainableWeights (the fine-tuner's gradient order). */
  gradIndex: number;
  /** The batch norm that follows, for the initial rescaling of its moving statistics. */
  bn: tf.layers.Layer;
  shape: number[];
  weights: Float32Array;
}

interface LayerWithNodes {
  name: string;
  getClassName(): string;
  inboundNodes: Array<{ inboundLayers: LayerWithNodes[] }>;
}

/** The kernels Lp-sphere training constrains: spatial Conv2D kernels whose only consumer is a batch norm. */
function constrainedKernels(model: tf.LayersModel): Array<{ conv: tf.layers.Layer; bn: tf.layers.Layer }> {
  const consumers = new Map<string, tf.layers.Layer[]>();
  for (const l of model.layers) {
    for (const src of (l as unknown as LayerWithNodes).inboundNodes[0]?.inboundLayers ?? []) consumers.set(src.name, [...(consumers.get(src.name) ?? []), l]);
  }
  const out: Array<{ conv: tf.layers.Layer; bn: tf.layers.Layer }> = [];
  for (const l of model.layers) {
    if (l.getClassName() !== 'Conv2D' || l.trainableWeights.length !== 1) continue;
    const [kh, kw] = l.trainableWeights[0].shape as number[];
    const next = consumers.get(l.name) ?? [];
    if (kh * kw > 1 && next.length === 1 && next[0].getClassName() === 'BatchNormalization') out.push({ conv: l, bn: next[0] });
  }
  return out;
}

/**
 * The constraint's state over one fine-tuning run. `project()` once before training, then beforeApply / afterApply
 * as the fine-tuner's hooks.
 */
export class LpSphereTraining {
  private readonly layers: Constrained[];
  private grads: Float32Array[] | null = null;
  private lrScale = 1;
  /** Weights that went from zero to non-zero (regrown) and from non-zero to zero (pruned), over the run. */
  regrown = 0;
  pruned = 0;

  constructor(readonly model: tf.LayersModel, readonly opts: LpSphereOptions) {
    checkP(opts.p);
    const trainable = model.trainableWeights;
    this.layers = constrainedKernels(model).map(({ conv, bn }) => {
      const variable = conv.trainableWeights[0];
      const gradIndex = trainable.indexOf(variable);
      if (gradIndex < 0) throw new Error(`Lp-sphere: ${variable.name} is not a trainable weight of the model`);
      return { variable, gradIndex, bn, shape: variable.shape as number[], weights: new Float32Array(variable.read().dataSync()) };
    });
  }

  get kernelCount(): number {
    return this.layers.length;
  }

  /**
   * Put every filter on the unit sphere. Batch norm divides the scale out in training; for inference its moving mean
   * and variance are rescaled with the filter (μ · s, σ² · s²), so the model computes the same maps as before (up to
   * the ε in √(σ² + ε)).
   */
  project(): void {
    const { p } = this.opts;
    for (const c of this.layers) {
      const co = c.shape[3];
      const per = c.weights.length / co;
      const scale = new Float32Array(co);
      for (let o = 0; o < co; o++) scale[o] = projectToSphere(c.weights, p, o, co, per);
      this.write(c);
      const [gamma, beta, mean, variance] = c.bn.getWeights().map((t) => new Float32Array(t.dataSync()));
      for (let o = 0; o < co; o++) {
        mean[o] *= scale[o];
        variance[o] *= scale[o] * scale[o];
      }
      const ts = [gamma, beta, mean, variance].map((a) => tf.tensor1d(a));
      c.bn.setWeights(ts);
      tf.dispose(ts);
    }
  }

  /** Fine-tuner hook: the raw gradients of this step (trainable-weight order) and the schedule's lr / peak lr. */
  readonly beforeApply = (grads: Float32Array[], lrScale: number): void => {
    this.grads = grads;
    this.lrScale = lrScale;
  };

  /** Fine-tuner hook: replace Adam's update of the constrained kernels by LpSGD + projection + semi-pruning. */
  readonly afterApply = (): void => {
    if (!this.grads) throw new Error('Lp-sphere: afterApply without beforeApply (the fine-tuner must pass gradients)');
    const { p, h } = this.opts;
    for (const c of this.layers) {
      const w = c.weights;
      const g = this.grads[c.gradIndex];
      let eta = this.opts.eta * this.lrScale;
      if (this.opts.layerwise) {
        let vv = 0;
        let gg = 0;
        for (let i = 0; i < w.length; i++) {
          vv += Math.abs(w[i]) ** (2 * (p - 1));
          gg += g[i] * g[i];
        }
        if (gg > 0) eta *= Math.sqrt(vv / gg);
      }
      const wasZero = Uint8Array.from(w, (v) => (v === 0 ? 1 : 0));
      const co = c.shape[3];
      const per = w.length / co;
      for (let o = 0; o < co; o++) {
        lpSgdStep(w, g, eta, p, o, co, per);
        projectToSphere(w, p, o, co, per);
        semiPrune(w, h, o, co, per);
        // Pruning shrinks the norm: back onto the sphere (the survivors only scale, none drops below the threshold).
        projectToSphere(w, p, o, co, per);
      }
      for (let i = 0; i < w.length; i++) {
        if (wasZero[i] && w[i] !== 0) this.regrown++;
        else if (!wasZero[i] && w[i] === 0) this.pruned++;
      }
      this.write(c);
    }
    this.grads = null;
  };

  /** Fraction of exactly zero weights over the constrained kernels. */
  sparsity(): number {
    let zeros = 0;
    let total = 0;
    for (const c of this.layers) {
      for (const v of c.weights) zeros += v === 0 ? 1 : 0;
      total += c.weights.length;
    }
    return total ? zeros / total : 0;
  }

  /** Largest deviation of a filter's ‖w‖_p from 1 (all-zero filters excluded): the constraint's health. */
  maxNormError(): number {
    let worst = 0;
    for (const c of this.layers) {
      const co = c.shape[3];
      const per = c.weights.length / co;
      for (let o = 0; o < co; o++) {
        const n = lpNorm(c.weights, this.opts.p, o, co, per);
        if (n > 0) worst = Math.max(worst, Math.abs(n - 1));
      }
    }
    return worst;
  }

  private write(c: Constrained): void {
    const t = tf.tensor(c.weights, c.shape);
    c.variable.write(t);
    t.dispose();
  }
}
