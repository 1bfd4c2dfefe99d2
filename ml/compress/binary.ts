// Building blocks of the binarized membrane network (X. Wu et al. 2016, arXiv:1604.03058, after
// Courbariaux/Hubara's BinaryNet) and of its stochastic ensemble (Vogel et al. 2016, arXiv:1611.06539):
//   - signSte: sign in the forward pass, the straight-through estimator (gradient passed where |x| ≤ 1, the hard-tanh
//     derivative) in the backward pass; for both weights and activations;
//   - sampleBinary: one ensemble member drawn from the real-valued weights, P(+1) = clip((w + 1) / 2, 0, 1);
//   - ensembleMeanVariance: the averaged membrane map and the per-pixel variance across members (uncertainty map);
//   - a bitwise convolution: ±1 activations and weights packed 32 channels to a word, a dot product is
//     2 · popcount(XNOR) − n, with zero padding handled by counting only the taps inside the image — so it equals the
//     float convolution of the ±1 values exactly;
//   - training support for the binarized U-Net (ml/models/unet.ts, `binary`): its real-valued kernels initialised
//     from a float U-Net, updated at a larger rate and clipped to [−1, 1] after every step (BinaryNet), and
//     ensemble members drawn from them.
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../train/rng';

/** sign(x) (sign(0) = +1) with the straight-through gradient dy · 1{|x| ≤ 1}. */
export const signSte = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.tidy(() => tf.sub(tf.mul(tf.cast(tf.greaterEqual(x, 0), 'float32'), 2), 1)),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.cast(tf.lessEqual(tf.abs(saved[0]), 1), 'float32')),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/** One stochastic binarization of real-valued weights: +1 with probability clip((w + 1) / 2, 0, 1), else −1. */
export function sampleBinary(w: Float32Array, rng: Rng): Float32Array {
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = rng.next() < Math.min(1, Math.max(0, (w[i] + 1) / 2)) ? 1 : -1;
  return out;
}

/** Deterministic binarization (the K = 1, no-sampling model): sign(w), sign(0) = +1. */
export function signBinary(w: Float32Array): Float32Array {
  return Float32Array.from(w, (v) => (v >= 0 ? 1 : -1));
}

/** Per-pixel mean and (population) variance of K maps: the ensemble's map and its uncertainty map. */
export function ensembleMeanVariance(maps: readonly Float32Array[]): { mean: Float32Array; variance: Float32Array } {
  if (maps.length === 0) throw new Error('an ensemble needs at least one map');
  const n = maps[0].length;
  const mean = new Float32Array(n);
  const variance = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const m of maps) s += m[i];
    const mu = s / maps.length;
    let v = 0;
    for (const m of maps) v += (m[i] - mu) ** 2;
    mean[i] = mu;
    variance[i] = v / maps.length;
  }
  return { mean, variance };
}

export function popcount32(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Words per pixel for `c` channels. */
export function wordsFor(c: number): number {
  return Math.ceil(c / 32);
}

/** Planar CHW values → signs packed per pixel: [h][w][words], bit (c mod 32) of word ⌊c/32⌋ set where x ≥ 0. */
export function packActivations(x: Float32Array, c: number, h: number, w: number): Uint32Array {
  const words = wordsFor(c);
  const out = new Uint32Array(h * w * words);
  for (let ch = 0; ch < c; ch++) {
    const bit = 1 << (ch & 31);
    const word = ch >> 5;
    for (let p = 0; p < h * w; p++) if (x[ch * h * w + p] >= 0) out[p * words + word] |= bit;
  }
  return out;
}

/** Tap-major ±1 weights [co][kh][kw][ci] → [co][kh][kw][words], same bit layout. */
export function packWeights(wt: Float32Array, co: number, ci: number, kh: number, kw: number): Uint32Array {
  const words = wordsFor(ci);
  const out = new Uint32Array(co * kh * kw * words);
  for (let t = 0; t < co * kh * kw; t++)
    for (let c = 0; c < ci; c++) if (wt[t * ci + c] >= 0) out[t * words + (c >> 5)] |= 1 << (c & 31);
  return out;
}

/**
 * Bitwise "same" convolution (stride 1, zero padding) of packed ±1 activations with packed ±1 weights: the integer
 * dot products, planar [co][h][w].
 */
export function xnorConv(x: Uint32Array, ci: number, h: number, w: number, k: Uint32Array, co: number, kh: number, kw: number): Int32Array {
  const words = wordsFor(ci);
  const tail = ci & 31 ? (1 << (ci & 31)) - 1 : 0xffffffff;
  const out = new Int32Array(co * h * w);
  const py = (kh - 1) >> 1;
  const px = (kw - 1) >> 1;
  for (let o = 0; o < co; o++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let matches = 0;
        let taps = 0;
        for (let ky = 0; ky < kh; ky++) {
          const sy = y + ky - py;
          if (sy < 0 || sy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const sx = xx + kx - px;
            if (sx < 0 || sx >= w) continue;
            const a = (sy * w + sx) * words;
            const b = ((o * kh + ky) * kw + kx) * words;
            for (let j = 0; j < words - 1; j++) matches += popcount32(~(x[a + j] ^ k[b + j]));
            matches += popcount32(~(x[a + words - 1] ^ k[b + words - 1]) & tail);
            taps++;
          }
        }
        out[(o * h + y) * w + xx] = 2 * matches - taps * ci;
      }
  return out;
}

/** The BinaryConv2D layers of a binarized U-Net, in model order. */
export function binaryConvLayers(model: tf.LayersModel): tf.layers.Layer[] {
  return model.layers.filter((l) => l.getClassName() === 'BinaryConv2D');
}

/**
 * Real-valued binary kernels from a float U-Net's kernels (already loaded into the binarized model, same names):
 * w / σ_layer, clipped to [−1, 1]. The sign — the deterministic network — is the float network's; dividing by the
 * layer's standard deviation puts typical weights near ±1, where a sampled member rarely flips them
 * (P(flip) = (1 − |w|) / 2), while small, uncertain weights stay near 0 and flip often.
 */
export function initBinaryFromFloat(model: tf.LayersModel): void {
  for (const l of binaryConvLayers(model)) {
    const k = l.getWeights()[0];
    const w = new Float32Array(k.dataSync());
    let sq = 0;
    for (const v of w) sq += v * v;
    const sd = Math.sqrt(sq / w.length) || 1;
    for (let i = 0; i < w.length; i++) w[i] = Math.min(1, Math.max(-1, w[i] / sd));
    const t = tf.tensor(w, k.shape);
    l.setWeights([t]);
    t.dispose();
  }
}

/**
 * Fine-tuner hook for the real-valued binary kernels: their Adam step is multiplied by `scale`, then they are clipped
 * to [−1, 1]. Only a sign change alters the network, and a weight initialised near ±0.7 needs ≈ 0.7 / lr steps to
 * flip at Adam's rate: at the fine-tuning rate of 5e-4 that is more steps than a run has; BinaryNet trains its
 * latent weights at rates around 1e-3–1e-2 while batch norm and the float layers want the smaller rate.
 */
export class BinaryKernelUpdates {
  private readonly layers: tf.layers.Layer[];
  private prev: Float32Array[];
  constructor(readonly model: tf.LayersModel, readonly scale: number) {
    this.layers = binaryConvLayers(model);
    this.prev = this.layers.map((l) => new Float32Array(l.getWeights()[0].dataSync()));
  }

  readonly afterApply = (): void => {
    this.prev = this.layers.map((l, k) => {
      const v = l.trainableWeights[0];
      const now = v.read().dataSync();
      const p = this.prev[k];
      const w = new Float32Array(now.length);
      for (let i = 0; i < w.length; i++) w[i] = Math.min(1, Math.max(-1, p[i] + this.scale * (now[i] - p[i])));
      const t = tf.tensor(w, v.shape as number[]);
      v.write(t);
      t.dispose();
      return w;
    });
  };
}

/**
 * Run `fn` with the binary kernels replaced by one ensemble member: sampled ±1 (P(+1) = clip((w + 1) / 2, 0, 1)) with
 * `rng`, or sign(w) without; the real-valued kernels are restored afterwards.
 */
export function withMemberKernels<T>(model: tf.LayersModel, rng: Rng | null, fn: () => T): T {
  const layers = binaryConvLayers(model);
  const saved = layers.map((l) => new Float32Array(l.getWeights()[0].dataSync()));
  const set = (l: tf.layers.Layer, w: Float32Array) => {
    const t = tf.tensor(w, l.getWeights()[0].shape);
    l.setWeights([t]);
    t.dispose();
  };
  layers.forEach((l, k) => set(l, rng ? sampleBinary(saved[k], rng) : signBinary(saved[k])));
  try {
    return fn();
  } finally {
    layers.forEach((l, k) => set(l, saved[k]));
  }
}
