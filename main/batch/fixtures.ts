// Inputs for the batch tests and benchmark: tiny models with random weights (the plumbing is under test, not the
// predictions) exported to ONNX once, so no worker process needs tfjs, and small synthetic EM-like images.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { saveModel, weightEntries } from '../engine/model-store';
import { writeTiffStack } from '../io';
import { buildModel, type ModelConfig } from '../../ml/models';
import { exportOnnx } from '../../ml/onnx/export';
import { initTf } from '../../ml/tfjs/backend';
import { getWeights } from '../../ml/train/trainer';
import { pseudoRandom } from '../../ml/models/test-helpers';
import type { Image2D } from '../../ml/types';

async function tinyModel(dir: string, config: ModelConfig, role: 'membrane' | 'refiner', rounds?: number): Promise<void> {
  const model = buildModel(config);
  await saveModel(dir, { format: 'emseg-model', version: 1, role, config, weights: weightEntries(model), rounds }, getWeights(model));
  await writeFile(join(dir, 'model.onnx'), exportOnnx(model));
  model.dispose();
}

/** <dir>/membrane (a 2-level U-Net, 2 base channels) and, unless refiner is false, <dir>/refiner (1 round). */
export async function writeTinyModels(dir: string, opts: { refiner?: boolean } = {}): Promise<string> {
  await initTf('cpu');
  await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 1 }, 'membrane');
  if (opts.refiner !== false) await tinyModel(join(dir, 'refiner'), { kind: 'refiner', inChannels: 1, branchLayers: 1, channels: 2, headLayers: 1 }, 'refiner', 1);
  return dir;
}

/** A uint8 slice of dark cell walls on a grey background, different for each seed: enough texture for watershed. */
export function syntheticSlice(width: number, height: number, seed: number): Image2D<Uint8Array> {
  const noise = pseudoRandom(width * height, seed, 40);
  const data = new Uint8Array(width * height);
  const cell = 12 + (seed % 5);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const wall = (x + seed) % cell < 2 || (y + 2 * seed) % cell < 2;
      data[y * width + x] = Math.max(0, Math.min(255, Math.round((wall ? 50 : 170) + noise[y * width + x])));
    }
  }
  return { width, height, data };
}

export async function writePng(path: string, img: Image2D<Uint8Array>): Promise<void> {
  await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 1 } }).toColourspace('b-w').png().toFile(path);
}

/** n PNG images named 0.png … in dir. */
export async function writePngs(dir: string, n: number, width: number, height: number, seed = 1): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) await writePng(join(dir, `${i}.png`), syntheticSlice(width, height, seed + i));
}

/** A multi-page TIFF of `depth` synthetic slices, generated as it is written (never all in memory). */
export async function writeStack(path: string, depth: number, width: number, height: number, seed = 1): Promise<void> {
  async function* slices(): AsyncGenerator<Image2D<Uint8Array>> {
    for (let z = 0; z < depth; z++) yield syntheticSlice(width, height, seed + z);
  }
  await writeTiffStack(path, slices(), { compression: 'deflate' });
}
