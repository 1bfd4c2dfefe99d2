// Cross-channel intragroup (CCI) sparsity (Yu et al. 2019, arXiv:1910.11971). The input channels of a convolution
// kernel form groups of G consecutive channels; at every (output channel, ky, kx) each group keeps exactly its N
// largest-magnitude weights. Every group then carries the same work, which is what makes a sparse kernel fast: the
// inner loop has a fixed trip count and no branches, and the weights are stored as N (value, channel) pairs per group.
//
// Training keeps dense "shadow" weights: the forward and backward passes see the masked weights, the optimizer's
// update is added to the dense copy, and the mask is recomputed from the dense copy after every step (so a weight
// pruned early can come back). It plugs into the trainer through Replica.afterApply: Adam's step Δ does not depend on
// the weights' values, so shadow ← shadow + (w_after − w_masked) recovers exactly the dense update.
//
// Layout: tfjs Conv2D kernels are [kh, kw, in, out]; the kernels below take planar CHW images and weights as
// [out][ky][kx][in] (the CCI grouping runs along `in`, the fastest axis).
import * as tf from '@tensorflow/tfjs';

export interface CciOptions {
  /** Group size along the input channels. */
  group: number;
  /** Non-zeros kept per group at every (output channel, ky, kx). */
  keep: number;
}

/** Non-zeros kept in a (possibly partial, trailing) group of `size` channels. */
function keepIn(size: number, opts: CciOptions): number {
  return size === opts.group ? opts.keep : Math.max(1, Math.ceil((opts.keep * size) / opts.group));
}

/**
 * The CCI mask of a tfjs Conv2D kernel [kh, kw, ci, co]: 1 where a weight is kept. Ties go to the lower channel, so
 * the mask is a pure function of the weights.
 */
export function cciMask(kernel: Float32Array, shape: readonly number[], opts: CciOptions): Uint8Array {
  const [kh, kw, ci, co] = shape;
  if (kernel.length !== kh * kw * ci * co) throw new RangeError(`kernel of ${kernel.length} values for shape ${shape.join('×')}`);
  const mask = new Uint8Array(kernel.length);
  const order: number[] = [];
  for (let t = 0; t < kh * kw; t++)
    for (let o = 0; o < co; o++)
      for (let g0 = 0; g0 < ci; g0 += opts.group) {
        const size = Math.min(opts.group, ci - g0);
        order.length = 0;
        for (let c = 0; c < size; c++) order.push(c);
        const at = (c: number) => (t * ci + g0 + c) * co + o;
        order.sort((a, b) => Math.abs(kernel[at(b)]) - Math.abs(kernel[at(a)]) || a - b);
        for (let j = 0; j < keepIn(size, opts); j++) mask[at(order[j])] = 1;
      }
  return mask;
}

/** Which kernels CCI applies to: spatial (k > 1) Conv2D kernels with at least one full group of input channels. */
export function cciLayers(model: tf.LayersModel, opts: CciOptions): tf.LayerVariable[] {
  const out: tf.LayerVariable[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Conv2D') continue;
    const k = layer.trainableWeights[0];
    const [kh, kw, ci] = k.shape as number[];
    if (kh * kw > 1 && ci >= opts.group) out.push(k);
  }
  return out;
}

/** Fraction of zero weights over the kernels CCI applies to. */
export function kernelSparsity(model: tf.LayersModel, opts: CciOptions): number {
  let zeros = 0;
  let total = 0;
  for (const v of cciLayers(model, opts)) {
    const d = v.read().dataSync();
    for (let i = 0; i < d.length; i++) zeros += d[i] === 0 ? 1 : 0;
    total += d.length;
  }
  return total ? zeros / total : 0;
}

/**
 * Dense shadow weights with a CCI mask recomputed after every update. Call `apply()` once before training (it masks
 * the model), use `afterApply` as Replica.afterApply, and `dense()` for the shadow weights.
 */
export class CciTraining {
  private readonly vars: tf.LayerVariable[];
  private readonly shadow: Float32Array[];
  private masked: Float32Array[] = [];

  constructor(readonly model: tf.LayersModel, readonly opts: CciOptions) {
    this.vars = cciLayers(model, opts);
    this.shadow = this.vars.map((v) => new Float32Array(v.read().dataSync()));
  }

  /** Mask the model's weights from the shadow copy. */
  apply(): void {
    this.masked = this.vars.map((v, k) => {
      const w = this.shadow[k];
      const m = cciMask(w, v.shape as number[], this.opts);
      const out = w.map((x, i) => (m[i] ? x : 0));
      const t = tf.tensor(out, v.shape as number[]);
      v.write(t);
      t.dispose();
      return out;
    });
  }

  readonly afterApply = (): void => {
    this.vars.forEach((v, k) => {
      const now = v.read().dataSync();
      const prev = this.masked[k];
      const s = this.shadow[k];
      for (let i = 0; i < s.length; i++) s[i] += now[i] - prev[i];
    });
    this.apply();
  };

  dense(): Float32Array[] {
    return this.shadow.map((s) => new Float32Array(s));
  }
}

/** A CCI-sparse 3×3-style kernel in the balanced format: per (o, ky, kx, group), N values and their channels. */
export interface BalancedKernel {
  co: number;
  ci: number;
  kh: number;
  kw: number;
  group: number;
  /** Non-zeros per full group; `perTap` entries per (o, ky, kx). */
  perTap: number;
  values: Float32Array;
  /** Input channel of each value. */
  channels: Uint16Array;
}

/** ONNX-layout weights [co][ci][kh][kw] → [co][kh][kw][ci], the loop order of the kernels below. */
export function toTapMajor(w: Float32Array, co: number, ci: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < co; o++)
    for (let i = 0; i < ci; i++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[((o * kh + y) * kw + x) * ci + i] = w[((o * ci + i) * kh + y) * kw + x];
  return out;
}

/**
 * Pack a tap-major kernel [co][kh][kw][ci] whose every group holds exactly its CCI quota of non-zeros (fewer are
 * padded with explicit zeros, so the structure stays balanced). Channels ascend within a tap.
 */
export function packBalanced(w: Float32Array, co: number, ci: number, kh: number, kw: number, opts: CciOptions): BalancedKernel {
  let perTap = 0;
  for (let g0 = 0; g0 < ci; g0 += opts.group) perTap += keepIn(Math.min(opts.group, ci - g0), opts);
  const taps = co * kh * kw;
  const values = new Float32Array(taps * perTap);
  const channels = new Uint16Array(taps * perTap);
  for (let t = 0; t < taps; t++) {
    let k = t * perTap;
    for (let g0 = 0; g0 < ci; g0 += opts.group) {
      const size = Math.min(opts.group, ci - g0);
      const quota = keepIn(size, opts);
      const nz: number[] = [];
      for (let c = 0; c < size; c++) if (w[t * ci + g0 + c] !== 0) nz.push(g0 + c);
      if (nz.length > quota) throw new RangeError(`tap ${t}, group at ${g0}: ${nz.length} non-zeros, the CCI quota is ${quota}`);
      for (let c = g0; nz.length < quota; c++) if (!nz.includes(c)) nz.push(c);
      nz.sort((a, b) => a - b);
      for (const c of nz) {
        values[k] = w[t * ci + c];
        channels[k++] = c;
      }
    }
  }
  return { co, ci, kh, kw, group: opts.group, perTap, values, channels };
}

/**
 * Dense "same" convolution (stride 1, zero padding) of a planar CHW image with tap-major weights, no bias: the
 * reference the balanced kernel is measured against, written the same way (weight-stationary, row-vector inner loop).
 */
export function convDense(x: Float32Array, ci: number, h: number, w: number, weights: Float32Array, co: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(co * h * w);
  const py = (kh - 1) >> 1;
  const px = (kw - 1) >> 1;
  for (let o = 0; o < co; o++)
    for (let ky = 0; ky < kh; ky++)
      for (let kx = 0; kx < kw; kx++) {
        const base = ((o * kh + ky) * kw + kx) * ci;
        const dx = kx - px;
        const x0 = Math.max(0, -dx);
        const x1 = Math.min(w, w - dx);
        for (let c = 0; c < ci; c++) {
          const wt = weights[base + c];
          accumulateTap(out, o * h * w, x, c * h * w, wt, h, w, ky - py, dx, x0, x1);
        }
      }
  return out;
}

/** The same convolution from a balanced CCI kernel: `perTap` multiply-adds per tap instead of ci. */
export function convBalanced(x: Float32Array, h: number, w: number, k: BalancedKernel): Float32Array {
  const { co, kh, kw, perTap, values, channels } = k;
  const out = new Float32Array(co * h * w);
  const py = (kh - 1) >> 1;
  const px = (kw - 1) >> 1;
  for (let o = 0; o < co; o++)
    for (let ky = 0; ky < kh; ky++)
      for (let kx = 0; kx < kw; kx++) {
        const base = ((o * kh + ky) * kw + kx) * perTap;
        const dx = kx - px;
        const x0 = Math.max(0, -dx);
        const x1 = Math.min(w, w - dx);
        for (let j = 0; j < perTap; j++) accumulateTap(out, o * h * w, x, channels[base + j] * h * w, values[base + j], h, w, ky - py, dx, x0, x1);
      }
  return out;
}

/** out[o][y][x] += wt · in[c][y + dy][x + dx] over the valid rows and columns. */
function accumulateTap(out: Float32Array, oBase: number, x: Float32Array, cBase: number, wt: number, h: number, w: number, dy: number, dx: number, x0: number, x1: number): void {
  const y0 = Math.max(0, -dy);
  const y1 = Math.min(h, h - dy);
  for (let y = y0; y < y1; y++) {
    const orow = oBase + y * w;
    const irow = cBase + (y + dy) * w + dx;
    for (let xx = x0; xx < x1; xx++) out[orow + xx] += wt * x[irow + xx];
  }
}
