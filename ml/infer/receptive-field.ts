// Receptive-field radius of EMSeg's models: the default tile margin for exact, seam-free tiled inference.
import type { ModelConfig } from '../models';
import { openRawLayers } from '../models/refiner';

export function receptiveFieldRadius(cfg: ModelConfig): number {
  if (cfg.kind === 'unet') {
    // Two 3×3 convs per block: each adds 2^level pixels per side in the encoder and again in the decoder; the bottom
    // block adds 2·2^depth; pooling/up-convolution alignment adds at most 2^depth − 1. Bound: 7·2^depth − 4.
    return 7 * 2 ** cfg.depth - 4;
  }
  // A refiner branch reaches 2 pixels per layer along its direction, plus the one-pixel shift; an open raw path 1 pixel
  // per layer.
  return Math.max(2 * cfg.branchLayers + 1, openRawLayers(cfg));
}

/** The default margin: the radius rounded up to the model's size multiple. */
export function defaultMargin(cfg: ModelConfig, multiple: number): number {
  const r = receptiveFieldRadius(cfg);
  return Math.ceil(r / multiple) * multiple;
}
