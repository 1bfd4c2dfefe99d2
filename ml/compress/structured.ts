// Structured (filter) pruning of the U-Net: whole output channels are removed from convolutions, and the model is
// rebuilt with fewer channels per layer (UNetConfig.widths), so the result is a smaller *dense* network that every
// runtime (tfjs, ONNX Runtime, int8) runs faster without sparse kernels. Fine-tuning afterwards is the trainer's job
// (main/engine/train.ts with `init` = the pruned weights).
//
// Importance of a filter (Li et al. 2017, "Pruning filters for efficient ConvNets", with batch norm folded in as in
// network slimming, Liu et al. 2017): the L1 norm of its kernel times |γ|/√(σ² + ε) of the batch norm that follows,
// i.e. the L1 norm of the filter the ONNX export will actually run. Transposed convolutions (no batch norm) use the
// plain L1 norm. Every prunable layer keeps the same fraction of its filters (at least one), the highest-scoring.
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

function consumers(model: tf.LayersModel): Map<string, LayerLike[]> {
  const m = new Map<string, LayerLike[]>();
  for (const l of layersOf(model)) for (const src of l.inboundNodes[0]?.inboundLayers ?? []) m.set(src.name, [...(m.get(src.name) ?? []), l]);
  return m;
}

/** Folded L1 norm of every filter of every prunable layer. */
export function filterImportance(model: tf.LayersModel): Map<string, Float32Array> {
  const next = consumers(model);
  const out = new Map<string, Float32Array>();
  for (const layer of layersOf(model)) {
    const key = widthKey(layer.name);
    if (!key) continue;
    const kernel = layer.getWeights()[0];
    const data = kernel.dataSync() as Float32Array;
    const shape = kernel.shape as number[];
    // Conv2D [kh, kw, in, out]; Conv2DTranspose [kh, kw, out, in].
    const transposed = layer.getClassName() === 'Conv2DTranspose';
    const co = transposed ? shape[2] : shape[3];
    const ci = transposed ? shape[3] : shape[2];
    const score = new Float32Array(co);
    for (let i = 0; i < data.length; i++) {
      const o = transposed ? Math.floor(i / ci) % co : i % co;
      score[o] += Math.abs(data[i]);
    }
    const bn = next.get(layer.name)?.find((l) => l.getClassName() === 'BatchNormalization');
    if (bn) {
      const eps = bn.getConfig().epsilon as number;
      const [gamma, , , variance] = bn.getWeights().map((t) => t.dataSync() as Float32Array);
      for (let o = 0; o < co; o++) score[o] *= Math.abs(gamma[o]) / Math.sqrt(variance[o] + eps);
    }
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

function lastDim(shape: tf.Shape | tf.Shape[]): number {
  const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tf.Shape;
  return s[s.length - 1] as number;
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

/** Copy `src`'s weights into the pruned model `dst` (same layer names), cutting kernels to the kept channels. */
export function transferPrunedWeights(src: tf.LayersModel, dst: tf.LayersModel, kept: KeptChannels): void {
  const maps = channelMaps(src, kept);
  const byName = new Map(layersOf(src).map((l) => [l.name, l]));
  for (const layer of layersOf(dst)) {
    const from = byName.get(layer.name);
    if (!from) throw new Error(`pruned model has a layer ${layer.name} the source lacks`);
    const ws = from.getWeights();
    if (ws.length === 0) continue;
    const inMap = maps.get((from.inboundNodes[0]?.inboundLayers ?? [])[0]?.name ?? '') ?? [];
    const outMap = maps.get(from.name)!;
    const cut = tf.tidy(() => {
      const idx = (a: number[]) => tf.tensor1d(a, 'int32');
      switch (from.getClassName()) {
        case 'Conv2D': {
          const [k, b] = ws;
          const kk = tf.gather(tf.gather(k, idx(inMap), 2), idx(outMap), 3);
          return b ? [kk, tf.gather(b, idx(outMap))] : [kk];
        }
        case 'Conv2DTranspose': {
          const [k, b] = ws;
          const kk = tf.gather(tf.gather(k, idx(outMap), 2), idx(inMap), 3);
          return b ? [kk, tf.gather(b, idx(outMap))] : [kk];
        }
        case 'BatchNormalization':
          return ws.map((w) => tf.gather(w, idx(inMap)));
        default:
          throw new Error(`structured pruning: layer ${from.name} (${from.getClassName()}) with weights is not supported`);
      }
    });
    layer.setWeights(cut);
    tf.dispose(cut);
  }
}

/** Prune a U-Net to `keepFraction` of the filters of every layer: the smaller config and its model, weights set. */
export function pruneUNet(model: tf.LayersModel, cfg: UNetConfig, keepFraction: number): { config: UNetConfig; model: tf.LayersModel; kept: KeptChannels } {
  const kept = chooseKept(filterImportance(model), keepFraction);
  const config = prunedConfig(cfg, kept);
  const pruned = buildUNet(config);
  transferPrunedWeights(model, pruned, kept);
  return { config, model: pruned, kept };
}
