// Convolutions of tfjs' wasm backend computed by ONNX Runtime, so that training without tfjs-node runs its
// convolutions at ONNX Runtime's speed instead of tfjs-wasm's.
//
// Why: profiled on a 2-core Intel Xeon, one training step of the U-Net (16 base channels, depth 4) on 2 × 256² crops
// spent 4.4 s of its 5.4 s in convolutions on tfjs-wasm: 1.1 s forward, 1.4 s input gradient, 1.8 s filter gradient
// (6–11 GFLOP/s). In ONNX Runtime on one thread they take about 0.25 s, 0.4 s and 0.4 s.
//
// onnxruntime-node's native binding runs a session synchronously, as a tfjs kernel must, so each kernel here is a
// small ONNX graph built once per geometry (dynamic batch, size and channels), reading views of the wasm heap and
// writing its output straight into a new wasm tensor (a pre-allocated fetch):
// - Conv2D / FusedConv2D (bias, ReLU): with input and output channels in multiples of ONNX Runtime's NCHWc block,
//   its blocked-layout Conv between reorders that read and write NHWC (nchwcGraph); otherwise NHWC → NCHW transposes
//   around one Conv;
// - Conv2DBackpropInput (the input gradient, and the forward pass of a transposed convolution) with strides: a
//   ConvTranspose of dy with the same filter, pads and strides, output padding making up the rows a strided
//   convolution dropped. With stride 1 the kernel this one replaced (wasm-conv-gradients.ts) computes it as a forward
//   convolution of dy with the flipped filter, which then runs here: about 30 % faster than ConvTranspose over the
//   U-Net's layers (a scratch microbenchmark, 321 against 472 ms per step);
// - Conv2DBackpropFilter: dW[kh, kw, ci, co] = Σ_{n,y,x} x[n, y·s + kh − p, x·s + kw − p, ci] · dy[n, y, x, co], one
//   matrix product per tap (kh, kw) of the strided slice of the padded input with dy.
// Anything else (NCHW data, dilation, other activations, PReLU, rounding modes) falls back to the wasm kernel it
// replaced.
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { binding, initOrt } from 'onnxruntime-node/dist/binding.js';
import { encodeModel, TensorType, type OnnxGraph, type OnnxNode } from '../onnx/proto';
import type { WasmBackendLike } from './wasm-conv-gradients';
import { KernelSwap } from './kernel-swap';

type SyncSession = InstanceType<typeof binding.InferenceSession>;

const F = TensorType.FLOAT;
const sessions = new Map<string, SyncSession>();
/**
 * Intra-op threads of each session. One: the trainer runs one worker per core, and even alone in a process a training
 * step took 3.9 s with two threads against 2.2 s with one (2 × 256² crops, 2-core Intel Xeon): ONNX Runtime's threads
 * spin between the many small kernels that tfjs runs in between.
 */
const THREADS = 1;

/** The session of a small graph, built once per key (one thread, see THREADS). */
function ortSession(key: string, graph: () => OnnxGraph, extraOpsets: Array<{ domain: string; version: number }> = []): SyncSession {
  let s = sessions.get(key);
  if (!s) {
    const bytes = encodeModel(graph(), { opset: 13, producer: 'emseg-train', extraOpsets });
    s = new binding.InferenceSession();
    s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
    });
    sessions.set(key, s);
  }
  return s;
}

const toNchw = (from: string, to: string): OnnxNode => ({ op: 'Transpose', inputs: [from], outputs: [to], attrs: { perm: [0, 3, 1, 2] } });
const toNhwc = (from: string, to: string): OnnxNode => ({ op: 'Transpose', inputs: [from], outputs: [to], attrs: { perm: [0, 2, 3, 1] } });
/** tfjs filter (kh, kw, ci, co) → ONNX Conv weight (co, ci, kh, kw), which is also ConvTranspose's (C of dy, C of dx, kh, kw). */
const filterToOnnx = (from: string, to: string): OnnxNode => ({ op: 'Transpose', inputs: [from], outputs: [to], attrs: { perm: [3, 2, 0, 1] } });
const nhwc = (name: string) => ({ name, type: F, shape: ['n', `${name}_h`, `${name}_w`, `${name}_c`] });
const filterInfo = (name: string, kh: number, kw: number) => ({ name, type: F, shape: [kh, kw, 'ci', 'co'] });

interface Geometry {
  kh: number; kw: number; sh: number; sw: number;
  top: number; bottom: number; left: number; right: number;
  info: tf.backend_util.Conv2DInfo;
}

/** The convolution's geometry, or null where only the fallback applies. */
function geometry(xShape: number[], filterShape: number[], attrs: NamedAttrMap): Geometry | null {
  if ((attrs.dataFormat as string | undefined) === 'NCHW' || attrs.dimRoundingMode) return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    attrs.strides as number | [number, number], (attrs.dilations as number | [number, number] | undefined) ?? 1, attrs.pad as 'valid' | 'same' | number,
  );
  const { top, bottom, left, right } = info.padInfo;
  // Our models use no dilation, so the graphs below are tested without it: dilated convolutions stay on wasm.
  if (top < 0 || bottom < 0 || left < 0 || right < 0 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  return {
    kh: info.filterHeight, kw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth,
    top, bottom, left, right, info,
  };
}

const geomKey = (g: Geometry) => `${g.kh}x${g.kw}/s${g.sh},${g.sw}/p${g.top},${g.left},${g.bottom},${g.right}`;
const convAttrs = (g: Geometry) => ({ kernel_shape: [g.kh, g.kw], strides: [g.sh, g.sw], pads: [g.top, g.left, g.bottom, g.right] });

let runs = 0;
let blockedRuns = 0;
/** Convolutions computed by ONNX Runtime so far in this thread (tests check the fallback was not taken). */
export function ortConvRuns(): number {
  return runs;
}

/** Of those, the ones run in the blocked layout (nchwcGraph). */
export function ortBlockedConvRuns(): number {
  return blockedRuns;
}

/**
 * Runs a session on tensors of the wasm heap: the inputs are read in place and ONNX Runtime writes its one output
 * straight into a new wasm tensor of the given shape (a pre-allocated fetch).
 */
function runSession(backend: WasmBackendLike, s: SyncSession, feeds: Record<string, TensorInfo>, output: string, shape: number[]): TensorInfo {
  runs++;
  // Allocate first, then take the heap views: an allocation can grow (and so detach) the wasm heap.
  const out = backend.makeOutput(shape, 'float32');
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', backend.typedArrayFromHeap(t), t.shape);
  const result = s.run(ortFeeds, { [output]: new ort.Tensor('float32', backend.typedArrayFromHeap(out), shape) }, {})[output] as ort.Tensor;
  if (result.data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`ONNX Runtime ${output}: ${result.data.length} values for ${shape.join('×')}`);
  return out;
}

const NCHWC = 'com.microsoft.nchwc';
const int64 = (name: string, values: number[]) => ({ name, dims: [values.length], type: TensorType.INT64, data: BigInt64Array.from(values.map(BigInt)) });

/**
 * A convolution in ONNX Runtime's blocked layout (NCHWc, channels in blocks of `block`): ReorderInput straight from
 * NHWC, its NCHWc Conv with the activation fused, ReorderOutput straight back to NHWC; the filter is reordered in the
 * graph from tfjs' (kh, kw, ci, co) to the blocked (co/B, ci/B, kh, kw, B_ci, B_co), kept 4-D as the kernel expects.
 * ONNX Runtime only makes this layout itself for constant weights (its NCHWc transformer), and ours change every step.
 * Measured on the U-Net's 16- and 32-channel layers: about twice the speed of transposes around a plain Conv
 * (2 × 256² × 16 → 16: 14.5 against 32 ms; 32 → 16: 26.5 against 54 ms; 2-core AMD EPYC, one thread).
 */
function nchwcGraph(key: string, g: Geometry, ci: number, co: number, block: number, bias: boolean, relu: boolean): OnnxGraph {
  const inputs = [nhwc('x'), filterInfo('w', g.kh, g.kw)];
  if (bias) inputs.push({ name: 'b', type: F, shape: ['co'] });
  return {
    name: key,
    initializers: [int64('blocked', [g.kh, g.kw, ci / block, block, co / block, block]), int64('oihw', [co, ci, g.kh, g.kw])],
    inputs,
    outputs: [nhwc('y')],
    nodes: [
      { op: 'ReorderInput', domain: NCHWC, inputs: ['x'], outputs: ['xc'], attrs: { channels_last: 1 } },
      { op: 'Reshape', inputs: ['w', 'blocked'], outputs: ['w6'] },
      { op: 'Transpose', inputs: ['w6'], outputs: ['wc6'], attrs: { perm: [4, 2, 0, 1, 3, 5] } },
      { op: 'Reshape', inputs: ['wc6', 'oihw'], outputs: ['wc'] },
      { op: 'Conv', domain: NCHWC, inputs: bias ? ['xc', 'wc', 'b'] : ['xc', 'wc'], outputs: ['yc'], attrs: { ...convAttrs(g), ...(relu ? { activation: 'Relu' } : {}) } },
      { op: 'ReorderOutput', domain: NCHWC, inputs: ['yc'], outputs: ['y'], attrs: { channels: co, channels_last: 1 } },
    ],
  };
}

let blockSize: number | null | undefined;
let nchwcOn = true;
/**
 * Use the blocked-layout convolutions where the channels allow (on = true, the default, where nchwcBlock finds a block)
 * or transposes around a plain Conv everywhere (for comparison).
 */
export function useNchwc(on: boolean): void {
  nchwcOn = on;
}

/**
 * The channel block of ONNX Runtime's NCHWc kernels on this CPU (8 with AVX2, 16 with AVX-512), found once per thread
 * by running a small convolution both ways and keeping the block whose result matches the plain Conv's; null when none
 * does (or the NCHWc operators are missing), and the plain graphs run.
 */
export function nchwcBlock(): number | null {
  if (blockSize !== undefined) return blockSize;
  blockSize = null;
  const g: Geometry = { kh: 3, kw: 3, sh: 1, sw: 1, top: 1, bottom: 1, left: 1, right: 1, info: undefined as unknown as tf.backend_util.Conv2DInfo };
  const [c, h, w] = [16, 6, 5];
  const data = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.5);
  const feeds = { x: new ort.Tensor('float32', data(h * w * c, 1), [1, h, w, c]), w: new ort.Tensor('float32', data(9 * c * c, 2), [3, 3, c, c]) };
  const run = (s: SyncSession) => (s.run(feeds, { y: null }, {}) as Record<string, ort.Tensor>).y.data as Float32Array;
  try {
    const ref = run(ortSession('nchwc-probe/plain', () => ({
      name: 'plain', initializers: [], inputs: [nhwc('x'), filterInfo('w', 3, 3)], outputs: [nhwc('y')],
      nodes: [toNchw('x', 'xt'), filterToOnnx('w', 'wt'), { op: 'Conv', inputs: ['xt', 'wt'], outputs: ['yt'], attrs: convAttrs(g) }, toNhwc('yt', 'y')],
    })));
    for (const block of [8, 16]) {
      const got = run(ortSession(`nchwc-probe/${block}`, () => nchwcGraph('probe', g, c, c, block, false, false), [{ domain: NCHWC, version: 1 }]));
      if (got.length === ref.length && got.every((v, i) => Math.abs(v - ref[i]) < 1e-4)) {
        blockSize = block;
        break;
      }
    }
  } catch {
    blockSize = null;
  }
  return blockSize;
}

function forward(backend: WasmBackendLike, x: TensorInfo, filter: TensorInfo, bias: TensorInfo | undefined, relu: boolean, g: Geometry): TensorInfo {
  const { batchSize, outHeight, outWidth, outChannels } = g.info;
  const [, , ci, co] = filter.shape;
  const block = nchwcOn && ci % 8 === 0 && co % 8 === 0 ? nchwcBlock() : null;
  if (block && ci % block === 0 && co % block === 0) {
    const key = `fwdc/${geomKey(g)}/${ci}x${co}/${bias ? 'b' : ''}${relu ? 'r' : ''}`;
    const s = ortSession(key, () => nchwcGraph(key, g, ci, co, block, !!bias, relu), [{ domain: NCHWC, version: 1 }]);
    blockedRuns++;
    return runSession(backend, s, bias ? { x, w: filter, b: bias } : { x, w: filter }, 'y', [batchSize, outHeight, outWidth, outChannels]);
  }
  const key = `fwd/${geomKey(g)}/${bias ? 'b' : ''}${relu ? 'r' : ''}`;
  const s = ortSession(key, () => {
    const nodes: OnnxNode[] = [toNchw('x', 'xt'), filterToOnnx('w', 'wt'), { op: 'Conv', inputs: bias ? ['xt', 'wt', 'b'] : ['xt', 'wt'], outputs: ['yt'], attrs: convAttrs(g) }];
    if (relu) nodes.push({ op: 'Relu', inputs: ['yt'], outputs: ['yr'] });
    nodes.push(toNhwc(relu ? 'yr' : 'yt', 'y'));
    const inputs = [nhwc('x'), filterInfo('w', g.kh, g.kw)];
    if (bias) inputs.push({ name: 'b', type: F, shape: ['co'] });
    return { name: key, nodes, initializers: [], inputs, outputs: [nhwc('y')] };
  });
  return runSession(backend, s, bias ? { x, w: filter, b: bias } : { x, w: filter }, 'y', [batchSize, outHeight, outWidth, outChannels]);
}

function inputGradient(backend: WasmBackendLike, dy: TensorInfo, filter: TensorInfo, g: Geometry): TensorInfo | null {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = g.info;
  // ConvTranspose's output without output padding; the rows a strided convolution never read are made up by it.
  const oph = inHeight - (g.sh * (outHeight - 1) + g.kh - g.top - g.bottom);
  const opw = inWidth - (g.sw * (outWidth - 1) + g.kw - g.left - g.right);
  if (oph < 0 || opw < 0 || oph >= g.sh || opw >= g.sw) return null;
  // Stride 1 with pads below the kernel size: the replaced kernel's forward convolution with the flipped filter (see
  // the header).
  if (g.sh === 1 && g.sw === 1 && Math.max(g.top, g.bottom) < g.kh && Math.max(g.left, g.right) < g.kw) return null;
  const key = `dx/${geomKey(g)}/op${oph},${opw}`;
  const s = ortSession(key, () => ({
    name: key, initializers: [],
    nodes: [toNchw('dy', 'dyt'), filterToOnnx('w', 'wt'), { op: 'ConvTranspose', inputs: ['dyt', 'wt'], outputs: ['dxt'], attrs: { ...convAttrs(g), output_padding: [oph, opw] } }, toNhwc('dxt', 'dx')],
    inputs: [nhwc('dy'), filterInfo('w', g.kh, g.kw)], outputs: [nhwc('dx')],
  }));
  return runSession(backend, s, { dy, w: filter }, 'dx', [batchSize, inHeight, inWidth, inChannels]);
}

/** Use the row-shift filter gradient (rowShiftGraph) where it is faster, or the per-tap one everywhere (for comparison). */
let rowShiftOn = true;
export function useRowShiftFilterGradient(on: boolean): void {
  rowShiftOn = on;
}

let rowShiftRuns = 0;
/** Filter gradients computed by rowShiftGraph so far in this thread. */
export function ortRowShiftRuns(): number {
  return rowShiftRuns;
}

/**
 * Where the row-shift graph beats one Gemm per tap: stride 1, several input channels, and a large image with few
 * channels — there the per-tap graph is bound by memory traffic, 9 strided copies of the input and 9 passes over dy.
 * On the U-Net's layers (2 × H × W, one thread, 2-core AMD EPYC; main/dev/dw-bench.ts): 256² 16 → 16 18.9 against
 * 20.6 ms, 32 → 16 34.9 against 55.8; 128² 64 → 32 24.3 against 30.4, 32 → 32 13.7 against 14.2. Fixed-shape
 * versions of both forms timed on every layer first found no gain from 64² down (16² 256 → 256: 17 against 15 ms)
 * nor with one input channel (256² 1 → 16: 7.8 against 7.1), so those keep the per-tap graph.
 */
function rowShiftApplies(g: Geometry, ci: number, on: boolean): boolean {
  return on && g.sh === 1 && g.sw === 1 && ci >= 8 && g.info.outHeight * g.info.outWidth >= 128 * 128;
}

/**
 * dW of a stride-1 convolution with the images flattened row after row (Wp = padded width): input pixel (y + i, x + j)
 * is flat index r + i·Wp + j of output pixel r = y·Wp + x, so every tap is a shift of one long row. dy is padded at
 * the bottom and right to the padded input's size, with zeros in the columns and rows that are no output pixel, so one
 * flat layout serves every image of the batch and no shift reads across images. Then, with the kw column shifts of
 * the tensor with fewer channels stacked (contiguous copies of its transpose), one Gemm per kernel row: M = kw·(those
 * channels), against one Gemm per tap with M = ci and N = co. The graph is built per shape (the offsets depend on Wp).
 */
function rowShiftGraph(key: string, shape: number[], co: number, g: Geometry): OnnxGraph {
  const [n, h, w, ci] = shape;
  const hp = h + g.top + g.bottom;
  const wp = w + g.left + g.right;
  const len = n * hp * wp;
  const initializers = [
    int64('pads', [0, g.top, g.left, 0, 0, g.bottom, g.right, 0]), int64('dyPads', [0, 0, 0, 0, 0, g.kh - 1, g.kw - 1, 0]),
    int64('xFlat', [len, ci]), int64('dyFlat', [len, co]), int64('axis0', [0]), int64('axis1', [1]),
  ];
  const nodes: OnnxNode[] = [
    { op: 'Pad', inputs: ['x', 'pads'], outputs: ['xp'] },
    { op: 'Reshape', inputs: ['xp', 'xFlat'], outputs: ['xf'] },
    { op: 'Pad', inputs: ['dy', 'dyPads'], outputs: ['dyp'] },
    { op: 'Reshape', inputs: ['dyp', 'dyFlat'], outputs: ['dyf'] },
  ];
  const rows: string[] = [];
  if (co < ci) {
    // dW[i, j] = Σ_r x[r + i·Wp] · dy[r − j]: dy's columns shifted right by j (zeros first), stacked (kw·co × L);
    // per kernel row the input's rows from i·Wp. L = len − (kh − 1)·Wp keeps every read inside the image.
    const rowsUsed = len - (g.kh - 1) * wp;
    initializers.push(int64('zero', [0]), int64('used', [rowsUsed]));
    nodes.push({ op: 'Transpose', inputs: ['dyf'], outputs: ['dyT'], attrs: { perm: [1, 0] } });
    const shifted: string[] = [];
    for (let j = 0; j < g.kw; j++) {
      initializers.push(int64(`shift${j}`, [0, j, 0, 0]));
      nodes.push({ op: 'Pad', inputs: ['dyT', `shift${j}`], outputs: [`dyS${j}`] }, { op: 'Slice', inputs: [`dyS${j}`, 'zero', 'used', 'axis1'], outputs: [`dyW${j}`] });
      shifted.push(`dyW${j}`);
    }
    nodes.push({ op: 'Concat', inputs: shifted, outputs: ['dyStack'], attrs: { axis: 0 } });
    for (let i = 0; i < g.kh; i++) {
      initializers.push(int64(`from${i}`, [i * wp]), int64(`end${i}`, [i * wp + rowsUsed]));
      nodes.push({ op: 'Slice', inputs: ['xf', `from${i}`, `end${i}`, 'axis0'], outputs: [`xRows${i}`] }, { op: 'Gemm', inputs: ['dyStack', `xRows${i}`], outputs: [`dwRow${i}`] });
      rows.push(`dwRow${i}`);
    }
    // Rows (i, j, co), columns ci → (kh, kw, ci, co).
    initializers.push(int64('dwT', [g.kh, g.kw, co, ci]));
    nodes.push(
      { op: 'Concat', inputs: rows, outputs: ['dwRows'], attrs: { axis: 0 } },
      { op: 'Reshape', inputs: ['dwRows', 'dwT'], outputs: ['dwT4'] },
      { op: 'Transpose', inputs: ['dwT4'], outputs: ['dw'], attrs: { perm: [0, 1, 3, 2] } },
    );
  } else {
    // dW[i, j] = Σ_r x[r + j] · dy[r − i·Wp]: the input's columns shifted left by j, stacked (kw·ci × L); per kernel
    // row dy's rows moved down by i·Wp (zeros first). L = len − (kw − 1).
    const rowsUsed = len - (g.kw - 1);
    const down = (g.kh - 1) * wp;
    initializers.push(int64('dyDown', [down, 0, 0, 0]));
    nodes.push({ op: 'Transpose', inputs: ['xf'], outputs: ['xT'], attrs: { perm: [1, 0] } }, { op: 'Pad', inputs: ['dyf', 'dyDown'], outputs: ['dyD'] });
    const shifted: string[] = [];
    for (let j = 0; j < g.kw; j++) {
      initializers.push(int64(`from${j}`, [j]), int64(`to${j}`, [j + rowsUsed]));
      nodes.push({ op: 'Slice', inputs: ['xT', `from${j}`, `to${j}`, 'axis1'], outputs: [`xW${j}`] });
      shifted.push(`xW${j}`);
    }
    nodes.push({ op: 'Concat', inputs: shifted, outputs: ['xStack'], attrs: { axis: 0 } });
    for (let i = 0; i < g.kh; i++) {
      initializers.push(int64(`dyFrom${i}`, [down - i * wp]), int64(`dyEnd${i}`, [down - i * wp + rowsUsed]));
      nodes.push({ op: 'Slice', inputs: ['dyD', `dyFrom${i}`, `dyEnd${i}`, 'axis0'], outputs: [`dyRows${i}`] }, { op: 'Gemm', inputs: ['xStack', `dyRows${i}`], outputs: [`dwRow${i}`] });
      rows.push(`dwRow${i}`);
    }
    // Rows (i, j, ci), columns co: already (kh, kw, ci, co).
    initializers.push(int64('dwShape', [g.kh, g.kw, ci, co]));
    nodes.push({ op: 'Concat', inputs: rows, outputs: ['dwRows'], attrs: { axis: 0 } }, { op: 'Reshape', inputs: ['dwRows', 'dwShape'], outputs: ['dw'] });
  }
  const inputs = [{ name: 'x', type: F, shape: [n, h, w, ci] }, { name: 'dy', type: F, shape: [n, g.info.outHeight, g.info.outWidth, co] }];
  return { name: key, initializers, nodes, inputs, outputs: [{ name: 'dw', type: F, shape: [g.kh, g.kw, ci, co] }] };
}

/** One Slice and one Gemm per tap: any stride and padding, built once per geometry (dynamic shapes). */
function perTapGraph(key: string, g: Geometry): OnnxGraph {
  // dW[kh, kw] = Xᵀ · DY over all output pixels, X the padded input read at tap (kh, kw) with the stride: one Slice
  // and one Gemm per tap. Measured against one convolution with a crop-sized kernel (x as ci images of n channels,
  // dy as co filters): 2–2.7× faster for every layer of the U-Net.
  const nodes: OnnxNode[] = [
    { op: 'Pad', inputs: ['x', 'pads'], outputs: ['xp'] },
    { op: 'Shape', inputs: ['dy'], outputs: ['dyShape'] },
    { op: 'Slice', inputs: ['dyShape', 'one', 'three'], outputs: ['outHw'] },
    // Rows and columns a tap reads: (out − 1)·s + 1.
    { op: 'Mul', inputs: ['outHw', 'strides'], outputs: ['outHwS'] },
    { op: 'Add', inputs: ['outHwS', 'oneMinusStrides'], outputs: ['span'] },
    { op: 'Shape', inputs: ['x'], outputs: ['xShape'] },
    { op: 'Slice', inputs: ['xShape', 'three', 'four'], outputs: ['ci'] },
    { op: 'Concat', inputs: ['minusOne', 'ci'], outputs: ['xRows'], attrs: { axis: 0 } },
    { op: 'Slice', inputs: ['dyShape', 'three', 'four'], outputs: ['co'] },
    { op: 'Concat', inputs: ['minusOne', 'co'], outputs: ['dyRows'], attrs: { axis: 0 } },
    { op: 'Reshape', inputs: ['dy', 'dyRows'], outputs: ['dy2'] },
  ];
  const initializers = [
    int64('pads', [0, g.top, g.left, 0, 0, g.bottom, g.right, 0]), int64('one', [1]), int64('three', [3]), int64('four', [4]), int64('minusOne', [-1]),
    int64('strides', [g.sh, g.sw]), int64('oneMinusStrides', [1 - g.sh, 1 - g.sw]), int64('hw', [1, 2]), int64('filterHw', [g.kh, g.kw, -1]),
  ];
  const taps: string[] = [];
  for (let kh = 0; kh < g.kh; kh++) {
    for (let kw = 0; kw < g.kw; kw++) {
      const t = `${kh}_${kw}`;
      initializers.push(int64(`start${t}`, [kh, kw]));
      nodes.push(
        { op: 'Add', inputs: ['span', `start${t}`], outputs: [`end${t}`] },
        { op: 'Slice', inputs: ['xp', `start${t}`, `end${t}`, 'hw', 'strides'], outputs: [`tap${t}`] },
        { op: 'Reshape', inputs: [`tap${t}`, 'xRows'], outputs: [`rows${t}`] },
        { op: 'Gemm', inputs: [`rows${t}`, 'dy2'], outputs: [`dw${t}`], attrs: { transA: 1 } },
      );
      taps.push(`dw${t}`);
    }
  }
  nodes.push(
    { op: 'Concat', inputs: taps, outputs: ['dwRows'], attrs: { axis: 0 } },
    { op: 'Concat', inputs: ['filterHw', 'co'], outputs: ['dwShape'], attrs: { axis: 0 } },
    { op: 'Reshape', inputs: ['dwRows', 'dwShape'], outputs: ['dw'] },
  );
  return { name: key, initializers, nodes, inputs: [nhwc('x'), nhwc('dy')], outputs: [filterInfo('dw', g.kh, g.kw)] };
}

/** The filter gradient's graph for this convolution: its session key, and how to build it. */
function filterGradientPlan(xShape: number[], co: number, g: Geometry, rowShift: boolean): { key: string; rowShift: boolean; build: () => OnnxGraph } {
  if (rowShiftApplies(g, xShape[3], rowShift)) {
    const key = `dwr/${geomKey(g)}/${xShape.join('x')}x${co}`;
    return { key, rowShift: true, build: () => rowShiftGraph(key, xShape, co, g) };
  }
  const key = `dw/${geomKey(g)}`;
  return { key, rowShift: false, build: () => perTapGraph(key, g) };
}

/**
 * The graph the Conv2DBackpropFilter replacement runs for input `xShape`, filter `filterShape` and tfjs' conv
 * attributes (strides, pad), with the row-shift form where it applies (rowShift) or the per-tap form; null where the
 * wasm kernel stays. For main/dev/dw-bench.ts.
 */
export function filterGradientGraph(xShape: number[], filterShape: number[], attrs: NamedAttrMap, rowShift: boolean): OnnxGraph | null {
  const g = geometry(xShape, filterShape, attrs);
  return g && filterGradientPlan(xShape, filterShape[3], g, rowShift).build();
}

function filterGradient(backend: WasmBackendLike, x: TensorInfo, dy: TensorInfo, filterShape: number[], g: Geometry): TensorInfo {
  const plan = filterGradientPlan(x.shape, filterShape[3], g, rowShiftOn);
  const s = ortSession(plan.key, plan.build);
  if (plan.rowShift) rowShiftRuns++;
  return runSession(backend, s, { x, dy }, 'dw', filterShape);
}

const replacements: Record<string, KernelFunc> = {
  Conv2D: ({ inputs, backend, attrs }) => {
    const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
    const g = geometry(x.shape, filter.shape, attrs ?? {});
    if (!g) return swap.original('Conv2D')({ inputs, backend, attrs });
    return forward(backend as unknown as WasmBackendLike, x, filter, undefined, false, g);
  },
  FusedConv2D: ({ inputs, backend, attrs }) => {
    const { x, filter, bias, preluActivationWeights } = inputs as { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const activation = (attrs?.activation as string | undefined) ?? 'linear';
    const g = geometry(x.shape, filter.shape, attrs ?? {});
    const biasOk = !bias || (bias.shape.length === 1 && bias.shape[0] === filter.shape[3]);
    if (!g || preluActivationWeights || !biasOk || (activation !== 'linear' && activation !== 'relu')) return swap.original('FusedConv2D')({ inputs, backend, attrs });
    return forward(backend as unknown as WasmBackendLike, x, filter, bias, activation === 'relu', g);
  },
  Conv2DBackpropInput: ({ inputs, backend, attrs }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const g = geometry(attrs!.inputShape as number[], filter.shape, attrs ?? {});
    const dx = g && inputGradient(backend as unknown as WasmBackendLike, dy, filter, g);
    return dx ?? swap.original('Conv2DBackpropInput')({ inputs, backend, attrs });
  },
  Conv2DBackpropFilter: ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const filterShape = attrs!.filterShape as number[];
    const g = geometry(x.shape, filterShape, attrs ?? {});
    if (!g) return swap.original('Conv2DBackpropFilter')({ inputs, backend, attrs });
    return filterGradient(backend as unknown as WasmBackendLike, x, dy, filterShape, g);
  },
};

const swap = new KernelSwap('wasm', replacements);

/**
 * Route the wasm backend's convolutions through ONNX Runtime (on = true) or back to the wasm kernels. Needs the wasm
 * backend with EMSeg's gradient kernels registered first (registerWasmGradientKernels). Throws if onnxruntime-node's
 * native binding cannot load; the caller then keeps the wasm kernels.
 */
export function useOrtConvolutions(on: boolean): void {
  if (on === swap.active()) return;
  if (on) initOrt();
  swap.use(on);
}

export function ortConvolutionsActive(): boolean {
  return swap.active();
}
