// Writing model.onnx into a model folder from its tfjs weights, and recording it in model.json.
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { loadModel, saveModel, type ModelRecord } from './model-store';
import { writeFileAtomic } from './atomic';
import { writeModelCard } from './model-card';
import { buildModel } from '../../ml/models';
import { exportOnnx } from '../../ml/onnx/export';
import { initTf } from '../../ml/tfjs/backend';
import { setWeights } from '../../ml/train/trainer';

/**
 * `half`: store weights (weights.bin and the ONNX initializers) as float16 — half the size for shipping; inference
 * still computes in float32.
 */
export async function exportModelFolder(dir: string, extra: Partial<ModelRecord> = {}, opts: { half?: boolean } = {}): Promise<{ bytes: number }> {
  await initTf();
  const loaded = await loadModel(dir);
  const model = buildModel(loaded.record.config);
  setWeights(model, loaded.weights);
  const half = opts.half ?? loaded.record.weightsDtype === 'float16';
  const onnx = exportOnnx(model, { role: loaded.record.role, config: JSON.stringify(loaded.record.config) }, { halfWeights: half });
  model.dispose();
  await writeFileAtomic(join(dir, 'model.onnx'), onnx);
  const record: ModelRecord = {
    ...(JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelRecord), ...extra, onnx: 'model.onnx',
    weightsDtype: half ? 'float16' : 'float32',
  };
  // saveModel rewrites weights.bin in the record's dtype, then model.json last; the model card follows model.json.
  await saveModel(dir, record, loaded.weights);
  await writeModelCard(dir);
  return { bytes: onnx.length };
}
