// EMSeg model folders. A model is a folder holding:
//   model.json    — format tag, kind, architecture config, weight manifest, training record and validation scores
//                   (written last, so a folder with a model.json is complete);
//   weights.bin   — all tfjs weights (trainable and batch-norm statistics), little-endian float32 (or float16 where
//                   model.json says weightsDtype: 'float16'), in manifest order: what fine-tuning starts from;
//   model.onnx    — the exported inference graph (batch norm folded), when exported;
//   optimizer.bin — Adam's state, only in training checkpoints (so a resumed run continues exactly).
import type { TunedSegmentation } from '../../ml/segmentation/tune';
import { readFile, mkdir, access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from './atomic';
import type { ModelConfig } from '../../ml/models';
import type { NamedArray } from '../../ml/train/trainer';
import { floatsToHalf, halfToFloats } from '../../ml/onnx/half';

export interface WeightEntry {
  name: string;
  shape: number[];
}

export interface ModelRecord {
  format: 'emseg-model';
  version: 1;
  /** What the model does: a membrane model maps raw slices to membrane maps; a refiner maps a map (+raw) to a map. */
  role: 'membrane' | 'refiner';
  config: ModelConfig;
  weights: WeightEntry[];
  /** For refiners: the number of refinement rounds chosen on validation. */
  rounds?: number;
  /** Free-form training record: data, steps, time, machine, backend. */
  training?: Record<string, unknown>;
  /** Validation scores (ISBI metrics on the validation slices). */
  validation?: Record<string, unknown>;
  /**
   * Watershed thresholds chosen on the training slices for the maps after each number of refinement rounds
   * (segmentation-tuning.ts); segment() uses them unless told otherwise. A refiner holds rounds 0..N for the membrane
   * model it was trained with; a membrane model may hold round 0.
   */
  segmentation?: TunedSegmentation;
  /** Compression method and its parameters, for compressed models. */
  compression?: Record<string, unknown>;
  onnx?: string;
  /**
   * In-plane pixel size of the training data in nm, where known. `emseg segment` resizes stacks of another pixel size
   * to it for inference (the shipped models: 4 nm, ISBI 2012).
   */
  pixelSizeNm?: number;
  /**
   * Section thickness (z step) of the training data in nm, where known: a z-context model learnt what neighbours this
   * far apart look like, and `emseg segment` says so when a stack's sections are much thinner or thicker.
   */
  sectionNm?: number;
  /** How weights.bin stores the values: float32 (default) or float16 (shipped models: half the size). */
  weightsDtype?: 'float32' | 'float16';
}

export interface LoadedModel {
  dir: string;
  record: ModelRecord;
  weights: Float32Array[];
}

export function weightEntries(model: tf.LayersModel): WeightEntry[] {
  return model.weights.map((w) => ({ name: w.originalName, shape: w.shape as number[] }));
}

function concat(arrays: Float32Array[]): Uint8Array {
  const total = arrays.reduce((a, w) => a + w.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const w of arrays) {
    out.set(w, o);
    o += w.length;
  }
  return new Uint8Array(out.buffer);
}

function split(buf: Buffer, shapes: number[][], dtype: 'float32' | 'float16' = 'float32'): Float32Array[] {
  const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const all = dtype === 'float16' ? halfToFloats(new Uint16Array(bytes)) : new Float32Array(bytes);
  const out: Float32Array[] = [];
  let o = 0;
  for (const s of shapes) {
    const n = s.reduce((a, b) => a * b, 1);
    out.push(all.slice(o, o + n));
    o += n;
  }
  if (o !== all.length) throw new Error(`weights.bin holds ${all.length} values, the manifest ${o}`);
  return out;
}

export async function saveModel(dir: string, record: ModelRecord, weights: Float32Array[], optimizer?: NamedArray[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const flat = concat(weights);
  const data = record.weightsDtype === 'float16' ? new Uint8Array(floatsToHalf(new Float32Array(flat.buffer)).buffer) : flat;
  await writeFileAtomic(join(dir, 'weights.bin'), data);
  if (optimizer) {
    await writeFileAtomic(join(dir, 'optimizer.bin'), concat(optimizer.map((o) => o.data)));
    await writeFileAtomic(join(dir, 'optimizer.json'), JSON.stringify(optimizer.map((o) => ({ name: o.name, shape: o.shape }))));
  }
  await saveModelRecord(dir, record);
}

/** Writes a model folder's model.json alone (last, atomically): for record fields that do not touch the weights. */
export async function saveModelRecord(dir: string, record: ModelRecord): Promise<void> {
  await writeFileAtomic(join(dir, 'model.json'), `${JSON.stringify(record, null, 2)}\n`);
}

/** A model folder's model.json alone (the app's model list reads only this, never the weights). */
export async function loadModelRecord(dir: string): Promise<ModelRecord> {
  const path = join(dir, 'model.json');
  let record: ModelRecord | null;
  try {
    record = JSON.parse(await readFile(path, 'utf8')) as ModelRecord | null;
  } catch (e) {
    throw Object.assign(new Error(`${path}: not an EMSeg model folder (${(e as Error).message.split('\n')[0]})`), { userFacing: true });
  }
  if (record?.format !== 'emseg-model') throw Object.assign(new Error(`${path}: not an EMSeg model (format ${String(record?.format)})`), { userFacing: true });
  return record;
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  const record = await loadModelRecord(dir);
  const weights = split(await readFile(join(dir, 'weights.bin')), record.weights.map((w) => w.shape), record.weightsDtype);
  return { dir, record, weights };
}

/** Bytes of the file inference loads: the ONNX graph, or weights.bin for a folder that has none yet. */
export async function inferenceFileBytes(dir: string, record: ModelRecord): Promise<number> {
  const onnx = await stat(join(dir, record.onnx ?? 'model.onnx')).catch(() => null);
  return onnx ? onnx.size : (await stat(join(dir, 'weights.bin'))).size;
}

export async function loadOptimizer(dir: string): Promise<NamedArray[]> {
  try {
    await access(join(dir, 'optimizer.json'));
  } catch {
    return [];
  }
  const meta = JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')) as { name: string; shape: number[] }[];
  const data = split(await readFile(join(dir, 'optimizer.bin')), meta.map((m) => m.shape));
  return meta.map((m, i) => ({ ...m, data: data[i] }));
}
