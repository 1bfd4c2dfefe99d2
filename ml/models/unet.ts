// The membrane model: a U-Net (Ronneberger et al. 2015) built with tfjs layers. A normalised raw slice in
// (N, H, W, 1), membrane logits out (N, H, W, 1); P(membrane) = sigmoid(logit). Fully convolutional, so any slice
// size works as long as H and W are multiples of 2^depth (tiled inference pads to that).
//
// Each block is conv3×3 → batch norm → ReLU, twice ("same" padding so that tiles line up with the whole slice);
// down by 2×2 max pooling, up by 2×2 stride-2 transposed convolution, skip connections by concatenation.
//
// The binarized variant (`binary`, ml/models/binary-layers.ts) replaces every block convolution but the first by a
// BinaryConv2D (±1 weights on ±1 inputs) and every ReLU by the sign: binary activations and weights between the
// first layer (float kernel on the raw slice) and the last (the float 1×1 output layer), as in BinaryNet. The 2×2
// transposed convolutions keep float weights (on binary inputs): 4 taps against the blocks' 9, 4.5 % of the MACs of
// the shipped U-Net (16 base channels, depth 4); the first and last layers are 0.35 %.
import * as tf from '@tensorflow/tfjs';
import { BinaryConv2D, BinarySign } from './binary-layers';
import { trainingBatchNorm } from '../tfjs/batchnorm-training';

export interface UNetConfig {
  kind: 'unet';
  /** Channels of the first level; doubles at each level down. */
  baseChannels: number;
  /** Number of 2× poolings. The receptive field grows with it; H and W must be multiples of 2^depth. */
  depth: number;
  /** 1 for a raw slice; 2·zContext + 1 for a z-context model. */
  inChannels: number;
  /**
   * Slices read on each side of the one predicted (ml/infer/z-context.ts): the input channels are the normalised slices
   * z − zContext … z + zContext. Absent or 0: the slice alone.
   */
  zContext?: number;
  /**
   * Output channels of individual layers, by block-convolution name (enc0a, enc0b, …, bottoma, bottomb, up2, dec2a,
   * dec2b, …), overriding the doubling rule: a filter-pruned U-Net (ml/compress/structured.ts) is a smaller dense one.
   */
  widths?: Record<string, number>;
  /** The binarized U-Net; `stochasticTraining` samples the binary weights in training (see BinaryConv2D). */
  binary?: { stochasticTraining?: boolean };
}

export const DEFAULT_UNET: UNetConfig = { kind: 'unet', baseChannels: 16, depth: 4, inChannels: 1 };

function convBnRelu(x: tf.SymbolicTensor, channels: number, name: string, binary?: UNetConfig['binary']): tf.SymbolicTensor {
  if (binary) {
    const first = name === 'enc0a';
    const conv = first
      ? tf.layers.conv2d({ filters: channels, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: 'heNormal', name: `${name}_conv` })
      : new BinaryConv2D({ filters: channels, kernelSize: 3, stochastic: binary.stochasticTraining, name: `${name}_conv` });
    const bn = trainingBatchNorm({ momentum: 0.95, epsilon: 1e-3, name: `${name}_bn` });
    return new BinarySign({ name: `${name}_sign` }).apply(bn.apply(conv.apply(x))) as tf.SymbolicTensor;
  }
  const conv = tf.layers.conv2d({
    filters: channels,
    kernelSize: 3,
    padding: 'same',
    useBias: false,
    kernelInitializer: 'heNormal',
    name: `${name}_conv`,
  });
  const bn = trainingBatchNorm({ momentum: 0.95, epsilon: 1e-3, name: `${name}_bn` });
  const relu = tf.layers.reLU({ name: `${name}_relu` });
  return relu.apply(bn.apply(conv.apply(x))) as tf.SymbolicTensor;
}

/** Output channels of a layer: its pruned width if the config has one, else the doubling rule. */
export function unetWidth(cfg: UNetConfig, name: string, level: number): number {
  return cfg.widths?.[name] ?? cfg.baseChannels << level;
}

function block(x: tf.SymbolicTensor, cfg: UNetConfig, level: number, name: string): tf.SymbolicTensor {
  return convBnRelu(convBnRelu(x, unetWidth(cfg, `${name}a`, level), `${name}a`, cfg.binary), unetWidth(cfg, `${name}b`, level), `${name}b`, cfg.binary);
}

export function buildUNet(cfg: UNetConfig): tf.LayersModel {
  const input = tf.input({ shape: [null, null, cfg.inChannels], name: 'raw' });
  let x: tf.SymbolicTensor = input;
  const skips: tf.SymbolicTensor[] = [];
  for (let level = 0; level < cfg.depth; level++) {
    x = block(x, cfg, level, `enc${level}`);
    skips.push(x);
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${level}` }).apply(x) as tf.SymbolicTensor;
  }
  x = block(x, cfg, cfg.depth, 'bottom');
  for (let level = cfg.depth - 1; level >= 0; level--) {
    const up = tf.layers.conv2dTranspose({
      filters: unetWidth(cfg, `up${level}`, level),
      kernelSize: 2,
      strides: 2,
      padding: 'valid',
      kernelInitializer: 'heNormal',
      name: `up${level}`,
    });
    x = up.apply(x) as tf.SymbolicTensor;
    x = tf.layers.concatenate({ axis: -1, name: `cat${level}` }).apply([skips[level], x]) as tf.SymbolicTensor;
    x = block(x, cfg, level, `dec${level}`);
  }
  const logits = tf.layers.conv2d({ filters: 1, kernelSize: 1, padding: 'same', name: 'logits' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'emseg_unet' });
}

/** Multiply-accumulates per output pixel of the U-Net (convolutions only), for FLOP figures in benchmarks. */
export function unetMacsPerPixel(cfg: UNetConfig): number {
  const w = (name: string, level: number) => unetWidth(cfg, name, level);
  let macs = 0;
  let inCh = cfg.inChannels;
  for (let level = 0; level <= cfg.depth; level++) {
    const scale = 1 / 4 ** level;
    const name = level === cfg.depth ? 'bottom' : `enc${level}`;
    macs += scale * 9 * (inCh * w(`${name}a`, level) + w(`${name}a`, level) * w(`${name}b`, level)); // encoder (or bottom) block
    inCh = w(`${name}b`, level);
  }
  let below = w('bottomb', cfg.depth);
  for (let level = cfg.depth - 1; level >= 0; level--) {
    const scale = 1 / 4 ** level;
    const up = w(`up${level}`, level);
    macs += (scale / 4) * 4 * below * up; // transposed conv from the level below (per low-res pixel: 4 taps)
    const cat = w(`enc${level}b`, level) + up;
    macs += scale * 9 * (cat * w(`dec${level}a`, level) + w(`dec${level}a`, level) * w(`dec${level}b`, level)); // decoder block after concatenation
    below = w(`dec${level}b`, level);
  }
  return macs + below; // final 1×1
}
