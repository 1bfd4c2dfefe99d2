// Structured (filter) pruning of the U-Net: whole output channels are removed from convolutions, and the model is
// rebuilt with fewer channels per layer (UNetConfig.widths), so the result is a smaller *dense* network that every
// runtime (tfjs, ONNX Runtime, int8) runs faster without sparse kernels. Fine-tuning afterwards is the trainer's job
// (main/engine/train.ts with `init` = the pruned weights).
//
// Every prunable layer keeps the same fraction of its filters (at least one). Which ones, and what the network does
// without the others, is decided on activations of a few normalised training crops (`crops`):
// - Importance: greedy backward elimination by the Optimal Brain Surgeon cost of a channel (eliminationOrder): what
//   every convolution reading the channel loses when the channel is taken out and the channels still there are
//   refitted by least squares. A filter that is constant, or a linear function of its neighbours, costs nothing.
// - Compensation: each convolution is refitted, in graph order, to what the source computed, from the input the
//   pruned network actually gives it (refitConsumers; He et al. 2017 without the lasso).
// Why: a removed filter's output is not zero. After batch norm and ReLU it has a mean (about relu(β_eff)) and a
// variation around it; dropping the smallest-L1 tenth of the filters with nothing in their place shifted every
// consumer and took the ISBI 2012 validation V_rand (slices 20-29, 0 fine-tuning steps) from 0.970 to 0.10. Folding
// the removed channels' means into their consumers (`compensate: 'mean'`, bias compensation) brought it to 0.78; the
// variation matters too: `emseg compress --steps 0` now scores 0.971, 0.956 and 0.887 at keep 0.9, 0.75 and 0.5.
// The refit is worth the ~40 s it takes: the non-sequential least-squares substitute fitted on the source alone
// gave 0.963, 0.932, 0.896. Orders compared on one set of crops, all refitted, keep 0.9 / 0.75 / 0.5: elimination
// 0.965 / 0.951 / 0.907, folded L1 0.954 / 0.931 / 0.899, mean |activation − mean| times the outgoing folded
// weights 0.963 / 0.944 / 0.849.
//
// Without crops (the speed benchmark, which only needs the pruned shape) the importance is the L1 norm of the
// batch-norm-folded filter (Li et al. 2017 with network slimming's |γ|/√(σ² + ε), Liu et al. 2017) and nothing is
// compensated.
//
// Weight transfer traces the layer graph: each layer's surviving output channels are known (a convolution's kept
// filters; batch norm, ReLU, pooling pass their input's through; a concatenation joins its inputs' with offsets), so
// every kernel is cut along both its input and its output axis.
import * as tf from '@tensorflow/tfjs';
import { buildUNet, type UNetConfig } from '../models/unet';

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  setWeights(w: tf.Tensor[]): void;
  outputShape: tf.Shape | tf.Shape[];
  output: tf.SymbolicTensor | tf.SymbolicTensor[];
  inboundNodes: Array<{ inboundLayers: LayerLike[] }>;
}

/** Kept output channels per prunable layer, by UNetConfig.widths key (enc0a, up1, …), ascending indices. */
export type KeptChannels = Record<string, number[]>;

const PRUNABLE = /^(enc\d+[ab]|bottom[ab]|dec\d+[ab])_conv$|^(up\d+)$/;

/** The widths key of a prunable layer (enc0a_conv → enc0a, up2 → up2), or null. */
export function widthKey(layerName: string): string | null {
  const m = PRUNABLE.exec(layerName);
  return m ? (m[1] ?? m[2]) : null;
}

function layersOf(model: tf.LayersModel): LayerLike[] {
  return model.layers as unknown as LayerLike[];
}

function layerOf(model: tf.LayersModel, name: string): LayerLike {
  return model.getLayer(name) as unknown as LayerLike;
}

function consumers(model: tf.LayersModel): Map<string, LayerLike[]> {
  const m = new Map<string, LayerLike[]>();
  for (const l of layersOf(model)) for (const src of l.inboundNodes[0]?.inboundLayers ?? []) m.set(src.name, [...(m.get(src.name) ?? []), l]);
  return m;
}

function isConv(l: LayerLike): boolean {
  const cls = l.getClassName();
  return cls === 'Conv2D' || cls === 'Conv2DTranspose';
}

function inputOf(l: LayerLike): LayerLike | undefined {
  return l.inboundNodes[0]?.inboundLayers[0];
}

function lastDim(shape: tf.Shape | tf.Shape[]): number {
  const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  return s[s.length - 1] as number;
}

function batchNormAfter(layer: LayerLike, next: Map<string, LayerLike[]>): LayerLike | undefined {
  return next.get(layer.name)?.find((l) => l.getClassName() === 'BatchNormalization');
}

/** |γ|/√(σ² + ε) per channel of the batch norm after `layer`, or null if none follows. */
function foldedScale(layer: LayerLike, next: Map<string, LayerLike[]>): Float32Array | null {
  const bn = batchNormAfter(layer, next);
  if (!bn) return null;
  const eps = bn.getConfig().epsilon as number;
  const [gamma, , , variance] = bn.getWeights().map((t) => t.dataSync() as Float32Array);
  return Float32Array.from(gamma, (g, o) => Math.abs(g) / Math.sqrt(variance[o] + eps));
}

/** A convolution's kernel values with its sizes and the flat index of (tap t, input channel c, output channel o). */
function kernelOf(layer: LayerLike) {
  const kernel = layer.getWeights()[0];
  const data = kernel.dataSync() as Float32Array;
  const [kh, kw, a, b] = kernel.shape as number[];
  // Conv2D [kh, kw, in, out]; Conv2DTranspose [kh, kw, out, in].
  const transposed = layer.getClassName() === 'Conv2DTranspose';
  const ci = transposed ? b : a;
  const co = transposed ? a : b;
  const at = transposed ? (t: number, c: number, o: number) => (t * co + o) * ci + c : (t: number, c: number, o: number) => (t * ci + c) * co + o;
  return { data, taps: kh * kw, ci, co, transposed, at };
}

/** Per channel of every convolution's input (by the name of the layer producing it), on crops through the source. */
export interface ActivationStats {
  /** Mean of each channel: the constant that replaces a removed one (compensate: 'mean'). */
  mean: Map<string, Float32Array>;
  /** Channel covariance (C × C, row-major): how well the other channels explain a channel (the importance). */
  covariance: Map<string, Float64Array>;
}

/** Channel means and covariances of every convolution's input (the raw slice excepted) on `crops` (normalised, NHWC). */
export function activationStats(model: tf.LayersModel, crops: readonly tf.Tensor4D[]): ActivationStats {
  if (crops.length === 0) throw new RangeError('activationStats needs at least one crop');
  const names = new Set<string>();
  for (const l of layersOf(model)) {
    const input = inputOf(l);
    if (isConv(l) && input && input.getClassName() !== 'InputLayer') names.add(input.name);
  }
  const layers = layersOf(model).filter((l) => names.has(l.name));
  // The probe shares the model's layers: never dispose it (that would dispose the weights).
  const probe = tf.model({ inputs: model.inputs, outputs: layers.map((l) => l.output as tf.SymbolicTensor) });
  const sums = layers.map((l) => new Float64Array(lastDim(l.outputShape)));
  const grams = layers.map((l) => new Float64Array(lastDim(l.outputShape) ** 2));
  const counts = layers.map(() => 0);
  for (const x of crops) {
    const parts = tf.tidy(() => {
      const y = probe.predict(x);
      return (Array.isArray(y) ? y : [y]).map((a) => {
        const flat = tf.reshape(a, [-1, a.shape[a.shape.length - 1]]);
        return [tf.sum(flat, 0).dataSync(), tf.matMul(flat, flat, true, false).dataSync(), flat.shape[0]] as const;
      });
    });
    parts.forEach(([s, g, n], k) => {
      for (let c = 0; c < s.length; c++) sums[k][c] += s[c];
      for (let i = 0; i < g.length; i++) grams[k][i] += g[i];
      counts[k] += n;
    });
  }
  const mean = new Map<string, Float32Array>();
  const covariance = new Map<string, Float64Array>();
  layers.forEach((l, k) => {
    const m = sums[k].map((v) => v / counts[k]);
    const c = m.length;
    mean.set(l.name, Float32Array.from(m));
    covariance.set(l.name, grams[k].map((g, i) => g / counts[k] - m[Math.floor(i / c)] * m[i % c]));
  });
  return { mean, covariance };
}

/** For every channel of every layer's output, the prunable filter it comes from (widths key and index), or null. */
function channelOrigins(model: tf.LayersModel): Map<string, Array<[string, number] | null>> {
  const origins = new Map<string, Array<[string, number] | null>>();
  for (const layer of layersOf(model)) {
    const ins = layer.inboundNodes[0]?.inboundLayers ?? [];
    const key = widthKey(layer.name);
    const n = lastDim(layer.outputShape);
    if (key) origins.set(layer.name, Array.from({ length: n }, (_, c): [string, number] => [key, c]));
    else if (layer.getClassName() === 'InputLayer' || isConv(layer)) origins.set(layer.name, new Array<null>(n).fill(null));
    else if (layer.getClassName() === 'Concatenate') origins.set(layer.name, ins.flatMap((l) => origins.get(l.name)!));
    else origins.set(layer.name, origins.get(ins[0].name)!);
  }
  return origins;
}

/**
 * The ridge of every least-squares fit here: 1e-3 of the channels' mean variance. It only keeps dead (always-zero)
 * and duplicate channels from making the systems singular; V_rand after pruning is the same from 1e-5 to 1e-2.
 */
function ridgeOf(cov: Float64Array, n: number): number {
  let trace = 0;
  for (let i = 0; i < n; i++) trace += cov[i * n + i];
  return (1e-3 * trace) / Math.max(n, 1) + 1e-12;
}

/** Solve (M + λI) X = B for symmetric positive semi-definite M (n × n) and B (n × m), by Cholesky; row-major. */
function ridgeSolve(M: Float64Array, n: number, B: Float64Array, m: number, lambda: number): Float64Array {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let v = M[i * n + j] + (i === j ? lambda : 0);
      for (let k = 0; k < j; k++) v -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = i === j ? Math.sqrt(Math.max(v, 1e-300)) : v / L[j * n + j];
    }
  }
  const X = Float64Array.from(B);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let v = X[i * m + c];
      for (let k = 0; k < i; k++) v -= L[i * n + k] * X[k * m + c];
      X[i * m + c] = v / L[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) {
      let v = X[i * m + c];
      for (let k = i + 1; k < n; k++) v -= L[k * n + i] * X[k * m + c];
      X[i * m + c] = v / L[i * n + i];
    }
  }
  return X;
}

/**
 * Greedy backward elimination of one layer's filters, Optimal Brain Surgeon on channels. Every convolution that reads
 * the filter's channel computes z = Σ_c W_c·x_c (W_c over taps and outputs, each output scaled by the batch norm
 * after it, so that errors count in normalised units; a transposed convolution's output pixel sees one of its taps,
 * so each tap counts 1/taps). Taking channel j out and refitting the others by least squares costs ‖W_j‖²/P_jj, P the
 * inverse covariance of the channels still there (1/P_jj: the variance of x_j the others cannot explain). The
 * cheapest filter goes, the others' W and P are updated (the refit and a Schur complement), and so on; a filter's
 * score is the step at which it went, so the `keepFraction` that go last are kept.
 */
function eliminationOrder(model: tf.LayersModel, stats: ActivationStats, key: string, n: number): Float32Array {
  const next = consumers(model);
  const origins = channelOrigins(model);
  const readers: Array<{ P: Float64Array; size: number; chan: Int32Array; W: Float64Array[] }> = [];
  for (const layer of layersOf(model)) {
    const input = inputOf(layer);
    if (!isConv(layer) || !input) continue;
    const from = origins.get(input.name)!;
    // chan[c]: where filter c of `key` sits in this convolution's input (a concatenation offsets it), or −1.
    const chan = new Int32Array(n).fill(-1);
    from.forEach((o, j) => {
      if (o && o[0] === key) chan[o[1]] = j;
    });
    if (chan.every((j) => j < 0)) continue;
    const size = from.length;
    const cov = stats.covariance.get(input.name)!;
    const identity = new Float64Array(size * size);
    for (let i = 0; i < size; i++) identity[i * size + i] = 1;
    const k = kernelOf(layer);
    const scale = foldedScale(layer, next);
    const tapWeight = k.transposed ? 1 / Math.sqrt(k.taps) : 1;
    const W = Array.from(chan, (j) => {
      const w = new Float64Array(k.taps * k.co);
      if (j >= 0) for (let t = 0; t < k.taps; t++) for (let o = 0; o < k.co; o++) w[t * k.co + o] = k.data[k.at(t, j, o)] * (scale ? scale[o] : 1) * tapWeight;
      return w;
    });
    readers.push({ P: ridgeSolve(cov, size, identity, size, ridgeOf(cov, size)), size, chan, W });
  }
  const order = new Float32Array(n);
  const alive = new Set(Array.from({ length: n }, (_, c) => c));
  for (let step = 0; step < n; step++) {
    let best = -1;
    let bestCost = Infinity;
    for (const c of alive) {
      let cost = 0;
      for (const r of readers) {
        const j = r.chan[c];
        if (j < 0) continue;
        let w2 = 0;
        for (const v of r.W[c]) w2 += v * v;
        cost += w2 / r.P[j * r.size + j];
      }
      if (cost < bestCost) [best, bestCost] = [c, cost];
    }
    order[best] = step;
    alive.delete(best);
    for (const r of readers) {
      const j = r.chan[best];
      if (j < 0) continue;
      const { P, size } = r;
      const pjj = P[j * size + j];
      // The survivors absorb x_j ≈ −Σ_k (P_kj/P_jj)·x_k.
      for (const c of alive) {
        const k = r.chan[c];
        if (k < 0) continue;
        const f = P[k * size + j] / pjj;
        const wk = r.W[c];
        const wj = r.W[best];
        for (let i = 0; i < wk.length; i++) wk[i] -= f * wj[i];
      }
      // Schur complement: the inverse covariance of the channels left (row and column j become 0).
      const col = Array.from({ length: size }, (_, a) => P[a * size + j]);
      for (let a = 0; a < size; a++) {
        if (col[a] === 0) continue;
        for (let b = 0; b < size; b++) P[a * size + b] -= (col[a] * col[b]) / pjj;
      }
    }
  }
  return order;
}

export type ImportanceCriterion = 'l1' | 'reconstruction';

/**
 * Importance of every filter of every prunable layer, by widths key: 'reconstruction' (needs `stats`; the default
 * when given) ranks by eliminationOrder, 'l1' is the L1 norm of the batch-norm-folded kernel (transposed
 * convolutions, with no batch norm after them, the plain L1 norm).
 */
export function filterImportance(model: tf.LayersModel, stats?: ActivationStats, criterion: ImportanceCriterion = stats ? 'reconstruction' : 'l1'): Map<string, Float32Array> {
  if (criterion === 'reconstruction' && !stats) throw new Error("importance 'reconstruction' needs activation statistics");
  const next = consumers(model);
  const out = new Map<string, Float32Array>();
  for (const layer of layersOf(model)) {
    const key = widthKey(layer.name);
    if (!key) continue;
    if (criterion === 'reconstruction') {
      out.set(key, eliminationOrder(model, stats!, key, lastDim(layer.outputShape)));
      continue;
    }
    const k = kernelOf(layer);
    const score = new Float32Array(k.co);
    for (let t = 0; t < k.taps; t++) for (let c = 0; c < k.ci; c++) for (let o = 0; o < k.co; o++) score[o] += Math.abs(k.data[k.at(t, c, o)]);
    const scale = foldedScale(layer, next);
    if (scale) for (let o = 0; o < k.co; o++) score[o] *= scale[o];
    out.set(key, score);
  }
  return out;
}

/** The `keepFraction` highest-scoring filters of each layer (at least one), as ascending indices. */
export function chooseKept(importance: Map<string, Float32Array>, keepFraction: number): KeptChannels {
  if (!(keepFraction > 0 && keepFraction <= 1)) throw new RangeError(`keepFraction must be in (0, 1], got ${keepFraction}`);
  const kept: KeptChannels = {};
  for (const [key, score] of importance) {
    const n = Math.max(1, Math.round(score.length * keepFraction));
    const order = Array.from(score.keys()).sort((a, b) => score[b] - score[a] || a - b);
    kept[key] = order.slice(0, n).sort((a, b) => a - b);
  }
  return kept;
}

export function prunedConfig(cfg: UNetConfig, kept: KeptChannels): UNetConfig {
  return { ...cfg, widths: Object.fromEntries(Object.entries(kept).map(([k, v]) => [k, v.length])) };
}

/** Surviving output channels (indices into the source layer's outputs) of every layer of `src`. */
export function channelMaps(src: tf.LayersModel, kept: KeptChannels): Map<string, number[]> {
  const maps = new Map<string, number[]>();
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  for (const layer of layersOf(src)) {
    const ins = layer.inboundNodes[0]?.inboundLayers ?? [];
    const key = widthKey(layer.name);
    const cls = layer.getClassName();
    if (key && kept[key]) maps.set(layer.name, kept[key]);
    else if (cls === 'InputLayer' || cls === 'Conv2D' || cls === 'Conv2DTranspose') maps.set(layer.name, all(lastDim(layer.outputShape)));
    else if (cls === 'Concatenate') {
      const joined: number[] = [];
      let offset = 0;
      for (const l of ins) {
        for (const c of maps.get(l.name)!) joined.push(offset + c);
        offset += lastDim(l.outputShape);
      }
      maps.set(layer.name, joined);
    } else maps.set(layer.name, maps.get(ins[0].name)!);
  }
  return maps;
}

/**
 * Bias compensation: for every convolution of `src` that loses input channels, the shift per output channel that the
 * removed channels' means contributed (Σ over taps of K[tap, c, o]·mean_c for a Conv2D, where every output pixel
 * sees every tap; the same averaged over the taps of a stride-2 Conv2DTranspose, where each output pixel sees one).
 * Means are those of the convolution's own input, so they are taken after max pooling and at a concatenation's
 * offsets. Exact for a constant channel away from the slice border (zero padding there contributes no constant).
 */
function lostShift(src: tf.LayersModel, maps: Map<string, number[]>, mean: Map<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const layer of layersOf(src)) {
    const input = inputOf(layer);
    if (!isConv(layer) || !input) continue;
    const keptIn = new Set(maps.get(input.name)!);
    const k = kernelOf(layer);
    const removed = Array.from({ length: k.ci }, (_, c) => c).filter((c) => !keptIn.has(c));
    if (removed.length === 0) continue;
    const m = mean.get(input.name);
    if (!m) throw new Error(`structured pruning: no activation mean for ${input.name}, the input of ${layer.name}`);
    const shift = new Float32Array(k.co);
    for (let t = 0; t < k.taps; t++) for (const c of removed) for (let o = 0; o < k.co; o++) shift[o] += k.data[k.at(t, c, o)] * m[c];
    if (k.transposed) for (let o = 0; o < k.co; o++) shift[o] /= k.taps;
    out.set(layer.name, shift);
  }
  return out;
}

/**
 * Copy `src`'s weights into the pruned model `dst` (same layer names), cutting kernels to the kept channels. With
 * `mean` (activationStats(src, …).mean) removed input channels are replaced by their means: a convolution with a bias
 * adds the lost shift to it; one without subtracts it from the moving mean of the batch norm after it. The moving mean
 * rather than β (adding γ·shift/√(σ² + ε) to β is the same at inference): in training mode batch norm subtracts the
 * batch mean, which loses the shift by itself, so an offset in β would be wrong once fine-tuning starts.
 */
export function transferPrunedWeights(src: tf.LayersModel, dst: tf.LayersModel, kept: KeptChannels, mean?: Map<string, Float32Array>): void {
  const maps = channelMaps(src, kept);
  const shifts = mean ? lostShift(src, maps, mean) : new Map<string, Float32Array>();
  const next = consumers(src);
  for (const name of shifts.keys()) {
    const conv = layerOf(src, name);
    if (conv.getWeights().length < 2 && !batchNormAfter(conv, next)) throw new Error(`structured pruning: ${name} has neither a bias nor a batch norm to compensate removed inputs in`);
  }
  const byName = new Map(layersOf(src).map((l) => [l.name, l]));
  for (const layer of layersOf(dst)) {
    const from = byName.get(layer.name);
    if (!from) throw new Error(`pruned model has a layer ${layer.name} the source lacks`);
    const ws = from.getWeights();
    if (ws.length === 0) continue;
    const inMap = maps.get(inputOf(from)?.name ?? '') ?? [];
    const outMap = maps.get(from.name)!;
    const cut = tf.tidy(() => {
      const idx = (a: number[]) => tf.tensor1d(a, 'int32');
      const shift = shifts.get(from.name);
      const biasOf = (b: tf.Tensor) => tf.gather(shift ? tf.add(b, tf.tensor1d(shift)) : b, idx(outMap));
      switch (from.getClassName()) {
        case 'Conv2D': {
          const [k, b] = ws;
          const kk = tf.gather(tf.gather(k, idx(inMap), 2), idx(outMap), 3);
          return b ? [kk, biasOf(b)] : [kk];
        }
        case 'Conv2DTranspose': {
          const [k, b] = ws;
          const kk = tf.gather(tf.gather(k, idx(outMap), 2), idx(inMap), 3);
          return b ? [kk, biasOf(b)] : [kk];
        }
        case 'BatchNormalization': {
          const conv = inputOf(from)!;
          const convShift = conv.getWeights().length < 2 ? shifts.get(conv.name) : undefined;
          const [gamma, beta, movingMean, movingVariance] = ws;
          const mm = convShift ? tf.sub(movingMean, tf.tensor1d(convShift)) : movingMean;
          return [gamma, beta, mm, movingVariance].map((w) => tf.gather(w, idx(inMap)));
        }
        default:
          throw new Error(`structured pruning: layer ${from.name} (${from.getClassName()}) with weights is not supported`);
      }
    });
    // Fresh tensors from the values: tfjs-wasm's gather leaves its output's backend record at rank 4, and a fused
    // Conv2D then rejects such a bias ("only supports rank-1 bias") when the pruned model itself runs in wasm.
    const fresh = cut.map((t) => tf.tensor(t.dataSync(), t.shape));
    tf.dispose(cut);
    layer.setWeights(fresh);
    tf.dispose(fresh);
  }
}

/**
 * Refit every convolution of the pruned model `dst` to what its source computed, layer by layer in graph order (as in
 * He et al. 2017, "Channel pruning for accelerating very deep neural networks", without their lasso). On the crops,
 * every source input channel x_c, kept or not, is regressed on the pruned model's actual input x' (its kept channels,
 * already carrying every upstream change): x_c ≈ Σ_k A[c][k]·x'_k + b_c. Per pixel, so it folds into the kernel
 * exactly, tap by tap: K' = K·A, and the constant Σ K·b goes into the bias, or off the moving mean of the batch norm
 * after (see transferPrunedWeights; averaged over taps for a transposed convolution). Upstream errors are corrected
 * where they arrive instead of piling up through the network. Convolutions of the raw slice keep their weights.
 */
export function refitConsumers(src: tf.LayersModel, dst: tf.LayersModel, kept: KeptChannels, crops: readonly tf.Tensor4D[]): void {
  if (crops.length === 0) throw new RangeError('refitConsumers needs at least one crop');
  const maps = channelMaps(src, kept);
  const next = consumers(src);
  for (const layer of layersOf(src)) {
    const input = inputOf(layer);
    if (!isConv(layer) || !input || input.getClassName() === 'InputLayer') continue;
    const inMap = maps.get(input.name)!;
    const outMap = maps.get(layer.name)!;
    const c = lastDim(input.outputShape);
    const nk = inMap.length;
    // Probes share the models' layers: never dispose them (that would dispose the weights).
    const probeSrc = tf.model({ inputs: src.inputs, outputs: input.output as tf.SymbolicTensor });
    const probeDst = tf.model({ inputs: dst.inputs, outputs: layerOf(dst, input.name).output as tf.SymbolicTensor });
    const sx = new Float64Array(c);
    const sd = new Float64Array(nk);
    const gdd = new Float64Array(nk * nk);
    const gxd = new Float64Array(c * nk);
    let n = 0;
    for (const x of crops) {
      const [a, b, g, h, count] = tf.tidy(() => {
        const xs = tf.reshape(probeSrc.predict(x) as tf.Tensor, [-1, c]);
        const xd = tf.reshape(probeDst.predict(x) as tf.Tensor, [-1, nk]);
        return [tf.sum(xs, 0).dataSync(), tf.sum(xd, 0).dataSync(), tf.matMul(xd, xd, true, false).dataSync(), tf.matMul(xs, xd, true, false).dataSync(), xs.shape[0]] as const;
      });
      for (let i = 0; i < c; i++) sx[i] += a[i];
      for (let i = 0; i < nk; i++) sd[i] += b[i];
      for (let i = 0; i < g.length; i++) gdd[i] += g[i];
      for (let i = 0; i < h.length; i++) gxd[i] += h[i];
      n += count;
    }
    const mx = sx.map((v) => v / n);
    const md = sd.map((v) => v / n);
    const covDD = gdd.map((v, i) => v / n - md[Math.floor(i / nk)] * md[i % nk]);
    // Right-hand side Cov(x', x) (nk × c), so that the solution is Aᵀ.
    const covDX = new Float64Array(nk * c);
    for (let i = 0; i < c; i++) for (let k = 0; k < nk; k++) covDX[k * c + i] = gxd[i * nk + k] / n - mx[i] * md[k];
    const At = ridgeSolve(covDD, nk, covDX, c, ridgeOf(covDD, nk));
    const offset = Float64Array.from(mx, (m, i) => {
      let v = m;
      for (let k = 0; k < nk; k++) v -= At[k * c + i] * md[k];
      return v;
    });
    const K = kernelOf(layer);
    const no = outMap.length;
    const at = K.transposed ? (t: number, k: number, o: number) => (t * no + o) * nk + k : (t: number, k: number, o: number) => (t * nk + k) * no + o;
    const kernel = new Float32Array(K.taps * nk * no);
    const shift = new Float32Array(no);
    for (let t = 0; t < K.taps; t++) {
      outMap.forEach((o, oi) => {
        for (let i = 0; i < c; i++) {
          const w = K.data[K.at(t, i, o)];
          if (w === 0) continue;
          shift[oi] += w * offset[i];
          for (let k = 0; k < nk; k++) kernel[at(t, k, oi)] += w * At[k * c + i];
        }
      });
    }
    if (K.transposed) for (let o = 0; o < no; o++) shift[o] /= K.taps;
    const target = layerOf(dst, layer.name);
    const ws = layer.getWeights();
    const fresh = [tf.tensor(kernel, target.getWeights()[0].shape)];
    if (ws.length > 1) {
      const bias = ws[1].dataSync();
      fresh.push(tf.tensor1d(outMap.map((o, oi) => bias[o] + shift[oi])));
    } else {
      const bn = batchNormAfter(layer, next);
      if (!bn) throw new Error(`structured pruning: ${layer.name} has neither a bias nor a batch norm to refit`);
      const [gamma, beta, movingMean, movingVariance] = bn.getWeights().map((w) => w.dataSync());
      const bnFresh = [
        tf.tensor1d(outMap.map((o) => gamma[o])),
        tf.tensor1d(outMap.map((o) => beta[o])),
        tf.tensor1d(outMap.map((o, oi) => movingMean[o] - shift[oi])),
        tf.tensor1d(outMap.map((o) => movingVariance[o])),
      ];
      layerOf(dst, bn.name).setWeights(bnFresh);
      tf.dispose(bnFresh);
    }
    target.setWeights(fresh);
    tf.dispose(fresh);
  }
}

/** How removed channels are made up for: not at all, by their means (bias compensation), or by refitConsumers. */
export type Compensation = 'none' | 'mean' | 'refit';

export interface PruneOptions {
  /**
   * Normalised training crops (NHWC) run through the source model: their statistics choose the filters
   * ('reconstruction' importance) and compensate the removed ones. Without them: folded-L1 importance and no
   * compensation (the speed benchmark, which only needs the pruned shape).
   */
  crops?: readonly tf.Tensor4D[];
  /** Override of the importance criterion (default 'reconstruction' with crops, 'l1' without). */
  importance?: ImportanceCriterion;
  /** Default 'refit' with crops (the only choice without them is 'none'). */
  compensate?: Compensation;
}

/** Prune a U-Net to `keepFraction` of the filters of every layer: the smaller config and its model, weights set. */
export function pruneUNet(model: tf.LayersModel, cfg: UNetConfig, keepFraction: number, opts: PruneOptions = {}): { config: UNetConfig; model: tf.LayersModel; kept: KeptChannels } {
  const crops = opts.crops && opts.crops.length > 0 ? opts.crops : undefined;
  const how = opts.compensate ?? (crops ? 'refit' : 'none');
  if (how !== 'none' && !crops) throw new Error(`structured pruning: compensation '${how}' needs crops`);
  const stats = crops ? activationStats(model, crops) : undefined;
  const importance = filterImportance(model, stats, opts.importance);
  const kept = chooseKept(importance, keepFraction);
  const config = prunedConfig(cfg, kept);
  const pruned = buildUNet(config);
  // Nothing removed (keep 1, or near it on small layers): the source's weights as they are, not refitted through the ridge.
  const removes = [...importance].some(([key, score]) => kept[key].length < score.length);
  transferPrunedWeights(model, pruned, kept, how === 'mean' && removes ? stats?.mean : undefined);
  if (how === 'refit' && removes) refitConsumers(model, pruned, kept, crops!);
  return { config, model: pruned, kept };
}
