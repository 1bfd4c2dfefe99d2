// Tiny models saved as model folders, for tests of the compression, model and segmentation code (weights random, batch
// norm statistics perturbed so that folding them is exercised), and a tiny labelled stack for the training commands.
import { join } from 'node:path';
import { buildModel, type ModelConfig, type UNetConfig } from '../../ml/models';
import { perturbBatchNorm, seedWeights } from '../../ml/models/test-helpers';
import { getWeights } from '../../ml/train/trainer';
import { saveModel, weightEntries } from './model-store';
import { writeTiffStack } from '../io';
import { Rng } from '../../ml/train/rng';

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

/**
 * Writes a labelled stack of `depth` slices — cells on a 12-px grid of 2-px membranes (label 0), noisy raw — as
 * `<dir>/image.tif` and `<dir>/label.tif`, and returns both paths.
 */
export async function gridStack(dir: string, depth = 4, size = 48): Promise<{ images: string; labels: string }> {
  const raws: Uint8Array[] = [];
  const labels: Uint8Array[] = [];
  for (let z = 0; z < depth; z++) {
    const rng = new Rng(z + 1);
    const raw = new Uint8Array(size * size);
    const label = new Uint8Array(size * size);
    for (let i = 0; i < size * size; i++) {
      const m = (i % size) % 12 < 2 || Math.floor(i / size) % 12 < 2;
      label[i] = m ? 0 : 255;
      raw[i] = Math.max(0, Math.min(255, (m ? 60 : 170) + 30 * rng.normal()));
    }
    raws.push(raw);
    labels.push(label);
  }
  const out = { images: join(dir, 'image.tif'), labels: join(dir, 'label.tif') };
  await writeTiffStack(out.images, raws.map((data) => ({ width: size, height: size, data })));
  await writeTiffStack(out.labels, labels.map((data) => ({ width: size, height: size, data })));
  return out;
}
