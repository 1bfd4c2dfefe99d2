// The filter gradient of a 3×3 'same' convolution as ort-conv-kernels.ts computes it, per U-Net layer shape (batch 2,
// one thread): its row-shift graph where that applies (stride 1, ≥ 8 input channels, ≥ 128² pixels) against its
// per-tap graph, the same graphs the training kernels run (filterGradientGraph). Checks that they agree.
//   node --import tsx main/dev/dw-bench.ts        (LAYERS=256x16x16,… edge x ci x co; REPS, default 5)
import * as ort from 'onnxruntime-node';
import { binding, initOrt } from 'onnxruntime-node/dist/binding.js';
import { encodeModel, type OnnxGraph } from '../../ml/onnx/proto';
import { filterGradientGraph } from '../../ml/tfjs/ort-conv-kernels';

initOrt();
function session(g: OnnxGraph) {
  const bytes = encodeModel(g, { opset: 13, producer: 'dw-bench' });
  const s = new binding.InferenceSession();
  s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential', logSeverityLevel: 3 });
  return s;
}
const layers = (process.env.LAYERS ?? '256x1x16,256x16x16,256x32x16,128x16x32,128x32x32,128x64x32,64x32x64,64x64x64,64x128x64,32x64x128,32x128x128,16x128x256,16x256x256').split(',').map((s) => s.split('x').map(Number));
const n = 2;
const reps = Number(process.env.REPS ?? 5);
const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
const total: Record<string, number> = {};
for (const [hw, ci, co] of layers) {
  const xShape = [n, hw, hw, ci];
  const filterShape = [3, 3, ci, co];
  const feeds = {
    x: new ort.Tensor('float32', Float32Array.from({ length: n * hw * hw * ci }, (_, i) => Math.sin(i * 0.37)), xShape),
    dy: new ort.Tensor('float32', Float32Array.from({ length: n * hw * hw * co }, (_, i) => Math.cos(i * 0.91)), [n, hw, hw, co]),
  };
  const graphs = { 'per-tap': filterGradientGraph(xShape, filterShape, { strides: 1, pad: 'same' }, false)!, chosen: filterGradientGraph(xShape, filterShape, { strides: 1, pad: 'same' }, true)! };
  const rowShift = graphs.chosen.name.startsWith('dwr/');
  const sessions = Object.entries(graphs).map(([k, g]) => [k, session(g)] as const);
  const run = (s: ReturnType<typeof session>) => (s.run(feeds, { dw: null }, {}) as Record<string, ort.Tensor>).dw.data as Float32Array;
  const ref = run(sessions[0][1]);
  const got = run(sessions[1][1]);
  const err = got.reduce((m, v, i) => Math.max(m, Math.abs(v - ref[i])), 0);
  const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  if (err > 1e-4 * scale) console.log(`${hw}² ${ci}→${co}: MISMATCH ${err} (largest ${scale})`);
  const times: Record<string, number[]> = {};
  for (let r = 0; r < reps; r++) {
    for (const [k, s] of sessions) {
      const t0 = performance.now();
      run(s);
      (times[k] ??= []).push(performance.now() - t0);
    }
  }
  const flops = 2 * n * hw * hw * 9 * ci * co;
  const line = Object.entries(times).map(([k, t]) => {
    total[k] = (total[k] ?? 0) + med(t);
    return `${k === 'chosen' ? (rowShift ? 'row-shift' : 'per-tap (chosen)') : k} ${med(t).toFixed(1)} ms (${(flops / med(t) / 1e6).toFixed(1)} GFLOP/s)`;
  });
  console.log(`${hw}² ${ci}→${co}: ${line.join('  ')}`);
}
console.log(`per step: per-tap everywhere ${total['per-tap'].toFixed(1)} ms, as chosen ${total.chosen.toFixed(1)} ms`);
