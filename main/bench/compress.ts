// Compression benchmarks (issue 6), JSON out:
//   - int8 QDQ against fp32 in ONNX Runtime on a U-Net of the shipped size (16 base channels, depth 4; random weights
//     with batch-norm statistics that are not the identity, calibrated on ISBI training slices), 512×512, 1 thread and
//     all threads; file sizes;
//   - structured pruning (half the filters) of the same U-Net: MACs and ONNX Runtime speed of the smaller dense model;
//   - the CCI balanced-sparse convolution kernel against the dense kernel written the same way and against ONNX
//     Runtime's dense convolution, at the U-Net's layer sizes for a 512×512 slice (level 0, 2 and 3): bench/cci.ts,
//     also a suite of its own (`emseg bench --only cci`, seconds);
//   - when the shipped membrane model exists: its int8 copy against it on the validation slices (speed and V_rand),
//     the first target;
//   - the table rows of every folder in sample-data/models/compressed, with relief against magnitude pruning at equal
//     sparsity, the Lp-sphere folders' sparsity and V_rand against p, the binarized model's ensembles for K = 1…16,
//     and the 4×/0.01 and ensemble targets (a note names the command for every folder that is absent).
import os from 'node:os';
import { access, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildModel, macsPerPixel, type UNetConfig } from '../../ml/models';
import { initTf } from '../../ml/tfjs/backend';
import { modelToOnnxGraph } from '../../ml/onnx/export';
import { encodeModel } from '../../ml/onnx/proto';
import { createOnnxModel } from '../../ml/infer/onnx-session';
import { perturbBatchNorm, pseudoRandom } from '../../ml/models/test-helpers';
import { quantizeInt8 } from '../../ml/compress/int8';
import { pruneUNet } from '../../ml/compress/structured';
import { convDense } from '../../ml/compress/cci';
import { packActivations, packWeights, signBinary, xnorConv } from '../../ml/compress/binary';
import { XnorWasm } from '../../ml/compress/xnor-wasm';
import { normalizeSlice } from '../../ml/train/normalize';
import { TensorType } from '../../ml/onnx/proto';
import { COMPRESSED_MODELS, DEFAULT_MEMBRANE_MODEL, SAMPLE_STACK } from '../engine/models';
import { loadLabelledSlices } from '../engine/datasets';
import { compressModel, measureEnsemble, measureModelFolder, type ReportRow } from '../engine/compress';
import { loadModel } from '../engine/model-store';
import { ISBI_TRAIN_IMAGES } from './io';
import { benchCci } from './cci';

const exists = (p: string) => access(p).then(() => true, () => false);

async function isbiCalibration(n: number, side: number): Promise<Array<{ data: Float32Array; channels: number; height: number; width: number }>> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const path = join(ISBI_TRAIN_IMAGES, `${i}.png`);
    if (!(await exists(path))) break;
    const { data, info } = await sharp(path).greyscale().extract({ left: 0, top: 0, width: side, height: side }).raw().toBuffer({ resolveWithObject: true });
    out.push({ data: normalizeSlice({ width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, side * side) }), channels: 1, height: side, width: side });
  }
  if (out.length === 0) for (let i = 0; i < n; i++) out.push({ data: pseudoRandom(side * side, i + 1, 3.4), channels: 1, height: side, width: side });
  return out;
}

async function onnxMpxPerS(bytes: Uint8Array, threads: number, side: number): Promise<number> {
  const s = await createOnnxModel(bytes, { threads });
  const x = pseudoRandom(side * side, 7, 3.4);
  await s.run(x, 1, side, side);
  const reps = 3;
  const t = performance.now();
  for (let i = 0; i < reps; i++) await s.run(x, 1, side, side);
  await s.release();
  return (side * side * reps) / ((performance.now() - t) / 1000) / 1e6;
}

export async function benchCompress(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  await initTf();
  const cores = os.availableParallelism();
  const cfg: UNetConfig = { kind: 'unet', baseChannels: 16, depth: 4, inChannels: 1 };
  const model = buildModel(cfg);
  perturbBatchNorm(model);
  const graph = modelToOnnxGraph(model);
  const calib = await isbiCalibration(4, 256);
  const { graph: q } = await quantizeInt8(graph, calib, { threads: cores });
  const fp32 = encodeModel(graph, { opset: 13, producer: 'emseg-bench' });
  const int8 = encodeModel(q, { opset: 13, producer: 'emseg-bench' });
  out.unet16_fp32_onnx_mb = Number((fp32.length / 1e6).toFixed(3));
  out.unet16_int8_onnx_mb = Number((int8.length / 1e6).toFixed(3));
  for (const threads of [1, cores]) {
    const f = await onnxMpxPerS(fp32, threads, 512);
    const i = await onnxMpxPerS(int8, threads, 512);
    out[`unet16_fp32_mpx_per_s_${threads}t`] = Number(f.toFixed(3));
    out[`unet16_int8_mpx_per_s_${threads}t`] = Number(i.toFixed(3));
    out[`unet16_int8_speedup_${threads}t`] = Number((i / f).toFixed(2));
  }
  out.int8_speedup_target = 2;

  const pruned = pruneUNet(model, cfg, 0.5);
  out.structured_keep = 0.5;
  out.structured_macs_ratio = Number((macsPerPixel(pruned.config) / macsPerPixel(cfg)).toFixed(3));
  const prunedBytes = encodeModel(modelToOnnxGraph(pruned.model), { opset: 13, producer: 'emseg-bench' });
  out.structured_onnx_mb = Number((prunedBytes.length / 1e6).toFixed(3));
  const prunedMpx = await onnxMpxPerS(prunedBytes, cores, 512);
  out[`structured_fp32_mpx_per_s_${cores}t`] = Number(prunedMpx.toFixed(3));
  out[`structured_fp32_speedup_${cores}t`] = Number((prunedMpx / (out[`unet16_fp32_mpx_per_s_${cores}t`] as number)).toFixed(2));
  model.dispose();
  pruned.model.dispose();

  Object.assign(out, await benchCci());
  // Bitwise (XNOR–popcount) 3×3 convolution of ±1 values — in TypeScript and as the hand-assembled WebAssembly module
  // (ml/compress/xnor-wasm.ts: scalar i32.popcnt, and SIMD four filters at a time) — against the float kernel written the same way and against ONNX Runtime's
  // float convolution of the same layer (1 thread each; packing the activations included, as inference would).
  for (const [c, side] of [[16, 128], [64, 64], [128, 32]] as const) {
    const xs = signBinary(pseudoRandom(c * side * side, 3));
    const ws = signBinary(pseudoRandom(c * c * 9, 4));
    const pw = packWeights(ws, c, c, 3, 3);
    const time = (f: () => void) => {
      f();
      const t = performance.now();
      for (let i = 0; i < 2; i++) f();
      return (performance.now() - t) / 2;
    };
    const floatMs = time(() => convDense(xs, c, side, side, ws, c, 3, 3));
    const xnorMs = time(() => xnorConv(packActivations(xs, c, side, side), c, side, side, pw, c, 3, 3));
    const wasm = new XnorWasm();
    const wasmMs = time(() => wasm.conv(packActivations(xs, c, side, side), c, side, side, pw, c));
    const simdMs = time(() => wasm.conv4(packActivations(xs, c, side, side), c, side, side, pw, c));
    const conv = encodeModel({
      name: 'conv', nodes: [{ op: 'Conv', inputs: ['input', 'W'], outputs: ['membrane'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } }],
      initializers: [{ name: 'W', dims: [c, c, 3, 3], type: TensorType.FLOAT, data: ws }],
      inputs: [{ name: 'input', type: TensorType.FLOAT, shape: [1, c, side, side] }], outputs: [{ name: 'membrane', type: TensorType.FLOAT, shape: [1, c, side, side] }],
    }, { opset: 13, producer: 'emseg-bench' });
    const s = await createOnnxModel(conv, { threads: 1 });
    const ortMs = await (async () => {
      await s.run(xs, c, side, side);
      const t = performance.now();
      for (let i = 0; i < 3; i++) await s.run(xs, c, side, side);
      return (performance.now() - t) / 3;
    })();
    await s.release();
    const key = `xnor_${c}ch_${side}px`;
    out[`${key}_speedup_vs_ts_float`] = Number((floatMs / xnorMs).toFixed(2));
    out[`${key}_speedup_vs_ort_fp32`] = Number((ortMs / xnorMs).toFixed(2));
    out[`${key}_wasm_speedup_vs_ts_float`] = Number((floatMs / wasmMs).toFixed(2));
    out[`${key}_wasm_speedup_vs_ort_fp32`] = Number((ortMs / wasmMs).toFixed(2));
    out[`${key}_wasm_gop_per_s`] = Number(((2 * c * c * 9 * side * side) / wasmMs / 1e6).toFixed(3));
    out[`${key}_wasm_simd_speedup_vs_ort_fp32`] = Number((ortMs / simdMs).toFixed(2));
    out[`${key}_wasm_simd_gop_per_s`] = Number(((2 * c * c * 9 * side * side) / simdMs / 1e6).toFixed(3));
    out[`${key}_ort_fp32_gflop_per_s`] = Number(((2 * c * c * 9 * side * side) / ortMs / 1e6).toFixed(3));
  }
  out.xnor_note = 'binary ops per second count a ±1 multiply-add as 2 ops, like a float FLOP pair; packing the activations is included; ORT fp32 = its MLAS convolution of the same layer, 1 thread';

  const hasShipped = await exists(DEFAULT_MEMBRANE_MODEL);
  const val = await loadLabelledSlices(SAMPLE_STACK, join(SAMPLE_STACK, '..', 'label'), 'all').catch(() => []);
  let base: ReportRow | null = null;
  if (hasShipped && val.length > 0) {
    // The shipped model and its int8 copy on the validation slices (sample stack = ISBI 2012 slices 20-29).
    const train = await loadLabelledSlices(ISBI_TRAIN_IMAGES, join(ISBI_TRAIN_IMAGES, '..', 'label'), [0, 1, 2, 3, 4, 5, 6, 7]).catch(() => []);
    const dir = join(os.tmpdir(), `emseg-bench-int8-${process.pid}`);
    base = await measureModelFolder(DEFAULT_MEMBRANE_MODEL, val, 0);
    Object.assign(out, { shipped_fp32_mpx_per_s: base.mpxPerS, shipped_fp32_vrand: base.vrand, shipped_fp32_mb: base.fileMB });
    if (train.length > 0) {
      await compressModel({ method: 'int8', src: DEFAULT_MEMBRANE_MODEL, out: dir, data: { train, val: [], membraneValue: 0 },
        fineTune: { steps: 0, batchSize: 1, cropPx: 256, lr: 0, workers: 1, seed: 1, evalEvery: 1 } });
      const q8 = await measureModelFolder(dir, val, 0);
      Object.assign(out, {
        shipped_int8_mpx_per_s: q8.mpxPerS, shipped_int8_vrand: q8.vrand, shipped_int8_mb: q8.fileMB,
        shipped_int8_speedup: Number((q8.mpxPerS / base.mpxPerS).toFixed(2)), shipped_int8_vrand_delta: Number((q8.vrand - base.vrand).toFixed(4)),
      });
      await rm(dir, { recursive: true, force: true });
    }
  } else {
    out.shipped_note = `no shipped model at ${DEFAULT_MEMBRANE_MODEL}: only synthetic figures, and compressed folders without a reference row`;
  }
  Object.assign(out, await compressedFolderFigures(val, base));
  return out;
}

/** The command that makes each issue-6 folder, for the notes of absent ones. */
const MAKES: Record<string, string> = {
  relief: 'emseg compress --method relief (also writes relief-magnitude)',
  'relief-magnitude': 'emseg compress --method relief',
  lpsphere: 'emseg compress --method lpsphere [--p <x> --out sample-data/models/compressed/lpsphere-p<x>]',
  binary: 'emseg compress --method binary',
};

/**
 * Rows of every folder in sample-data/models/compressed on the validation slices, and the comparisons:
 * relief against magnitude pruning at equal sparsity, sparsity and V_rand against p for the Lp-sphere folders, the
 * binarized ensembles for K = 1…16 (and the smallest K within 0.01 V_rand of the float model), and the best speed-up
 * within 0.01 V_rand. A missing folder gives a note naming the command that makes it.
 */
async function compressedFolderFigures(val: Awaited<ReturnType<typeof loadLabelledSlices>>, base: ReportRow | null): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const compressed = COMPRESSED_MODELS;
  const names: string[] = [];
  for (const name of (await readdir(compressed).catch(() => [] as string[])).sort()) if (await exists(join(compressed, name, 'model.json'))) names.push(name);
  // Lp-sphere folders may be a sweep over p (lpsphere-p1.25, …): any folder starting with the name counts.
  const present = (m: string) => (m === 'lpsphere' ? names.some((n) => n.startsWith(m)) : names.includes(m));
  for (const m of Object.keys(MAKES)) if (!present(m)) out[`${m.replace('-', '_')}_note`] = `no folder ${join(compressed, m)}: make it with ${MAKES[m]}`;
  if (val.length === 0) {
    out.compressed_note = `no validation stack at ${SAMPLE_STACK}: compressed folders not measured`;
    return out;
  }
  const rows: Record<string, ReportRow> = {};
  for (const name of names) {
    rows[name] = await measureModelFolder(join(compressed, name), val, 0);
    out[`table_${name}`] = JSON.stringify(rows[name]);
  }
  if (rows.relief && rows['relief-magnitude']) {
    Object.assign(out, {
      relief_vrand: rows.relief.vrand, relief_sparsity: rows.relief.sparsity ?? 'n/a', magnitude_equal_sparsity_vrand: rows['relief-magnitude'].vrand,
      magnitude_equal_sparsity: rows['relief-magnitude'].sparsity ?? 'n/a', relief_minus_magnitude_vrand: Number((rows.relief.vrand - rows['relief-magnitude'].vrand).toFixed(4)),
    });
  }
  const sweep = [];
  for (const name of names.filter((n) => n.startsWith('lpsphere'))) {
    const c = (await loadModel(join(compressed, name))).record.compression ?? {};
    sweep.push({ folder: name, p: c.p, h: c.h, sparsity: c.sparsity, vrand: rows[name].vrand });
  }
  if (sweep.length > 0) out.lpsphere_sweep = JSON.stringify(sweep.sort((a, b) => Number(a.p) - Number(b.p)));
  if (rows.binary) {
    const ens = await measureEnsemble(join(compressed, 'binary'), val, 0, [1, 2, 4, 8, 16]);
    out.binary_deterministic_vrand = rows.binary.vrand;
    out.binary_ensemble = JSON.stringify(ens);
    if (base) {
      const hit = ens.find((e) => e.vrand >= base.vrand - 0.01);
      if (hit) out.binary_ensemble_target_k = hit.k;
      else {
        const best = ens.reduce((a, e) => (e.vrand > a.vrand ? e : a));
        out.binary_ensemble_target_miss = `no K ≤ 16 within 0.01 V_rand of the float model: best K = ${best.k} at ${best.vrand} against ${base.vrand} (short by ${(base.vrand - 0.01 - best.vrand).toFixed(4)})`;
      }
    }
  }
  if (base) {
    // The second target: some method ≥ 4× the float speed with V_rand within 0.01.
    const ok = Object.entries(rows).filter(([, r]) => r.vrand >= base.vrand - 0.01).map(([n, r]) => ({ n, x: r.mpxPerS / base.mpxPerS }));
    const best = ok.reduce((a, r) => (r.x > a.x ? r : a), { n: 'none', x: 0 });
    out.fastest_within_0_01_vrand = best.n;
    out.fastest_within_0_01_vrand_speedup = Number(best.x.toFixed(2));
    out.speedup_target = 4;
  }
  return out;
}
