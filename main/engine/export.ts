// Writing model.onnx into a model folder from its tfjs weights, and recording it in model.json.
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { loadModel, type ModelRecord } from './model-store';
import { writeFileAtomic } from './atomic';
import { buildModel } from '../../ml/models';
import { exportOnnx } from '../../ml/onnx/export';
import { initTf } from '../../ml/tfjs/backend';
import { setWeights } from '../../ml/train/trainer';

export async function exportModelFolder(dir: string, extra: Partial<ModelRecord> = {}): Promise<{ bytes: number }> {
  await initTf();
  const loaded = await loadModel(dir);
  const model = buildModel(loaded.record.config);
  setWeights(model, loaded.weights);
  const onnx = exportOnnx(model, { role: loaded.record.role, config: JSON.stringify(loaded.record.config) });
  model.dispose();
  await writeFileAtomic(join(dir, 'model.onnx'), onnx);
  const record: ModelRecord = { ...(JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelRecord), ...extra, onnx: 'model.onnx' };
  await writeFileAtomic(join(dir, 'model.json'), `${JSON.stringify(record, null, 2)}\n`);
  return { bytes: onnx.length };
}
