// Activity-based pruning, "neural network relief" (Dekhovich et al. 2021, arXiv:2109.10795): a connection matters as
// much as the signal it carries on real data, relative to everything else entering the same neuron.
//
// For a convolution with kernel K (ONNX layout [co, ci, kh, kw]; batch norm folded in) and bias b, the importance of
// the connection from input channel i to filter j is
//   s_ij = E_x ‖ |K_ij| ∗ |x_i| ‖_F / ( Σ_k E_x ‖ |K_kj| ∗ |x_k| ‖_F + E_x ‖ b_j · 1 ‖_F ),
// the expectation over a pruning set of the layer's inputs x ("same" zero padding, stride 1). The bias term is the
// Frobenius norm of the constant map b_j (|b_j| · √(H·W)). Per filter, the connections are kept in decreasing order
// of score until their scores sum to at least α (≈ 0.9 for convolutions, the paper's value); the rest are pruned.
// Fine-tuning and repeating is the caller's loop (main/engine/compress.ts: prune → fine-tune rounds).
//
// The first half of the file is the plain-array reference (hand-checked in the tests); the second half prunes a tfjs
// model with the same definitions, the scores computed by tfjs and checked against the reference.
import * as tf from '@tensorflow/tfjs';

/** ‖ |k| ∗ |x| ‖_F for one kh×kw kernel slice and one h×w channel, "same" zero padding. */
export function absConvNorm(k: Float32Array, kOff: number, kh: number, kw: number, x: Float32Array, xOff: number, h: number, w: number): number {
  const py = (kh - 1) >> 1;
  const px = (kw - 1) >> 1;
  let sq = 0;
  for (let y = 0; y < h; y++)
    for (let xx = 0; xx < w; xx++) {
      let v = 0;
      for (let ky = 0; ky < kh; ky++) {
        const sy = y + ky - py;
        if (sy < 0 || sy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const sx = xx + kx - px;
          if (sx < 0 || sx >= w) continue;
          v += Math.abs(k[kOff + ky * kw + kx]) * Math.abs(x[xOff + sy * w + sx]);
        }
      }
      sq += v * v;
    }
  return Math.sqrt(sq);
}

/**
 * Normalised relief scores s_ij, laid out [co][ci], over a pruning set of planar CHW inputs (ci × h × w each).
 * Each filter's scores and its bias share sum to 1.
 */
export function reliefScores(inputs: readonly Float32Array[], h: number, w: number, kernel: Float32Array, bias: Float32Array | null, co: number, ci: number, kh: number, kw: number): Float32Array {
  if (inputs.length === 0) throw new Error('relief scores need at least one input');
  const s = new Float64Array(co * ci);
  for (const x of inputs) {
    if (x.length !== ci * h * w) throw new RangeError(`input of ${x.length} values, expected ${ci}×${h}×${w}`);
    for (let j = 0; j < co; j++)
      for (let i = 0; i < ci; i++) s[j * ci + i] += absConvNorm(kernel, (j * ci + i) * kh * kw, kh, kw, x, i * h * w, h, w) / inputs.length;
  }
  const out = new Float32Array(co * ci);
  for (let j = 0; j < co; j++) {
    let total = bias ? Math.abs(bias[j]) * Math.sqrt(h * w) : 0;
    for (let i = 0; i < ci; i++) total += s[j * ci + i];
    for (let i = 0; i < ci; i++) out[j * ci + i] = total > 0 ? s[j * ci + i] / total : 0;
  }
  return out;
}

/** Per filter, the smallest set of connections whose scores sum to at least α: 1 = keep, laid out [co][ci]. */
export function reliefKeep(scores: Float32Array, co: number, ci: number, alpha: number): Uint8Array {
  const keep = new Uint8Array(co * ci);
  for (let j = 0; j < co; j++) {
    const order = Array.from({ length: ci }, (_, i) => i).sort((a, b) => scores[j * ci + b] - scores[j * ci + a] || a - b);
    let sum = 0;
    for (const i of order) {
      // A connection that carries no signal is never kept, even when α is out of reach without the bias.
      if (sum >= alpha || scores[j * ci + i] <= 0) break;
      keep[j * ci + i] = 1;
      sum += scores[j * ci + i];
    }
  }
  return keep;
}

/**
 * Global magnitude pruning at the same sparsity, the baseline the relief paper compares against: keep the
 * `keepCount` largest-magnitude weights over all the given kernels; 1 = keep, one mask per kernel.
 */
export function magnitudeKeep(kernels: readonly Float32Array[], keepCount: number): Uint8Array[] {
  const all: number[] = [];
  for (const k of kernels) for (const v of k) all.push(Math.abs(v));
  all.sort((a, b) => b - a);
  const threshold = keepCount > 0 ? all[Math.min(keepCount, all.length) - 1] : Infinity;
  let budget = keepCount;
  // Keep strictly-above-threshold weights, then ties at the threshold in order, so exactly keepCount survive.
  const masks = kernels.map((k) => Uint8Array.from(k, (v) => (Math.abs(v) > threshold ? 1 : 0)));
  for (const m of masks) budget -= m.reduce((a, b) => a + b, 0);
  kernels.forEach((k, n) => {
    for (let i = 0; i < k.length && budget > 0; i++) {
      if (Math.abs(k[i]) === threshold && !masks[n][i]) {
        masks[n][i] = 1;
        budget--;
      }
    }
  });
  return masks;
}

// ---- Pruning a tfjs model: scores on real activations, connection masks, and the masks kept through fine-tuning.

/** A convolution relief prunes: a spatial Conv2D with at least two input channels, and the batch norm after it. */
export interface PrunableConv {
  conv: tf.layers.Layer;
  bn: tf.layers.Layer | null;
  /** tfjs kernel shape [kh, kw, ci, co]. */
  shape: [number, number, number, number];
}

interface LayerWithNodes {
  name: string;
  inboundNodes: Array<{ inboundLayers: LayerWithNodes[] }>;
}

/**
 * The convolutions pruned (by relief and by the magnitude baseline alike): every k×k Conv2D (k > 1) with ≥ 2 input
 * channels. The first layer (one input channel: a filter's only connection) and the 1×1 output layer stay dense.
 */
export function prunableConvs(model: tf.LayersModel): PrunableConv[] {
  const consumers = new Map<string, tf.layers.Layer[]>();
  for (const l of model.layers) {
    for (const src of (l as unknown as LayerWithNodes).inboundNodes[0]?.inboundLayers ?? []) consumers.set(src.name, [...(consumers.get(src.name) ?? []), l]);
  }
  const out: PrunableConv[] = [];
  for (const l of model.layers) {
    if (l.getClassName() !== 'Conv2D') continue;
    const shape = l.getWeights()[0].shape as [number, number, number, number];
    if (shape[0] * shape[1] <= 1 || shape[2] < 2) continue;
    const next = consumers.get(l.name) ?? [];
    const bn = next.length === 1 && next[0].getClassName() === 'BatchNormalization' ? next[0] : null;
    out.push({ conv: l, bn, shape });
  }
  return out;
}

/**
 * The kernel and bias with the following batch norm folded in (what inference computes): K ← K · γ/√(σ² + ε) per
 * filter, b ← (b − μ) · γ/√(σ² + ε) + β. tfjs layout [kh, kw, ci, co].
 */
export function foldedKernel(p: PrunableConv): { kernel: Float32Array; bias: Float32Array } {
  const ws = p.conv.getWeights();
  const kernel = new Float32Array(ws[0].dataSync());
  const co = p.shape[3];
  const bias = ws[1] ? new Float32Array(ws[1].dataSync()) : new Float32Array(co);
  if (p.bn) {
    const eps = p.bn.getConfig().epsilon as number;
    const [gamma, beta, mean, variance] = p.bn.getWeights().map((t) => t.dataSync());
    const s = Float32Array.from(gamma, (g, o) => g / Math.sqrt(variance[o] + eps));
    for (let i = 0; i < kernel.length; i++) kernel[i] *= s[i % co];
    for (let o = 0; o < co; o++) bias[o] = (bias[o] - mean[o]) * s[o] + beta[o];
  }
  return { kernel, bias };
}

/**
 * Relief scores s_ij ([co][ci], see reliefScores) computed with tfjs: one depthwise convolution of |x| with |K|
 * (channel multiplier co) gives every |K_ij| ∗ |x_i| at once. `inputs`: the layer's inputs over the pruning set,
 * NHWC, one sample at a time (so the N · H · W · ci · co intermediate stays bounded).
 */
export function reliefScoresTf(inputs: readonly tf.Tensor4D[], kernel: Float32Array, bias: Float32Array | null, shape: readonly number[]): Float32Array {
  if (inputs.length === 0) throw new Error('relief scores need at least one input');
  const [kh, kw, ci, co] = shape;
  const sums = new Float64Array(ci * co);
  const absK = tf.tensor4d(kernel.map(Math.abs), [kh, kw, ci, co]);
  let hw = 0;
  for (const x of inputs) {
    if (x.shape[0] !== 1 || x.shape[3] !== ci) throw new RangeError(`relief input of shape ${x.shape.join('×')}, expected 1×H×W×${ci}`);
    hw = x.shape[1] * x.shape[2];
    // Depthwise output channel i · co + j is |K_ij| ∗ |x_i|.
    const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.depthwiseConv2d(tf.abs(x), absK, 1, 'same')), [0, 1, 2])).dataSync());
    for (let k = 0; k < ci * co; k++) sums[k] += norms[k] / inputs.length;
  }
  absK.dispose();
  const out = new Float32Array(co * ci);
  for (let j = 0; j < co; j++) {
    let total = bias ? Math.abs(bias[j]) * Math.sqrt(hw) : 0;
    for (let i = 0; i < ci; i++) total += sums[i * co + j];
    for (let i = 0; i < ci; i++) out[j * ci + i] = total > 0 ? sums[i * co + j] / total : 0;
  }
  return out;
}

/** A connection mask [co][ci] spread over a tfjs kernel [kh, kw, ci, co]: 1 = keep. */
export function connectionsToWeights(keep: Uint8Array, shape: readonly number[]): Uint8Array {
  const [kh, kw, ci, co] = shape;
  const out = new Uint8Array(kh * kw * ci * co);
  for (let t = 0; t < kh * kw; t++) for (let i = 0; i < ci; i++) for (let j = 0; j < co; j++) out[(t * ci + i) * co + j] = keep[j * ci + i];
  return out;
}

/**
 * Weight masks kept through fine-tuning: `apply()` zeroes the pruned weights, `afterApply` (the fine-tuner's hook)
 * zeroes them again after every Adam step, so pruned weights stay exactly zero into the saved folder and the ONNX
 * graph (batch-norm folding multiplies, zeros stay zeros).
 */
export class PruneMasks {
  readonly masks: Uint8Array[];
  constructor(readonly convs: readonly PrunableConv[]) {
    this.masks = convs.map((c) => new Uint8Array(c.shape.reduce((a, b) => a * b, 1)).fill(1));
  }

  /** Narrow mask k to `keep` (once pruned, a weight stays pruned) and apply every mask. */
  narrow(k: number, keep: Uint8Array): void {
    const m = this.masks[k];
    for (let i = 0; i < m.length; i++) m[i] &= keep[i];
  }

  apply(): void {
    this.convs.forEach((c, k) => {
      const [kernel, ...rest] = c.conv.getWeights();
      const w = new Float32Array(kernel.dataSync());
      const m = this.masks[k];
      for (let i = 0; i < w.length; i++) if (!m[i]) w[i] = 0;
      const t = tf.tensor(w, kernel.shape);
      c.conv.setWeights([t, ...rest]);
      t.dispose();
    });
  }

  readonly afterApply = (): void => this.apply();

  /** Fraction of pruned weights over the masked kernels. */
  sparsity(): number {
    let zeros = 0;
    let total = 0;
    for (const m of this.masks) {
      for (const v of m) zeros += v ? 0 : 1;
      total += m.length;
    }
    return total ? zeros / total : 0;
  }

  /** Kept weights over the masked kernels. */
  kept(): number {
    return this.masks.reduce((a, m) => a + m.reduce((x, y) => x + y, 0), 0);
  }
}

/** The layers' inputs (NHWC tensors) for one normalised crop: what relief scores are averaged over. */
export function layerInputs(model: tf.LayersModel, convs: readonly PrunableConv[]): (x: tf.Tensor4D) => tf.Tensor4D[] {
  const probe = tf.model({ inputs: model.inputs, outputs: convs.map((c) => c.conv.input as tf.SymbolicTensor) });
  return (x) => {
    const out = probe.predict(x);
    return (Array.isArray(out) ? out : [out]) as tf.Tensor4D[];
  };
}

/** One relief pruning round: scores on the pruning set, α per filter, masks narrowed and applied. */
export function reliefRound(model: tf.LayersModel, masks: PruneMasks, pruningSet: readonly tf.Tensor4D[], alpha: number): void {
  const probe = layerInputs(model, masks.convs);
  const perLayer: tf.Tensor4D[][] = masks.convs.map(() => []);
  for (const x of pruningSet) probe(x).forEach((t, k) => perLayer[k].push(t));
  masks.convs.forEach((c, k) => {
    const { kernel, bias } = foldedKernel(c);
    const [, , ci, co] = c.shape;
    const scores = reliefScoresTf(perLayer[k], kernel, c.bn || c.conv.getWeights().length > 1 ? bias : null, c.shape);
    masks.narrow(k, connectionsToWeights(reliefKeep(scores, co, ci, alpha), c.shape));
  });
  tf.dispose(perLayer.flat());
  masks.apply();
}

/** One global magnitude round at a target sparsity over the same kernels (batch-norm-folded magnitudes). */
export function magnitudeRound(masks: PruneMasks, sparsity: number): void {
  if (!(sparsity >= 0 && sparsity < 1)) throw new RangeError(`sparsity must be in [0, 1), got ${sparsity}`);
  const kernels = masks.convs.map((c) => {
    const k = foldedKernel(c).kernel;
    masks.masks[masks.convs.indexOf(c)].forEach((m, i) => (m ? undefined : (k[i] = 0)));
    return k;
  });
  const total = kernels.reduce((a, k) => a + k.length, 0);
  const keep = magnitudeKeep(kernels, Math.round(total * (1 - sparsity)));
  keep.forEach((m, k) => masks.narrow(k, m));
  masks.apply();
}
