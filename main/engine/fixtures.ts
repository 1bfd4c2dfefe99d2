// A tiny membrane U-Net saved as a model folder, for tests of the compression and model code (weights random, batch
// norm statistics perturbed so that folding them is exercised).
import { join } from 'node:path';
import { buildModel, type UNetConfig } from '../../ml/models';
import { perturbBatchNorm } from '../../ml/models/test-helpers';
import { getWeights } from '../../ml/train/trainer';
import { saveModel, weightEntries } from './model-store';

/** Writes `<dir>/src` and returns its path. */
export async function tinySource(dir: string, config: UNetConfig = { kind: 'unet', baseChannels: 4, depth: 2, inChannels: 1 }): Promise<string> {
  const m = buildModel(config);
  perturbBatchNorm(m);
  const src = join(dir, 'src');
  await saveModel(src, { format: 'emseg-model', version: 1, role: 'membrane', config, weights: weightEntries(m) }, getWeights(m));
  m.dispose();
  return src;
}
