// Export of EMSeg's tfjs models to ONNX (opset 13, NCHW) for fast inference with ONNX Runtime. Batch norm is folded
// into the preceding convolution, and a Sigmoid is appended so the graph outputs P(membrane) directly.
//
// Supported layers are exactly those EMSeg's models use: InputLayer, Conv2D (+ linear/relu activation),
// BatchNormalization, ReLU, MaxPooling2D, Conv2DTranspose, Concatenate, ZeroPadding2D, Cropping2D, the refiner's
// ShiftPad2D and ChannelSlice, and the binarized U-Net's BinarySign and BinaryConv2D. The sign is exported as
// Where(x ≥ 0, +1, −1) (ONNX's Sign has sign(0) = 0; EMSeg's is +1); a BinaryConv2D becomes that sign on its input
// and an ordinary Conv whose weights are sign(kernel) (an ensemble member samples its ±1 kernels before export), with
// the batch norm folded in as for any convolution.
import type * as tf from '@tensorflow/tfjs';
import { encodeModel, TensorType, type OnnxGraph, type OnnxNode, type OnnxTensor } from './proto';
import { floatsToHalf } from './half';

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  inboundNodes: Array<{ inboundLayers: LayerLike[] }>;
}

export const ONNX_INPUT = 'input';
export const ONNX_OUTPUT = 'membrane';

/** tfjs conv kernel [kh, kw, in, out] → ONNX [out, in, kh, kw]. */
function convKernel(k: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = k[((y * kw + x) * ci + i) * co + o];
  return out;
}

/** tfjs transposed-conv kernel [kh, kw, out, in] → ONNX ConvTranspose [in, out, kh, kw]. */
function convTransposeKernel(k: Float32Array, [kh, kw, co, ci]: number[]): Float32Array {
  const out = new Float32Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let o = 0; o < co; o++)
        for (let i = 0; i < ci; i++) out[((i * co + o) * kh + y) * kw + x] = k[((y * kw + x) * co + o) * ci + i];
  return out;
}

function samePads(k: number): [number, number] {
  const total = k - 1;
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export function modelToOnnxGraph(model: tf.LayersModel, name = 'emseg'): OnnxGraph {
  const layers = model.layers as unknown as LayerLike[];
  const consumers = new Map<string, LayerLike[]>();
  for (const l of layers) for (const src of l.inboundNodes[0]?.inboundLayers ?? []) consumers.set(src.name, [...(consumers.get(src.name) ?? []), l]);
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const outName = new Map<string, string>();
  let inChannels = 1;
  const f32 = (n: string, dims: number[], data: Float32Array) => inits.push({ name: n, dims, type: TensorType.FLOAT, data });
  const i64 = (n: string, values: number[]) => inits.push({ name: n, dims: [values.length], type: TensorType.INT64, data: BigInt64Array.from(values.map(BigInt)) });
  const folded = new Set<string>();
  let signConstants = false;
  /** sign(x) with sign(0) = +1, as Where(x ≥ 0, 1, −1); returns the output name. */
  const signNode = (input: string, output: string): string => {
    if (!signConstants) {
      f32('sign.zero', [], Float32Array.of(0));
      f32('sign.plus', [], Float32Array.of(1));
      f32('sign.minus', [], Float32Array.of(-1));
      signConstants = true;
    }
    nodes.push({ op: 'GreaterOrEqual', inputs: [input, 'sign.zero'], outputs: [`${output}.ge`] });
    nodes.push({ op: 'Where', inputs: [`${output}.ge`, 'sign.plus', 'sign.minus'], outputs: [output] });
    return output;
  };

  for (const layer of layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const ins = (layer.inboundNodes[0]?.inboundLayers ?? []).map((l) => outName.get(l.name)!);
    const out = layer.name;
    if (folded.has(layer.name)) continue;
    switch (cls) {
      case 'InputLayer': {
        const shape = cfg.batchInputShape as number[];
        inChannels = shape[shape.length - 1];
        outName.set(layer.name, ONNX_INPUT);
        continue;
      }
      case 'Conv2D':
      case 'BinaryConv2D': {
        const [kT, bT] = layer.getWeights();
        const kShape = kT.shape as number[];
        let kernel = convKernel(kT.dataSync() as Float32Array, kShape);
        if (cls === 'BinaryConv2D') {
          kernel = kernel.map((v) => (v >= 0 ? 1 : -1));
          ins[0] = signNode(ins[0], `${layer.name}.in`);
        }
        const co = kShape[3];
        let bias = bT ? new Float32Array(bT.dataSync() as Float32Array) : new Float32Array(co);
        let output = out;
        const next = consumers.get(layer.name) ?? [];
        const activation = (cfg.activation as string) ?? 'linear';
        if (activation === 'linear' && next.length === 1 && next[0].getClassName() === 'BatchNormalization') {
          // Fold y = γ (conv(x) + b − μ) / √(σ² + ε) + β into the convolution.
          const bn = next[0];
          const eps = bn.getConfig().epsilon as number;
          const [gamma, beta, mean, variance] = bn.getWeights().map((t) => t.dataSync() as Float32Array);
          const per = co > 0 ? kernel.length / co : 0;
          kernel = new Float32Array(kernel);
          bias = new Float32Array(bias);
          for (let o = 0; o < co; o++) {
            const s = gamma[o] / Math.sqrt(variance[o] + eps);
            for (let j = 0; j < per; j++) kernel[o * per + j] *= s;
            bias[o] = (bias[o] - mean[o]) * s + beta[o];
          }
          folded.add(bn.name);
          output = bn.name;
          outName.set(bn.name, bn.name);
        }
        const [kh, kw] = kShape;
        const padding = cfg.padding as string;
        const [pt, pb] = padding === 'same' ? samePads(kh) : [0, 0];
        const [pl, pr] = padding === 'same' ? samePads(kw) : [0, 0];
        const strides = (cfg.strides as number[]) ?? [1, 1];
        f32(`${layer.name}.W`, [co, kShape[2], kh, kw], kernel);
        f32(`${layer.name}.b`, [co], bias);
        const convOut = activation === 'relu' ? `${output}.pre` : output;
        nodes.push({ op: 'Conv', inputs: [ins[0], `${layer.name}.W`, `${layer.name}.b`], outputs: [convOut], name: layer.name,
          attrs: { kernel_shape: [kh, kw], pads: [pt, pl, pb, pr], strides } });
        if (activation === 'relu') nodes.push({ op: 'Relu', inputs: [convOut], outputs: [output] });
        else if (activation !== 'linear') throw new Error(`ONNX export: activation ${activation} not supported`);
        outName.set(layer.name, output);
        continue;
      }
      case 'BatchNormalization': {
        const eps = cfg.epsilon as number;
        const [gamma, beta, mean, variance] = layer.getWeights().map((t) => t.dataSync() as Float32Array);
        const c = gamma.length;
        f32(`${out}.scale`, [c], gamma);
        f32(`${out}.B`, [c], beta);
        f32(`${out}.mean`, [c], mean);
        f32(`${out}.var`, [c], variance);
        nodes.push({ op: 'BatchNormalization', inputs: [ins[0], `${out}.scale`, `${out}.B`, `${out}.mean`, `${out}.var`], outputs: [out], attrs: { epsilon: { float: eps } } });
        break;
      }
      case 'ReLU':
        nodes.push({ op: 'Relu', inputs: [ins[0]], outputs: [out] });
        break;
      case 'BinarySign':
        outName.set(layer.name, signNode(ins[0], out));
        continue;
      case 'MaxPooling2D': {
        const pool = cfg.poolSize as number[];
        const strides = (cfg.strides as number[]) ?? pool;
        nodes.push({ op: 'MaxPool', inputs: [ins[0]], outputs: [out], attrs: { kernel_shape: pool, strides } });
        break;
      }
      case 'Conv2DTranspose': {
        const [kT, bT] = layer.getWeights();
        const kShape = kT.shape as number[];
        if (cfg.padding !== 'valid') throw new Error('ONNX export: only valid transposed convolutions are supported');
        f32(`${out}.W`, [kShape[3], kShape[2], kShape[0], kShape[1]], convTransposeKernel(kT.dataSync() as Float32Array, kShape));
        f32(`${out}.b`, [kShape[2]], bT ? (bT.dataSync() as Float32Array) : new Float32Array(kShape[2]));
        nodes.push({ op: 'ConvTranspose', inputs: [ins[0], `${out}.W`, `${out}.b`], outputs: [out],
          attrs: { kernel_shape: [kShape[0], kShape[1]], strides: cfg.strides as number[] } });
        break;
      }
      case 'Concatenate':
        nodes.push({ op: 'Concat', inputs: ins, outputs: [out], attrs: { axis: 1 } });
        break;
      case 'ZeroPadding2D': {
        const [[t, b], [l, r]] = cfg.padding as number[][];
        i64(`${out}.pads`, [0, 0, t, l, 0, 0, b, r]);
        nodes.push({ op: 'Pad', inputs: [ins[0], `${out}.pads`], outputs: [out], attrs: { mode: 'constant' } });
        break;
      }
      case 'Cropping2D': {
        const [[t, b], [l, r]] = cfg.cropping as number[][];
        const big = 2 ** 31 - 1;
        i64(`${out}.starts`, [t, l]);
        i64(`${out}.ends`, [b > 0 ? -b : big, r > 0 ? -r : big]);
        i64(`${out}.axes`, [2, 3]);
        nodes.push({ op: 'Slice', inputs: [ins[0], `${out}.starts`, `${out}.ends`, `${out}.axes`], outputs: [out] });
        break;
      }
      case 'ShiftPad2D': {
        const { top, bottom, left, right } = cfg as { top: number; bottom: number; left: number; right: number };
        const p = (v: number) => Math.max(0, v);
        const c = (v: number) => Math.max(0, -v);
        let src = ins[0];
        if (c(top) || c(bottom) || c(left) || c(right)) {
          const big = 2 ** 31 - 1;
          i64(`${out}.starts`, [c(top), c(left)]);
          i64(`${out}.ends`, [c(bottom) ? -c(bottom) : big, c(right) ? -c(right) : big]);
          i64(`${out}.axes`, [2, 3]);
          nodes.push({ op: 'Slice', inputs: [src, `${out}.starts`, `${out}.ends`, `${out}.axes`], outputs: [`${out}.crop`] });
          src = `${out}.crop`;
        }
        // Cropping first then padding equals the layer's pad-then-crop: the two act on opposite sides.
        i64(`${out}.pads`, [0, 0, p(top), p(left), 0, 0, p(bottom), p(right)]);
        nodes.push({ op: 'Pad', inputs: [src, `${out}.pads`], outputs: [out], attrs: { mode: 'constant' } });
        break;
      }
      case 'ChannelSlice': {
        const { start, size } = cfg as { start: number; size: number };
        i64(`${out}.starts`, [start]);
        i64(`${out}.ends`, [start + size]);
        i64(`${out}.axes`, [1]);
        nodes.push({ op: 'Slice', inputs: [ins[0], `${out}.starts`, `${out}.ends`, `${out}.axes`], outputs: [out] });
        break;
      }
      default:
        throw new Error(`ONNX export: layer ${layer.name} (${cls}) is not supported`);
    }
    outName.set(layer.name, out);
  }
  const last = outName.get(layers[layers.length - 1].name)!;
  nodes.push({ op: 'Sigmoid', inputs: [last], outputs: [ONNX_OUTPUT] });
  return {
    name,
    nodes,
    initializers: inits,
    inputs: [{ name: ONNX_INPUT, type: TensorType.FLOAT, shape: ['N', inChannels, 'H', 'W'] }],
    outputs: [{ name: ONNX_OUTPUT, type: TensorType.FLOAT, shape: ['N', 1, 'H', 'W'] }],
  };
}

/**
 * Store float initializers as float16 behind a Cast to float32: half the file size, float32 compute (ONNX Runtime
 * folds the casts once at session creation). Weights round to 11 significant bits.
 */
export function halveWeights(graph: OnnxGraph): OnnxGraph {
  const casts: OnnxNode[] = [];
  const initializers = graph.initializers.map((t) => {
    if (t.type !== TensorType.FLOAT) return t;
    casts.push({ op: 'Cast', inputs: [`${t.name}.f16`], outputs: [t.name], attrs: { to: TensorType.FLOAT } });
    return { name: `${t.name}.f16`, dims: t.dims, type: TensorType.FLOAT16, data: floatsToHalf(t.data as Float32Array) };
  });
  return { ...graph, initializers, nodes: [...casts, ...graph.nodes] };
}

export function exportOnnx(model: tf.LayersModel, metadata: Record<string, string> = {}, opts: { halfWeights?: boolean } = {}): Uint8Array {
  const graph = modelToOnnxGraph(model);
  return encodeModel(opts.halfWeights ? halveWeights(graph) : graph, { opset: 13, producer: 'emseg', metadata });
}
