// Tiny models saved as model folders, for tests of the compression, model and segmentation code (weights random, batch
// norm statistics perturbed so that folding them is exercised).
import { join } from 'node:path';
import { buildModel, type ModelConfig, type UNetConfig } from '../../ml/models';
import { perturbBatchNorm, seedWeights } from '../../ml/models/test-helpers';
import { getWeights } from '../../ml/train/trainer';
import { saveModel, weightEntries } from './model-store';

/**
 * Writes a model of this config as the model folder `dir` (a refiner with the rounds it runs) and returns `dir`. With a
 * seed the weights are the same on every run (tfjs' initialisers are not seeded), for tests that depend on the maps.
 */
export async function tinyModel(dir: string, config: ModelConfig, role: 'membrane' | 'refiner' = 'membrane', rounds?: number, seed?: number): Promise<string> {
  const m = buildModel(config);
  if (seed !== undefined) seedWeights(m, seed);
  perturbBatchNorm(m);
  await saveModel(dir, { format: 'emseg-model', version: 1, role, config, weights: weightEntries(m), rounds }, getWeights(m));
  m.dispose();
  return dir;
}

/** Writes `<dir>/src` and returns its path. */
export async function tinySource(dir: string, config: UNetConfig = { kind: 'unet', baseChannels: 4, depth: 2, inChannels: 1 }): Promise<string> {
  return tinyModel(join(dir, 'src'), config);
}
