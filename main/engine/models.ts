// Loading models for inference: the ONNX graph of a model folder (exported on the fly from its tfjs weights when the
// folder has none), an ONNX Runtime session on all cores in the inference worker thread (never on the caller's event
// loop), and the tiling parameters that make it seam-free.
import { readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, type ModelRecord } from './model-store';
import { buildModel, sizeMultiple, type ModelConfig } from '../../ml/models';
import type { MapModel } from '../../ml/infer/onnx-session';
import { createWorkerOnnxModel } from './onnx-worker';
import { defaultMargin } from '../../ml/infer/receptive-field';
import { exportOnnx } from '../../ml/onnx/export';
import { initTf } from '../../ml/tfjs/backend';
import { setWeights } from '../../ml/train/trainer';

/** The repository's sample-data folder (shipped models and the sample stack). */
export const SAMPLE_DATA = fileURLToPath(new URL('../../sample-data/', import.meta.url));
export const DEFAULT_MEMBRANE_MODEL = join(SAMPLE_DATA, 'models', 'membrane');
export const DEFAULT_REFINER_MODEL = join(SAMPLE_DATA, 'models', 'refiner');
export const SAMPLE_STACK = join(SAMPLE_DATA, 'isbi2012-val', 'image');

export interface InferenceModel {
  dir: string;
  record: ModelRecord;
  session: MapModel;
  inChannels: number;
  multiple: number;
  marginPx: number;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** ONNX bytes of a model folder: its model.onnx, or an export of its tfjs weights. */
export async function onnxBytes(dir: string): Promise<{ record: ModelRecord; bytes: Uint8Array }> {
  const loaded = await loadModel(dir);
  const onnxPath = join(dir, loaded.record.onnx ?? 'model.onnx');
  if (await exists(onnxPath)) return { record: loaded.record, bytes: new Uint8Array(await readFile(onnxPath)) };
  await initTf();
  const model = buildModel(loaded.record.config);
  setWeights(model, loaded.weights);
  const bytes = exportOnnx(model);
  model.dispose();
  return { record: loaded.record, bytes };
}

export async function loadInferenceModel(dir: string, opts: { threads?: number } = {}): Promise<InferenceModel> {
  const { record, bytes } = await onnxBytes(dir);
  const session = await createWorkerOnnxModel(bytes, opts);
  const cfg: ModelConfig = record.config;
  const multiple = sizeMultiple(cfg);
  return { dir, record, session, inChannels: cfg.inChannels, multiple, marginPx: defaultMargin(cfg, multiple) };
}
