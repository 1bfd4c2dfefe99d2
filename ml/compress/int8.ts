// Static int8 quantisation of an exported EMSeg graph, written in ONNX's QDQ form (QuantizeLinear/DequantizeLinear
// pairs around float ops) so that ONNX Runtime's CPU provider fuses it into integer kernels at session creation.
//
// The pattern follows ORT's QDQ selector rules (onnxruntime/core/optimizer/qdq_transformer/selectors_actions/
// qdq_selector_action_transformer.cc and relu_quantizelinear.cc):
//   DQ(x) ─┐
//   DQ(W) ─┼─ Conv ─ Relu ─ Q      → QLinearConv (Relu removed because Q's zero point is the bottom of uint8)
//   DQ(b) ─┘
//   DQ(a), DQ(b) ─ Concat ─ Q      → com.microsoft QLinearConcat
//   Sigmoid, AveragePool, Add, Mul have QLinear forms as well; ConvTranspose and Pad have none on CPU.
// MaxPool (opset ≥ 12), Slice, Pad and DepthToSpace need no arithmetic at all, so they are written to run on the
// uint8 tensor directly (what ORT's "drop QDQ" rule does for MaxPool and Slice, and cannot do for Pad): the output
// keeps its input's scale and zero point. The U-Net's 2×2 stride-2 ConvTranspose is first rewritten as a 1×1 Conv +
// DepthToSpace (convTransposeAsConv) so that it becomes integer too; any other ConvTranspose runs in float between
// DQ and Q (int8 weights behind a DQ, so the file is still small). The final 1×1 logits convolution stays float (one
// output channel, negligible work, and its output is the map the user sees).
//
// Numbers: weights int8 symmetric per output channel, in 7 bits by default (zero point 0, scale max|w|/63:
// `reduceRange`), because on CPUs without VNNI (AVX2 only) ONNX Runtime's u8×s8 kernels add pairs of products in
// 16 bits, which saturate with full 8-bit weights; /127 with reduceRange false, for CPUs with VNNI only; activations
// uint8 asymmetric per tensor with float 0 exactly representable (so zero padding and ReLU are exact); bias int32 with scale x_scale·w_scale, zero
// point 0, as QLinearConv requires. Activation ranges come from running the float graph on calibration crops.
import * as ort from 'onnxruntime-node';
import { encodeModel, TensorType, type OnnxGraph, type OnnxNode, type OnnxTensor } from '../onnx/proto';

export interface Range {
  min: number;
  max: number;
}

export interface QuantParams {
  scale: number;
  /** uint8 zero point: the code of float 0. */
  zeroPoint: number;
}

export interface CalibrationInput {
  /** Planar CHW, as the graph's input expects. */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export interface QuantizePlan {
  /** Float activations that get their own calibrated uint8 parameters. */
  calibrated: string[];
  /** Outputs of data-movement ops on a quantised tensor: they take their input's parameters (output → input). */
  inherited: Map<string, string>;
}

/** Int8Options.reduceRange when not given: 7-bit weights, correct on every CPU. */
export const DEFAULT_REDUCE_RANGE = true;

export interface Int8Options {
  /**
   * Weights in 7 bits (scale max|w|/63; the default): correct on every CPU. false: 8 bits (max|w|/127), a little more
   * accurate on CPUs with VNNI, and wrong on CPUs without it, where u8×s8 products saturate in 16 bits (measured on a
   * 2-core AMD EPYC with AVX2 only: a random-weight U-Net's int8 output off by 0.43 of its 0.18 spread at worst).
   */
  reduceRange?: boolean;
  /**
   * How per-crop extremes become a range: 'minmax' takes the overall extremes; 'mean' averages the per-crop
   * extremes (ORT's moving-average calibrator), which ignores a rare outlier crop.
   */
  calibration?: 'minmax' | 'mean';
  threads?: number;
}

const DATA_MOVEMENT = new Set(['MaxPool', 'Slice', 'Pad', 'DepthToSpace']);
/** Ops whose float output is worth quantising (it feeds integer kernels). */
const QUANTISED_OUTPUT = new Set(['Relu', 'ConvTranspose', 'Concat', 'Conv', 'Add', 'BatchNormalization']);

function consumersOf(graph: OnnxGraph): Map<string, OnnxNode[]> {
  const m = new Map<string, OnnxNode[]>();
  for (const n of graph.nodes) for (const x of n.inputs) m.set(x, [...(m.get(x) ?? []), n]);
  return m;
}

/**
 * A 2×2 stride-2 transposed convolution (the U-Net's up-sampling) as a 1×1 convolution to 4·C_out channels
 * followed by DepthToSpace: the same numbers, but ONNX Runtime has an integer kernel for both (QLinearConv and a
 * uint8 DepthToSpace) and none for ConvTranspose, which profiled at a quarter of the int8 U-Net's time in float.
 * Channel o·4 + dy·2 + dx of the convolution holds output pixel (2y + dy, 2x + dx) of channel o (DepthToSpace 'CRD').
 */
export function convTransposeAsConv(graph: OnnxGraph): OnnxGraph {
  const inits = new Map(graph.initializers.map((t) => [t.name, t]));
  const added: OnnxTensor[] = [];
  const nodes = graph.nodes.flatMap((n): OnnxNode[] => {
    const ks = n.attrs?.kernel_shape;
    const st = n.attrs?.strides;
    const w = inits.get(n.inputs[1]);
    const plain = !n.attrs?.pads && !n.attrs?.output_padding && !n.attrs?.group && !n.attrs?.dilations;
    if (n.op !== 'ConvTranspose' || !plain || !w || String(ks) !== '2,2' || String(st) !== '2,2') return [n];
    const [ci, co] = w.dims;
    const src = w.data as Float32Array;
    const k = new Float32Array(4 * co * ci);
    for (let i = 0; i < ci; i++)
      for (let o = 0; o < co; o++)
        for (let t = 0; t < 4; t++) k[(o * 4 + t) * ci + i] = src[(i * co + o) * 4 + t];
    const b = n.inputs[2] ? (inits.get(n.inputs[2])!.data as Float32Array) : new Float32Array(co);
    const name = n.name ?? n.outputs[0];
    added.push({ name: `${name}.s2d.W`, dims: [4 * co, ci, 1, 1], type: TensorType.FLOAT, data: k });
    added.push({ name: `${name}.s2d.b`, dims: [4 * co], type: TensorType.FLOAT, data: Float32Array.from({ length: 4 * co }, (_, j) => b[j >> 2]) });
    const mid = `${n.outputs[0]}.s2d`;
    return [
      { op: 'Conv', inputs: [n.inputs[0], `${name}.s2d.W`, `${name}.s2d.b`], outputs: [mid], name: `${name}.s2d`, attrs: { kernel_shape: [1, 1] } },
      { op: 'DepthToSpace', inputs: [mid], outputs: n.outputs, name: `${name}.d2s`, attrs: { blocksize: 2, mode: 'CRD' } },
    ];
  });
  const used = new Set(nodes.flatMap((n) => n.inputs));
  return { ...graph, nodes, initializers: [...graph.initializers, ...added].filter((t) => used.has(t.name)) };
}

/** Which activations to quantise: everything between the graph input and the logits, except what ORT fuses away. */
export function planQuantization(graph: OnnxGraph): QuantizePlan {
  const consumers = consumersOf(graph);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const calibrated: string[] = [];
  const inherited = new Map<string, string>();
  const quantised = new Set<string>();
  // A tensor that ends in the graph output or the sigmoid stays float: that is the map the user sees.
  const feedsHead = (t: string) => outputs.has(t) || (consumers.get(t) ?? []).some((c) => c.op === 'Sigmoid');
  for (const input of graph.inputs) {
    calibrated.push(input.name);
    quantised.add(input.name);
  }
  for (const node of graph.nodes) {
    const out = node.outputs[0];
    if (feedsHead(out)) continue;
    if (DATA_MOVEMENT.has(node.op)) {
      if (quantised.has(node.inputs[0])) {
        inherited.set(out, node.inputs[0]);
        quantised.add(out);
      }
      continue;
    }
    if (!QUANTISED_OUTPUT.has(node.op)) continue;
    const next = consumers.get(out) ?? [];
    // Conv → Relu: the Relu's output is quantised and ORT folds the Relu into the Q (zero point 0).
    if (node.op === 'Conv' && next.length === 1 && next[0].op === 'Relu') continue;
    calibrated.push(out);
    quantised.add(out);
  }
  return { calibrated, inherited };
}

/** Round half to even, as QuantizeLinear does. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** uint8 parameters for a range: float 0 maps to an integer code exactly. */
export function activationParams(r: Range): QuantParams {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  const scale = Math.max((hi - lo) / 255, 1e-8);
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** Symmetric per-channel int8 weights along `axis` of an ONNX weight tensor. */
export function quantizeWeightsPerChannel(w: Float32Array, dims: number[], axis: number, reduceRange = false): { q: Int8Array; scales: Float32Array } {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const qmax = reduceRange ? 63 : 127;
  const maxAbs = new Float32Array(channels);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  for (let i = 0; i < w.length; i++) maxAbs[channelOf(i)] = Math.max(maxAbs[channelOf(i)], Math.abs(w[i]));
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = maxAbs[c] > 0 ? maxAbs[c] / qmax : 1;
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-qmax, Math.min(qmax, roundHalfEven(w[i] / scales[channelOf(i)])));
  if (outer * channels * inner !== w.length) throw new Error(`weight of ${w.length} values does not match dims ${dims.join('×')}`);
  return { q, scales };
}

/** The graph with extra float outputs, so one run yields every activation to calibrate. */
export function withActivationOutputs(graph: OnnxGraph, names: string[]): OnnxGraph {
  const have = new Set(graph.outputs.map((o) => o.name));
  const extra = names.filter((n) => !have.has(n) && !graph.inputs.some((i) => i.name === n));
  return {
    ...graph,
    outputs: [...graph.outputs, ...extra.map((n) => ({ name: n, type: TensorType.FLOAT, shape: [`${n}.n`, `${n}.c`, `${n}.h`, `${n}.w`] }))],
  };
}

function extremes(data: Float32Array): Range {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** Activation ranges of the float graph over calibration inputs (run by ONNX Runtime). */
export async function calibrateRanges(graph: OnnxGraph, names: string[], inputs: CalibrationInput[], opts: Int8Options = {}): Promise<Map<string, Range>> {
  if (inputs.length === 0) throw new Error('int8 calibration needs at least one input');
  const bytes = encodeModel(withActivationOutputs(graph, names), { opset: 13, producer: 'emseg-calibration' });
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const inputName = graph.inputs[0].name;
  const perCrop = new Map<string, Range[]>(names.map((n) => [n, []]));
  try {
    for (const x of inputs) {
      const feed = new ort.Tensor('float32', x.data, [1, x.channels, x.height, x.width]);
      const out = await session.run({ [inputName]: feed });
      for (const n of names) {
        const data = n === inputName ? x.data : (out[n].data as Float32Array);
        perCrop.get(n)!.push(extremes(data));
      }
      for (const t of Object.values(out)) t.dispose();
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<string, Range>();
  for (const [n, rs] of perCrop) {
    ranges.set(n, opts.calibration === 'mean'
      ? { min: rs.reduce((a, r) => a + r.min, 0) / rs.length, max: rs.reduce((a, r) => a + r.max, 0) / rs.length }
      : { min: Math.min(...rs.map((r) => r.min)), max: Math.max(...rs.map((r) => r.max)) });
  }
  return ranges;
}

/** Rewrite a float graph into QDQ form with the given activation ranges (one per `plan.calibrated` tensor). */
export function quantizeGraph(graph: OnnxGraph, ranges: Map<string, Range>, opts: Int8Options = {}): OnnxGraph {
  const plan = planQuantization(graph);
  const params = new Map<string, QuantParams>();
  for (const t of plan.calibrated) {
    const r = ranges.get(t);
    if (!r) throw new Error(`int8: no calibration range for ${t}`);
    params.set(t, activationParams(r));
  }
  for (const [out, src] of plan.inherited) params.set(out, params.get(src)!);
  const inits = new Map(graph.initializers.map((t) => [t.name, t]));
  const newInits: OnnxTensor[] = [];
  const nodes: OnnxNode[] = [];
  const qName = (t: string) => `${t}.q`;
  const dqName = (t: string) => `${t}.dq`;
  const scalar = (name: string, type: number, data: OnnxTensor['data']) => newInits.push({ name, dims: [], type, data });
  const emitQdq = (t: string, quantise: boolean) => {
    const p = params.get(t)!;
    scalar(`${t}.scale`, TensorType.FLOAT, Float32Array.of(p.scale));
    scalar(`${t}.zp`, TensorType.UINT8, Uint8Array.of(p.zeroPoint));
    if (quantise) nodes.push({ op: 'QuantizeLinear', inputs: [t, `${t}.scale`, `${t}.zp`], outputs: [qName(t)], name: `${t}.Q` });
    nodes.push({ op: 'DequantizeLinear', inputs: [qName(t), `${t}.scale`, `${t}.zp`], outputs: [dqName(t)], name: `${t}.DQ` });
  };
  /** Float name a consumer reads: the dequantised copy when the tensor is quantised. */
  const floatIn = (t: string) => (params.has(t) ? dqName(t) : t);
  const weightDq = (name: string, axis: number, nodeName: string): { name: string; scales: Float32Array } => {
    const w = inits.get(name);
    if (!w || w.type !== TensorType.FLOAT) throw new Error(`int8: ${nodeName} has no float weight initializer ${name}`);
    const { q, scales } = quantizeWeightsPerChannel(w.data as Float32Array, w.dims, axis, opts.reduceRange ?? DEFAULT_REDUCE_RANGE);
    const c = w.dims[axis];
    newInits.push({ name: `${name}.i8`, dims: w.dims, type: TensorType.INT8, data: q });
    newInits.push({ name: `${name}.scale`, dims: [c], type: TensorType.FLOAT, data: scales });
    newInits.push({ name: `${name}.zp`, dims: [c], type: TensorType.INT8, data: new Int8Array(c) });
    nodes.push({ op: 'DequantizeLinear', inputs: [`${name}.i8`, `${name}.scale`, `${name}.zp`], outputs: [`${name}.dq`], name: `${name}.DQ`, attrs: { axis } });
    return { name: `${name}.dq`, scales };
  };

  for (const input of graph.inputs) if (params.has(input.name)) emitQdq(input.name, true);
  for (const node of graph.nodes) {
    const out = node.outputs[0];
    if (DATA_MOVEMENT.has(node.op) && plan.inherited.has(out)) {
      // Runs on the uint8 codes: the output keeps the input's scale and zero point (zero padding pads with the
      // zero point, which is float 0).
      const rest = node.inputs.slice(1);
      if (node.op === 'Pad') {
        while (rest.length < 2) rest.push('');
        rest[1] = `${out}.padvalue`;
        scalar(`${out}.padvalue`, TensorType.UINT8, Uint8Array.of(params.get(out)!.zeroPoint));
      }
      nodes.push({ ...node, inputs: [qName(node.inputs[0]), ...rest], outputs: [qName(out)] });
      emitQdq(out, false);
      continue;
    }
    const next = node.op === 'Conv' ? graph.nodes.find((n) => n.inputs[0] === out && n.op === 'Relu') : undefined;
    const integerConv = node.op === 'Conv' && params.has(node.inputs[0]) && (params.has(out) || (next !== undefined && params.has(next.outputs[0])));
    if (integerConv) {
      const xs = params.get(node.inputs[0])!.scale;
      const { name: wName, scales: ws } = weightDq(node.inputs[1], 0, node.name ?? node.op);
      const inputs = [dqName(node.inputs[0]), wName];
      if (node.inputs[2]) {
        const b = inits.get(node.inputs[2])!.data as Float32Array;
        const bName = node.inputs[2];
        const scales = Float32Array.from(ws, (s) => s * xs);
        const q = Int32Array.from(b, (v, o) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, roundHalfEven(v / scales[o]))));
        newInits.push({ name: `${bName}.i32`, dims: [b.length], type: TensorType.INT32, data: q });
        newInits.push({ name: `${bName}.scale`, dims: [b.length], type: TensorType.FLOAT, data: scales });
        newInits.push({ name: `${bName}.zp`, dims: [b.length], type: TensorType.INT32, data: new Int32Array(b.length) });
        nodes.push({ op: 'DequantizeLinear', inputs: [`${bName}.i32`, `${bName}.scale`, `${bName}.zp`], outputs: [`${bName}.dq`], name: `${bName}.DQ`, attrs: { axis: 0 } });
        inputs.push(`${bName}.dq`);
      }
      nodes.push({ ...node, inputs });
    } else if (node.op === 'ConvTranspose' && params.has(node.inputs[0])) {
      // ONNX ConvTranspose weights are [in, out, kh, kw]: per output channel is axis 1.
      nodes.push({ ...node, inputs: [dqName(node.inputs[0]), weightDq(node.inputs[1], 1, node.name ?? node.op).name, ...node.inputs.slice(2)] });
    } else {
      nodes.push({ ...node, inputs: node.inputs.map((x) => (inits.has(x) ? x : floatIn(x))) });
    }
    if (params.has(out)) emitQdq(out, true);
  }
  // Keep only the initializers still read.
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = [...graph.initializers, ...newInits].filter((t) => used.has(t.name));
  return { ...graph, nodes, initializers };
}

/** Calibrate on `inputs` and return the QDQ graph. */
export async function quantizeInt8(float: OnnxGraph, inputs: CalibrationInput[], opts: Int8Options = {}): Promise<{ graph: OnnxGraph; ranges: Map<string, Range> }> {
  const graph = convTransposeAsConv(float);
  const plan = planQuantization(graph);
  const ranges = await calibrateRanges(graph, plan.calibrated, inputs, opts);
  return { graph: quantizeGraph(graph, ranges, opts), ranges };
}
