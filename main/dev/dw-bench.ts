// The filter gradient of a 3×3 'same' convolution as ONNX graphs, timed per U-Net layer shape (batch 2, one thread):
// per-tap, one Gemm per tap as ort-conv-kernels.ts computes it for small images; dy-shift and x-shift, the two forms
// of its row-shift graph (rowShiftGraph), written out here for fixed shapes. Checks each against per-tap.
//   node --import tsx main/dev/dw-bench.ts        (LAYERS=256x16x16,… edge x ci x co; REPS, default 5)
import * as ort from 'onnxruntime-node';
import { binding, initOrt } from 'onnxruntime-node/dist/binding.js';
import { encodeModel, TensorType, type OnnxGraph, type OnnxNode } from '../../ml/onnx/proto';

initOrt();
const F = TensorType.FLOAT;
const int64 = (name: string, values: number[]) => ({ name, dims: [values.length], type: TensorType.INT64, data: BigInt64Array.from(values.map(BigInt)) });
function session(g: OnnxGraph) {
  const bytes = encodeModel(g, { opset: 13, producer: 'x' });
  const s = new binding.InferenceSession();
  s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', logSeverityLevel: 3 });
  return s;
}
function perTap(n: number, h: number, w: number, ci: number, co: number): OnnxGraph {
  const nodes: OnnxNode[] = [{ op: 'Pad', inputs: ['x', 'pads'], outputs: ['xp'] }, { op: 'Reshape', inputs: ['dy', 'dyRows'], outputs: ['dy2'] }];
  const inits = [int64('pads', [0, 1, 1, 0, 0, 1, 1, 0]), int64('hw', [1, 2]), int64('xRows', [-1, ci]), int64('dyRows', [-1, co]), int64('dwShape', [3, 3, ci, co])];
  const taps: string[] = [];
  for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) {
    const t = `${a}_${b}`;
    inits.push(int64(`s${t}`, [a, b]), int64(`e${t}`, [a + h, b + w]));
    nodes.push({ op: 'Slice', inputs: ['xp', `s${t}`, `e${t}`, 'hw'], outputs: [`tap${t}`] }, { op: 'Reshape', inputs: [`tap${t}`, 'xRows'], outputs: [`r${t}`] },
      { op: 'Gemm', inputs: [`r${t}`, 'dy2'], outputs: [`dw${t}`], attrs: { transA: 1 } });
    taps.push(`dw${t}`);
  }
  nodes.push({ op: 'Concat', inputs: taps, outputs: ['dwr'], attrs: { axis: 0 } }, { op: 'Reshape', inputs: ['dwr', 'dwShape'], outputs: ['dw'] });
  return { name: 'cur', nodes, initializers: inits, inputs: [{ name: 'x', type: F, shape: [n, h, w, ci] }, { name: 'dy', type: F, shape: [n, h, w, co] }], outputs: [{ name: 'dw', type: F, shape: [3, 3, ci, co] }] };
}
// dy-shift: x padded NHWC flat [L, ci]; dy padded (bottom/right) flat, transposed [co, L], three copies shifted right by kw
// stacked [3co, L']; per kh one Gemm of that with the x window at offset kh·Wp → [3co, ci] = dW[kh, kw, :, :]ᵀ.
function dyShift(n: number, h: number, w: number, ci: number, co: number): OnnxGraph {
  const hp = h + 2, wp = w + 2, L = n * hp * wp, Lv = L - 2 * wp;
  const inits = [int64('pads', [0, 1, 1, 0, 0, 1, 1, 0]), int64('dpads', [0, 0, 0, 0, 0, 2, 2, 0]), int64('xL', [L, ci]), int64('dyL', [L, co]),
    int64('ax0', [0]), int64('ax1', [1]), int64('sh', [0, 0, 0, 0, 0, 0, 0, 0])];
  const nodes: OnnxNode[] = [
    { op: 'Pad', inputs: ['x', 'pads'], outputs: ['xp'] },
    { op: 'Reshape', inputs: ['xp', 'xL'], outputs: ['xf'] },
    { op: 'Pad', inputs: ['dy', 'dpads'], outputs: ['dyp'] },
    { op: 'Reshape', inputs: ['dyp', 'dyL'], outputs: ['dyf'] },
    { op: 'Transpose', inputs: ['dyf'], outputs: ['dyt'], attrs: { perm: [1, 0] } },
  ];
  // dy shifted right by kw: columns [−kw, Lv − kw) of dyt, zeros before 0 (Pad on the left by kw, then slice).
  const shifted: string[] = [];
  for (let kw = 0; kw < 3; kw++) {
    inits.push(int64(`lp${kw}`, [0, kw, 0, 0]), int64(`le${kw}`, [Lv]), int64(`ls${kw}`, [0]));
    nodes.push({ op: 'Pad', inputs: ['dyt', `lp${kw}`], outputs: [`dyt${kw}`] }, { op: 'Slice', inputs: [`dyt${kw}`, `ls${kw}`, `le${kw}`, 'ax1'], outputs: [`dys${kw}`] });
    shifted.push(`dys${kw}`);
  }
  nodes.push({ op: 'Concat', inputs: shifted, outputs: ['D3'], attrs: { axis: 0 } });
  const parts: string[] = [];
  for (let kh = 0; kh < 3; kh++) {
    inits.push(int64(`s${kh}`, [kh * wp]), int64(`e${kh}`, [kh * wp + Lv]));
    nodes.push({ op: 'Slice', inputs: ['xf', `s${kh}`, `e${kh}`, 'ax0'], outputs: [`X${kh}`] }, { op: 'Gemm', inputs: ['D3', `X${kh}`], outputs: [`g${kh}`] });
    parts.push(`g${kh}`);
  }
  // [3 kh · 3 kw · co, ci] → [kh, kw, co, ci] → [kh, kw, ci, co]
  inits.push(int64('g4', [3, 3, co, ci]));
  nodes.push({ op: 'Concat', inputs: parts, outputs: ['G'], attrs: { axis: 0 } }, { op: 'Reshape', inputs: ['G', 'g4'], outputs: ['G4'] }, { op: 'Transpose', inputs: ['G4'], outputs: ['dw'], attrs: { perm: [0, 1, 3, 2] } });
  return { name: 'kh3', nodes, initializers: inits, inputs: [{ name: 'x', type: F, shape: [n, h, w, ci] }, { name: 'dy', type: F, shape: [n, h, w, co] }], outputs: [{ name: 'dw', type: F, shape: [3, 3, ci, co] }] };
}
// x-shift: x padded NHWC flat, transposed [ci, L], three copies shifted left by kw stacked [3ci, L']; per kh one Gemm with
// dy (padded, flat [L, co]) shifted down by kh·Wp → [3ci, co] = dW[kh, :, :, :].
function xShift(n: number, h: number, w: number, ci: number, co: number): OnnxGraph {
  const hp = h + 2, wp = w + 2, L = n * hp * wp, Lv = L - 2;
  const inits = [int64('pads', [0, 1, 1, 0, 0, 1, 1, 0]), int64('dpads', [0, 0, 0, 0, 0, 2, 2, 0]), int64('xL', [L, ci]), int64('dyL', [L, co]),
    int64('ax0', [0]), int64('ax1', [1]), int64('top', [2 * wp, 0, 0, 0])];
  const nodes: OnnxNode[] = [
    { op: 'Pad', inputs: ['x', 'pads'], outputs: ['xp'] },
    { op: 'Reshape', inputs: ['xp', 'xL'], outputs: ['xf'] },
    { op: 'Transpose', inputs: ['xf'], outputs: ['xt'], attrs: { perm: [1, 0] } },
    { op: 'Pad', inputs: ['dy', 'dpads'], outputs: ['dyp'] },
    { op: 'Reshape', inputs: ['dyp', 'dyL'], outputs: ['dyf'] },
    { op: 'Pad', inputs: ['dyf', 'top'], outputs: ['dyT'] },
  ];
  const shifted: string[] = [];
  for (let kw = 0; kw < 3; kw++) {
    inits.push(int64(`xs${kw}`, [kw]), int64(`xe${kw}`, [kw + Lv]));
    nodes.push({ op: 'Slice', inputs: ['xt', `xs${kw}`, `xe${kw}`, 'ax1'], outputs: [`xw${kw}`] });
    shifted.push(`xw${kw}`);
  }
  nodes.push({ op: 'Concat', inputs: shifted, outputs: ['X3'], attrs: { axis: 0 } });
  const parts: string[] = [];
  for (let kh = 0; kh < 3; kh++) {
    inits.push(int64(`s${kh}`, [(2 - kh) * wp]), int64(`e${kh}`, [(2 - kh) * wp + Lv]));
    nodes.push({ op: 'Slice', inputs: ['dyT', `s${kh}`, `e${kh}`, 'ax0'], outputs: [`D${kh}`] }, { op: 'Gemm', inputs: ['X3', `D${kh}`], outputs: [`g${kh}`] });
    parts.push(`g${kh}`);
  }
  inits.push(int64('g4', [3, 3, ci, co]));
  nodes.push({ op: 'Concat', inputs: parts, outputs: ['G'], attrs: { axis: 0 } }, { op: 'Reshape', inputs: ['G', 'g4'], outputs: ['dw'] });
  return { name: 'kw3', nodes, initializers: inits, inputs: [{ name: 'x', type: F, shape: [n, h, w, ci] }, { name: 'dy', type: F, shape: [n, h, w, co] }], outputs: [{ name: 'dw', type: F, shape: [3, 3, ci, co] }] };
}
const layers = (process.env.LAYERS ?? '256x1x16,256x16x16,256x32x16,128x16x32,128x32x32,128x64x32,64x32x64,64x64x64,64x128x64,32x64x128,32x128x128,16x128x256,16x256x256').split(',').map((s) => s.split('x').map(Number));
const n = 2;
const reps = Number(process.env.REPS ?? 5);
const tot: Record<string, number> = {};
for (const [hw, ci, co] of layers) {
  const x = Float32Array.from({ length: n * hw * hw * ci }, (_, i) => Math.sin(i * 0.37));
  const dy = Float32Array.from({ length: n * hw * hw * co }, (_, i) => Math.cos(i * 0.91));
  const feeds = { x: new ort.Tensor('float32', x, [n, hw, hw, ci]), dy: new ort.Tensor('float32', dy, [n, hw, hw, co]) };
  const variants: Record<string, ReturnType<typeof session>> = { 'per-tap': session(perTap(n, hw, hw, ci, co)), 'dy-shift': session(dyShift(n, hw, hw, ci, co)), 'x-shift': session(xShift(n, hw, hw, ci, co)) };
  const ref = (variants['per-tap'].run(feeds, { dw: null }, {}) as Record<string, ort.Tensor>).dw.data as Float32Array;
  const times: Record<string, number[]> = {};
  for (let r = 0; r < reps; r++) for (const [k, s] of Object.entries(variants)) {
    const t0 = performance.now();
    const got = (s.run(feeds, { dw: null }, {}) as Record<string, ort.Tensor>).dw.data as Float32Array;
    (times[k] ??= []).push(performance.now() - t0);
    if (r === 0) { let e = 0, m = 0; for (let i = 0; i < ref.length; i++) { e = Math.max(e, Math.abs(got[i] - ref[i])); m = Math.max(m, Math.abs(ref[i])); } if (e > 1e-3 * m) console.log(`${k} MISMATCH ${e} / ${m}`); }
  }
  const med = (a: number[]) => a.sort((p, q) => p - q)[a.length >> 1];
  const flops = 2 * n * hw * hw * 9 * ci * co;
  console.log(`${hw}² ${ci}→${co}: ` + Object.entries(times).map(([k, t]) => { tot[k] = (tot[k] ?? 0) + med(t); return `${k} ${med(t).toFixed(1)} ms (${(flops / med(t) / 1e6).toFixed(1)} GF/s)`; }).join('  '));
}
console.log('total', Object.entries(tot).map(([k, v]) => `${k} ${v.toFixed(1)}`).join('  '));
