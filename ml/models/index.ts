// Model configurations EMSeg knows, and building a tfjs model from one.
import type * as tf from '@tensorflow/tfjs';
import { buildUNet, unetMacsPerPixel, type UNetConfig } from './unet';
import { buildRefiner, refinerMacsPerPixel, type RefinerConfig } from './refiner';

export type ModelConfig = UNetConfig | RefinerConfig;

export function buildModel(cfg: ModelConfig): tf.LayersModel {
  return cfg.kind === 'unet' ? buildUNet(cfg) : buildRefiner(cfg);
}

export function macsPerPixel(cfg: ModelConfig): number {
  return cfg.kind === 'unet' ? unetMacsPerPixel(cfg) : refinerMacsPerPixel(cfg);
}

/** H and W of an input must be multiples of this. */
export function sizeMultiple(cfg: ModelConfig): number {
  return cfg.kind === 'unet' ? 2 ** cfg.depth : 1;
}

export type { UNetConfig, RefinerConfig };
