// Model configurations EMSeg knows, and building a tfjs model from one.
import * as tf from '@tensorflow/tfjs';
import { buildUNet, unetMacsPerPixel, type UNetConfig } from './unet';
import { buildRefiner, refinerMacsPerPixel, type RefinerConfig } from './refiner';

export type ModelConfig = UNetConfig | RefinerConfig;

export function buildModel(cfg: ModelConfig): tf.LayersModel {
  return cfg.kind === 'unet' ? buildUNet(cfg) : buildRefiner(cfg);
}

/** tfjs-layers' Initializer class, which it does not export by name. */
type Initializer = ReturnType<typeof tf.initializers.zeros>;

/**
 * Draw every kernel again from its layer's own initializer, seeded: tfjs' initializers are unseeded, so without this
 * two training runs with the same seed start from different weights and cannot be compared step by step. Layer i's
 * kernel gets seed `seed · 1000 + i`; biases and batch-norm parameters start at constants already.
 */
export function seedInitialWeights(model: tf.LayersModel, seed: number): void {
  model.layers.forEach((layer, i) => {
    const init = (layer as unknown as { kernelInitializer?: Initializer }).kernelInitializer;
    const kernel = layer.weights.find((w) => /(^|\/)kernel$/.test(w.originalName));
    if (!init || !kernel) return;
    const seeded = seededInitializer(init, seed * 1000 + i);
    const value = tf.tidy(() => seeded.apply(kernel.shape, 'float32'));
    kernel.write(value);
    value.dispose();
  });
}

function seededInitializer(init: Initializer, seed: number): Initializer {
  const cfg = init.getConfig() as Record<string, unknown>;
  switch (init.getClassName()) {
    case 'RandomUniform':
      return tf.initializers.randomUniform({ minval: cfg.minval as number, maxval: cfg.maxval as number, seed });
    case 'RandomNormal':
      return tf.initializers.randomNormal({ mean: cfg.mean as number, stddev: cfg.stddev as number, seed });
    case 'TruncatedNormal':
      return tf.initializers.truncatedNormal({ mean: cfg.mean as number, stddev: cfg.stddev as number, seed });
    case 'VarianceScaling': case 'HeNormal': case 'HeUniform': case 'GlorotNormal': case 'GlorotUniform': case 'LeCunNormal': case 'LeCunUniform':
      return tf.initializers.varianceScaling({
        scale: cfg.scale as number, mode: cfg.mode as 'fanIn' | 'fanOut' | 'fanAvg', distribution: cfg.distribution as 'normal' | 'uniform' | 'truncatedNormal', seed,
      });
    default:
      throw new Error(`seedInitialWeights: no seeded form of the ${init.getClassName()} initializer`);
  }
}

export function macsPerPixel(cfg: ModelConfig): number {
  return cfg.kind === 'unet' ? unetMacsPerPixel(cfg) : refinerMacsPerPixel(cfg);
}

/** H and W of an input must be multiples of this. */
export function sizeMultiple(cfg: ModelConfig): number {
  return cfg.kind === 'unet' ? 2 ** cfg.depth : 1;
}

export type { UNetConfig, RefinerConfig };
