// Model benchmarks: inference speed with ONNX Runtime and with tfjs-wasm on the same model, FLOPs per pixel and the
// achieved GFLOP/s against the machine's matrix-multiply peak through ONNX Runtime, and training throughput.
import os from 'node:os';
import { access, mkdtemp, rm } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs';
import { encodeModel, TensorType } from '../../ml/onnx/proto';
import * as ort from 'onnxruntime-node';
import { DEFAULT_TILE_PX, predictTiled, tileAxis } from '../../ml/infer/tiled';
import { predictTf } from '../../ml/infer/predict-tf';
import { buildModel, macsPerPixel, sizeMultiple } from '../../ml/models';
import { initTf } from '../../ml/tfjs/backend';
import { ortConvolutionsActive, useNchwc, useOrtConvolutions } from '../../ml/tfjs/ort-conv-kernels';
import { useWasmDataKernels } from '../../ml/tfjs/wasm-kernels';
import { useWasmBatchNorm } from '../../ml/tfjs/wasm-batchnorm';
import { setWeights, Replica, makeBatch } from '../../ml/train/trainer';
import { DEFAULT_AUGMENT, type TrainingSlice } from '../../ml/train/augment';
import { DEFAULT_MEMBRANE_MODEL, DEFAULT_REFINER_MODEL, loadInferenceModel } from '../engine/models';
import { loadModel } from '../engine/model-store';
import { pseudoRandom } from '../../ml/models/test-helpers';
import { train } from '../engine/train';
import { join } from 'node:path';

/**
 * One optimisation step of the shipped U-Net architecture (16 base channels, depth 4) on `batchSize` random 256² crops
 * of a synthetic slice, in the current tfjs backend: what the training benchmark times (and main/dev/prof-train.ts).
 */
export function unetTrainingStep(batchSize: number): () => void {
  const replica = new Replica(buildModel({ kind: 'unet', baseChannels: 16, depth: 4, inChannels: 1 }), 1e-3);
  const slice: TrainingSlice = {
    width: 512, height: 512, channels: 1, raw: pseudoRandom(512 * 512, 4), target: new Uint8Array(512 * 512).map((_, i) => (i % 7 === 0 ? 1 : 0)),
  };
  const spec = { batchSize, cropPx: 256, augment: DEFAULT_AUGMENT, weighting: 'balanced' as const, membraneFraction: 0.2 };
  return () => {
    const b = makeBatch([slice], spec, 1);
    const { grads } = replica.gradients(b);
    replica.applyGradients(grads);
    tf.dispose([b.x, b.y, b.w]);
  };
}

async function matmulPeakGflops(): Promise<number> {
  const n = 1536;
  const bytes = encodeModel({
    name: 'mm', nodes: [{ op: 'MatMul', inputs: ['a', 'b'], outputs: ['c'] }], initializers: [],
    inputs: [{ name: 'a', type: TensorType.FLOAT, shape: [n, n] }, { name: 'b', type: TensorType.FLOAT, shape: [n, n] }],
    outputs: [{ name: 'c', type: TensorType.FLOAT, shape: [n, n] }],
  }, { opset: 13, producer: 'emseg-bench' });
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: os.availableParallelism() });
  const a = new ort.Tensor('float32', pseudoRandom(n * n, 1), [n, n]);
  const b = new ort.Tensor('float32', pseudoRandom(n * n, 2), [n, n]);
  await s.run({ a, b });
  const reps = 10;
  const t = performance.now();
  for (let i = 0; i < reps; i++) await s.run({ a, b });
  const sec = (performance.now() - t) / 1000 / reps;
  await s.release();
  return (2 * n ** 3) / sec / 1e9;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(() => true, () => false);
}

export async function benchModels(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const peak = await matmulPeakGflops();
  out.matmul_peak_gflops_ort = Number(peak.toFixed(1));
  for (const [name, dir] of [['membrane', DEFAULT_MEMBRANE_MODEL], ['refiner', DEFAULT_REFINER_MODEL]] as const) {
    if (!(await exists(dir))) {
      out[`${name}_note`] = `no shipped model at ${dir}`;
      continue;
    }
    const m = await loadInferenceModel(dir);
    const cfg = m.record.config;
    const flopsPerPx = 2 * macsPerPixel(cfg);
    out[`${name}_flops_per_px`] = Math.round(flopsPerPx);
    const side = 2048;
    const x = pseudoRandom(side * side * m.inChannels, 3);
    // A 2048² slice at the default tile edge and at 1024 px, whose overlaps recompute more context.
    for (const [key, tilePx] of [['', DEFAULT_TILE_PX], ['_tile1024', 1024]] as const) {
      const opts = { tilePx, marginPx: m.marginPx, multiple: m.multiple };
      await predictTiled(m.session, x, m.inChannels, side, side, opts); // warm-up: ONNX Runtime plans each new shape
      const t = performance.now();
      await predictTiled(m.session, x, m.inChannels, side, side, opts);
      const sec = (performance.now() - t) / 1000;
      const mpx = (side * side) / sec / 1e6;
      const axis = tileAxis(side, tilePx, m.marginPx, m.multiple);
      const computedPerOutput = (axis.tile * axis.starts.length) ** 2 / (side * side);
      out[`${name}_ort_mpx_per_s${key}`] = Number(mpx.toFixed(3));
      out[`${name}_ort_gflops_achieved${key}`] = Number(((mpx * 1e6 * flopsPerPx) / 1e9).toFixed(1));
      out[`${name}_tile_overlap_factor${key}`] = Number(computedPerOutput.toFixed(2));
      out[`${name}_fraction_of_matmul_peak${key}`] = Number(((mpx * 1e6 * flopsPerPx) / 1e9 / peak).toFixed(2));
    }
    await m.session.release();
    // The same model in tfjs-wasm with its own kernels, one 512×512 slice (whole-slice pass).
    await initTf('wasm');
    const ortOn = ortConvolutionsActive();
    useOrtConvolutions(false);
    const loaded = await loadModel(dir);
    const model = buildModel(cfg);
    setWeights(model, loaded.weights);
    const small = x.subarray(0, 512 * 512 * m.inChannels);
    predictTf(model, small, 512, 512, m.inChannels, sizeMultiple(cfg));
    const t2 = performance.now();
    predictTf(model, small, 512, 512, m.inChannels, sizeMultiple(cfg));
    out[`${name}_tfjs_wasm_mpx_per_s`] = Number(((512 * 512) / ((performance.now() - t2) / 1000) / 1e6).toFixed(3));
    useOrtConvolutions(ortOn);
    model.dispose();
  }
  // Training throughput of one replica on this thread (the trainer runs one replica per core); on the wasm backend
  // also without each of EMSeg's kernels, for comparison: with tfjs-wasm's own convolutions (the filter gradient,
  // missing from tfjs-wasm, still EMSeg's), and with tfjs-wasm as it comes (plus that gradient, and batch norm in
  // EMSeg's JavaScript loops, which were there first).
  const info = await initTf();
  const step = unetTrainingStep(2);
  const set = (ort: boolean, emseg: boolean, blocked = true) => () => {
    useOrtConvolutions(ort);
    useNchwc(blocked);
    useWasmDataKernels(emseg);
    useWasmBatchNorm(emseg);
  };
  const variants: Array<[string, () => void]> = info.name === 'wasm' && ortConvolutionsActive()
    ? [['', set(true, true)], ['_plain_ort_convolutions', set(true, true, false)], ['_wasm_convolutions', set(false, true)], ['_tfjs_wasm_kernels', set(false, false)]]
    : [['', () => undefined]];
  // Rounds of all variants, interleaved so that the machine's drift hits them alike; the median round counts.
  const times = variants.map(() => [] as number[]);
  for (let round = 0; round < 3; round++) {
    variants.forEach(([, use], i) => {
      use();
      step(); // the first step after a switch plans new ONNX Runtime sessions or wasm buffers
      const t = performance.now();
      step();
      step();
      times[i].push((performance.now() - t) / 2000);
    });
  }
  variants[0][1]();
  variants.forEach(([key], i) => {
    const sorted = times[i].slice().sort((a, b) => a - b);
    out[`train_unet16_samples_per_s_per_core_256px${key}`] = Number((2 / sorted[1]).toFixed(3));
  });
  out.train_note = 'samples of 256×256 per second for one replica on one core (the trainer runs one replica per core), median of 3 interleaved rounds; _plain_ort_convolutions: ONNX Runtime\'s convolutions without the blocked (NCHWc) layout, transposes around a plain Conv; _wasm_convolutions: tfjs-wasm\'s own convolutions (the filter gradient, which tfjs-wasm lacks, still EMSeg\'s); _tfjs_wasm_kernels: also tfjs-wasm\'s identity, concatenation, split and pooling gradient, and batch norm in JavaScript loops; train_unet16_steps_per_s_batch4_256px_all_cores: the whole trainer (emseg train: one replica per core, batches of 4 × 256², elastic deformation), and train_unet16_3000_steps_min the peer\'s 3,000 steps at that rate';
  // The whole trainer as `emseg train` runs it: one replica per core in worker threads, gradients exchanged through
  // shared memory, batches of 4 × 256² with elastic deformation, Adam. Steps per second between steps 10 and 40 (the
  // first steps plan ONNX Runtime sessions), and what the peer's 3,000 steps take at that rate.
  const dir = await mkdtemp(join(os.tmpdir(), 'emseg-bench-train-'));
  try {
    const slices: TrainingSlice[] = [0, 1].map((s) => ({
      width: 512, height: 512, channels: 1, raw: pseudoRandom(512 * 512, 10 + s), target: new Uint8Array(512 * 512).map((_, i) => ((i + s) % 7 === 0 ? 1 : 0)),
    }));
    const marks = new Map<number, number>();
    await train({
      role: 'membrane', config: { kind: 'unet', baseChannels: 16, depth: 4, inChannels: 1 }, train: slices, val: [], out: dir,
      steps: 41, batchSize: 4, cropPx: 256, lr: 1e-3, workers: os.availableParallelism(), seed: 1,
      augment: { ...DEFAULT_AUGMENT, elasticPx: 3 }, weighting: 'balanced', evalEvery: 1000,
      score: () => Promise.resolve({ vrand: 0 }),
      onProgress: (p) => marks.set(p.step, performance.now()),
    });
    const rate = 30 / ((marks.get(40)! - marks.get(10)!) / 1000);
    out.train_unet16_steps_per_s_batch4_256px_all_cores = Number(rate.toFixed(3));
    out.train_unet16_3000_steps_min = Number((3000 / rate / 60).toFixed(1));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  out.tfjs_backend = info.note;
  return out;
}
