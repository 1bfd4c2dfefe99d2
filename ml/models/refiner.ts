// The refinement model of X. Wu (2015, arXiv:1506.05849): a CNN that predicts the membrane label of a pixel from the
// membrane map around it with the pixel's own value removed, applied to the whole map round after round.
//
// Wu's network sees patches with the centre removed. The dense, fully convolutional equivalent is a blind-spot network
// (after Laine et al. 2019): four branches whose receptive fields are the open half-planes above, below, left and right
// of the pixel. A branch is a stack of 3×3 convolutions each padded on one side only (so that output row y sees input
// rows ≤ y), followed by a one-pixel shift (so it sees rows < y). The union of the four half-planes is every pixel but
// the centre, so the output at a pixel cannot depend on that pixel's input — the property the tests check. 1×1
// convolutions then combine the branches. Input: the current map, optionally with the normalised raw slice as a second
// channel. The raw channel either goes through the same blind branches (`rawPath: 'blind'`, its centre hidden too) or
// through a plain stack of 3×3 convolutions that sees the centre (`'open'`): Wu removes the centre *label* — the map
// value the network is asked to recover — while the image at that pixel is evidence like any other, and the one a
// blind raw channel throws away.
import * as tf from '@tensorflow/tfjs';

export interface RefinerConfig {
  kind: 'refiner';
  /** 1 = membrane map only; 2 = map and normalised raw slice. */
  inChannels: number;
  /** Convolutions per half-plane branch; each adds 2 rows of reach along the branch and 1 sideways. */
  branchLayers: number;
  channels: number;
  /** 1×1 layers that combine the four branches. */
  headLayers: number;
  /**
   * With inChannels 2: 'blind' (default) hides the raw centre pixel with the map's; 'open' reads the raw channel with
   * its own `rawLayers` 3×3 convolutions ('same' padding) whose output, centre included, joins the branches.
   */
  rawPath?: 'blind' | 'open';
  /** Convolutions of the open raw path (default: branchLayers); each adds 1 pixel of reach in every direction. */
  rawLayers?: number;
}

export function hasOpenRawPath(cfg: RefinerConfig): boolean {
  return cfg.inChannels === 2 && cfg.rawPath === 'open';
}

/** Convolutions of the open raw path; 0 without one. */
export function openRawLayers(cfg: RefinerConfig): number {
  return hasOpenRawPath(cfg) ? (cfg.rawLayers ?? cfg.branchLayers) : 0;
}

export const DEFAULT_REFINER: RefinerConfig = { kind: 'refiner', inChannels: 1, branchLayers: 8, channels: 16, headLayers: 2 };

type Direction = 'up' | 'down' | 'left' | 'right';

export interface ShiftPadArgs {
  /** Rows/columns added (positive, zeros) or removed (negative) on each side. */
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/**
 * Pads or crops each side by its own amount. tfjs' ZeroPadding2D and Cropping2D lose track of unknown (null) image
 * sizes, which this fully convolutional model needs, so the shift is one small layer of its own.
 */
export class ShiftPad2D extends tf.layers.Layer {
  static className = 'ShiftPad2D';
  readonly amounts: ShiftPadArgs;
  constructor(args: ShiftPadArgs & { name?: string }) {
    super({ name: args.name });
    this.amounts = { top: args.top, bottom: args.bottom, left: args.left, right: args.right };
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = inputShape as tf.Shape;
    const { top, bottom, left, right } = this.amounts;
    const grow = (d: number | null, a: number, b: number) => (d === null || d < 0 ? null : d + a + b);
    return [s[0], grow(s[1], top, bottom), grow(s[2], left, right), s[3]];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const { top, bottom, left, right } = this.amounts;
      const p = (v: number) => Math.max(0, v);
      let y = x;
      if (p(top) || p(bottom) || p(left) || p(right)) y = tf.pad(y, [[0, 0], [p(top), p(bottom)], [p(left), p(right)], [0, 0]]);
      const c = (v: number) => Math.max(0, -v);
      if (c(top) || c(bottom) || c(left) || c(right)) {
        const [, h, w] = y.shape;
        y = y.slice([0, c(top), c(left), 0], [-1, h - c(top) - c(bottom), w - c(left) - c(right), -1]);
      }
      return y;
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), ...this.amounts };
  }
}
tf.serialization.registerClass(ShiftPad2D);

/** Channels [start, start + size) of an NHWC tensor (tfjs layers has no slicing layer of its own). */
export class ChannelSlice extends tf.layers.Layer {
  static className = 'ChannelSlice';
  readonly start: number;
  readonly size: number;
  constructor(args: { start: number; size: number; name?: string }) {
    super({ name: args.name });
    this.start = args.start;
    this.size = args.size;
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = inputShape as tf.Shape;
    return [s[0], s[1], s[2], this.size];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return x.slice([0, 0, 0, this.start], [-1, -1, -1, this.size]);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), start: this.start, size: this.size };
  }
}
tf.serialization.registerClass(ChannelSlice);

/** Padding that makes a 3×3 'valid' conv look only towards `dir` (its own row/column included). */
function onesided(dir: Direction): ShiftPadArgs {
  switch (dir) {
    case 'up':
      return { top: 2, bottom: 0, left: 1, right: 1 };
    case 'down':
      return { top: 0, bottom: 2, left: 1, right: 1 };
    case 'left':
      return { top: 1, bottom: 1, left: 2, right: 0 };
    case 'right':
      return { top: 1, bottom: 1, left: 0, right: 2 };
  }
}

/** A one-pixel shift away from `dir`, so the branch no longer sees the centre row/column. */
function shiftOut(dir: Direction): ShiftPadArgs {
  switch (dir) {
    case 'up':
      return { top: 1, bottom: -1, left: 0, right: 0 };
    case 'down':
      return { top: -1, bottom: 1, left: 0, right: 0 };
    case 'left':
      return { top: 0, bottom: 0, left: 1, right: -1 };
    case 'right':
      return { top: 0, bottom: 0, left: -1, right: 1 };
  }
}

export function buildRefiner(cfg: RefinerConfig): tf.LayersModel {
  const input = tf.input({ shape: [null, null, cfg.inChannels], name: 'map' });
  const open = hasOpenRawPath(cfg);
  const blindIn = open ? (new ChannelSlice({ start: 0, size: 1, name: 'map_channel' }).apply(input) as tf.SymbolicTensor) : input;
  const branches: tf.SymbolicTensor[] = [];
  for (const dir of ['up', 'down', 'left', 'right'] as const) {
    let x: tf.SymbolicTensor = blindIn;
    for (let l = 0; l < cfg.branchLayers; l++) {
      const name = `${dir}${l}`;
      x = new ShiftPad2D({ ...onesided(dir), name: `${name}_pad` }).apply(x) as tf.SymbolicTensor;
      x = tf.layers
        .conv2d({ filters: cfg.channels, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: 'heNormal', name: `${name}_conv` })
        .apply(x) as tf.SymbolicTensor;
    }
    branches.push(new ShiftPad2D({ ...shiftOut(dir), name: `${dir}_shift` }).apply(x) as tf.SymbolicTensor);
  }
  if (open) {
    let r = new ChannelSlice({ start: 1, size: 1, name: 'raw_channel' }).apply(input) as tf.SymbolicTensor;
    for (let l = 0; l < openRawLayers(cfg); l++) {
      r = tf.layers
        .conv2d({ filters: cfg.channels, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: 'heNormal', name: `raw${l}_conv` })
        .apply(r) as tf.SymbolicTensor;
    }
    branches.push(r);
  }
  let h = tf.layers.concatenate({ axis: -1, name: 'branches' }).apply(branches) as tf.SymbolicTensor;
  for (let l = 0; l < cfg.headLayers; l++) {
    h = tf.layers
      .conv2d({ filters: cfg.channels * 2, kernelSize: 1, activation: 'relu', kernelInitializer: 'heNormal', name: `head${l}` })
      .apply(h) as tf.SymbolicTensor;
  }
  const logits = tf.layers.conv2d({ filters: 1, kernelSize: 1, name: 'logits' }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'emseg_refiner' });
}

export function refinerMacsPerPixel(cfg: RefinerConfig): number {
  const c = cfg.channels;
  const open = hasOpenRawPath(cfg);
  const branch = 9 * (open ? 1 : cfg.inChannels) * c + (cfg.branchLayers - 1) * 9 * c * c;
  const raw = open ? 9 * c + (openRawLayers(cfg) - 1) * 9 * c * c : 0;
  let head = 0;
  let inCh = (open ? 5 : 4) * c;
  for (let l = 0; l < cfg.headLayers; l++) {
    head += inCh * 2 * c;
    inCh = 2 * c;
  }
  return 4 * branch + raw + head + inCh;
}
