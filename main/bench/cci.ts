// The CCI kernel benchmark (issue 6), JSON out, in seconds (`emseg bench --only cci`; the compress suite includes
// the same rows): the balanced-sparse 3×3 convolution of ml/compress/cci.ts against the dense convolution at the same
// layer sizes — the dense kernel written the same way in the same language (what the structure buys), and ONNX
// Runtime's dense convolution of the same layer (what EMSeg runs in production), all on one thread.
//
// Layer sizes are the shipped U-Net's (16 base channels, depth 4) for a 512×512 slice: level 0 is 16 channels at
// 512², level 2 64 at 128², level 3 128 at 64². The images here are smaller (each kernel's time is linear in the
// pixels) so the suite stays short; GMAC/s is what compares across sizes. Weights are masked by CCI's own rule
// (ml/compress/cci.ts: the N largest of every G input channels per tap), so the sparse kernel sees the structure it
// would see in a trained CCI model.
import { cciMask, convBalanced, convDense, packBalanced, type CciOptions } from '../../ml/compress/cci';
import { createOnnxModel } from '../../ml/infer/onnx-session';
import { pseudoRandom } from '../../ml/models/test-helpers';
import { encodeModel, TensorType } from '../../ml/onnx/proto';

const LAYERS = [
  [16, 256],
  [64, 64],
  [128, 32],
] as const;
const PATTERNS: CciOptions[] = [
  { group: 4, keep: 1 },
  { group: 8, keep: 2 },
];

/** Milliseconds per call: one warm-up call, then the mean of two. */
function time(f: () => void): number {
  f();
  const t = performance.now();
  for (let i = 0; i < 2; i++) f();
  return (performance.now() - t) / 2;
}

/** A CCI-masked 3×3 kernel, c → c channels, in the kernels' tap-major layout [co][kh][kw][ci]. */
function maskedTapMajor(c: number, opts: CciOptions, seed: number): Float32Array {
  // tfjs layout [kh][kw][ci][co], where CCI masks during training.
  const tfjs = pseudoRandom(9 * c * c, seed);
  const mask = cciMask(tfjs, [3, 3, c, c], opts);
  const out = new Float32Array(tfjs.length);
  for (let t = 0; t < 9; t++) for (let i = 0; i < c; i++) for (let o = 0; o < c; o++) if (mask[(t * c + i) * c + o]) out[(o * 9 + t) * c + i] = tfjs[(t * c + i) * c + o];
  return out;
}

/** ONNX Runtime's dense 3×3 "same" convolution of this layer (dense weights of the same shape), one thread. */
async function ortConvMs(c: number, side: number, x: Float32Array, tapMajor: Float32Array): Promise<number> {
  // ONNX wants [co][ci][kh][kw].
  const w = new Float32Array(tapMajor.length);
  for (let o = 0; o < c; o++) for (let t = 0; t < 9; t++) for (let i = 0; i < c; i++) w[(o * c + i) * 9 + t] = tapMajor[(o * 9 + t) * c + i];
  const graph = encodeModel(
    {
      name: 'conv',
      nodes: [{ op: 'Conv', inputs: ['input', 'W'], outputs: ['membrane'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }],
      initializers: [{ name: 'W', dims: [c, c, 3, 3], type: TensorType.FLOAT, data: w }],
      inputs: [{ name: 'input', type: TensorType.FLOAT, shape: [1, c, side, side] }],
      outputs: [{ name: 'membrane', type: TensorType.FLOAT, shape: [1, c, side, side] }],
    },
    { opset: 13, producer: 'emseg-bench' },
  );
  const s = await createOnnxModel(graph, { threads: 1 });
  try {
    await s.run(x, c, side, side);
    const reps = 3;
    const t = performance.now();
    for (let i = 0; i < reps; i++) await s.run(x, c, side, side);
    return (performance.now() - t) / reps;
  } finally {
    await s.release();
  }
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

export async function benchCci(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  for (const [c, side] of LAYERS) {
    const x = pseudoRandom(c * side * side, 2);
    const denseMacs = c * c * 9 * side * side;
    let ortMs: number | null = null;
    for (const opts of PATTERNS) {
      const tap = maskedTapMajor(c, opts, 1);
      const k = packBalanced(tap, c, c, 3, 3, opts);
      // The dense kernel runs the same masked weights with their zeros: the work a dense layer of this size does.
      const denseMs = time(() => convDense(x, c, side, side, tap, c, 3, 3));
      const balancedMs = time(() => convBalanced(x, side, side, k));
      ortMs ??= await ortConvMs(c, side, x, tap);
      const key = `cci_${c}ch_${side}px_g${opts.group}n${opts.keep}`;
      Object.assign(out, {
        [`${key}_dense_ms`]: round(denseMs, 2),
        [`${key}_balanced_ms`]: round(balancedMs, 2),
        [`${key}_dense_gmac_per_s`]: round(denseMacs / denseMs / 1e6, 3),
        // MACs the balanced kernel actually performs (N of every G), per second.
        [`${key}_balanced_gmac_per_s`]: round((c * 9 * k.perTap * side * side) / balancedMs / 1e6, 3),
        [`${key}_speedup`]: round(denseMs / balancedMs, 2),
        [`${key}_ideal_speedup`]: opts.group / opts.keep,
        [`${key}_ort_fp32_ms`]: round(ortMs, 2),
        [`${key}_speedup_vs_ort_fp32`]: round(ortMs / balancedMs, 2),
      });
    }
  }
  out.cci_note =
    'speedup = dense kernel time / balanced-sparse kernel time, both plain TypeScript on typed arrays, 1 thread, the same weight-stationary loop (ideal = G/N); ' +
    'ort_fp32 = ONNX Runtime\'s dense convolution of the same layer, 1 thread (its MLAS kernels are far faster than any TypeScript loop, so the structure pays only inside one kernel family)';
  return out;
}
