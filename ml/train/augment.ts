// Training crops with augmentation: a random crop, one of the 8 flips/90° rotations, intensity jitter and optional
// elastic deformation. All geometry is one coordinate map (output pixel → source position), so the raw image is
// interpolated once (bilinear) and the target (and its loss weights, if any) once (nearest), and they stay aligned.
import type { Rng } from './rng';

export interface TrainingSlice {
  width: number;
  height: number;
  /** Normalised raw values (see normalizeSlice), one channel, or several interleaved (HWC) when channels > 1. */
  raw: Float32Array;
  channels: number;
  /** 1 = membrane, 0 = interior. */
  target: Uint8Array;
  /** Extra loss weight per pixel, added to the class weight (boundary weighting); cropped and warped with the target. */
  weight?: Float32Array;
}

export interface AugmentOptions {
  flips: boolean;
  intensity: boolean;
  /** Elastic deformation: displacement amplitude in pixels (0 = off) on a coarse grid of `elasticGrid` cells. */
  elasticPx: number;
  elasticGrid: number;
  /**
   * The channel intensity jitter applies to (the raw slice); other channels, such as a membrane map, keep their meaning.
   * 'all': every channel is a raw slice (a z-context input) and gets the same gain and offset.
   */
  intensityChannel: number | 'all';
  /** Reverse the channel order with probability ½: the slices of a z-context input read bottom-up as well as top-down. */
  zFlip?: boolean;
}

export const DEFAULT_AUGMENT: AugmentOptions = { flips: true, intensity: true, elasticPx: 0, elasticGrid: 4, intensityChannel: 0 };

export interface Crop {
  raw: Float32Array;
  target: Float32Array;
  /** Present when the slice has one. */
  weight?: Float32Array;
}

function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const p = 2 * (n - 1);
  i = ((i % p) + p) % p;
  return i < n ? i : p - i;
}

/** Smooth displacement field: random offsets on a (grid+1)² lattice, bilinearly upsampled to size². */
function displacement(size: number, grid: number, amp: number, rng: Rng): Float32Array {
  const g = grid + 1;
  const coarse = new Float32Array(g * g);
  for (let i = 0; i < coarse.length; i++) coarse[i] = rng.normal() * amp;
  const out = new Float32Array(size * size);
  const scale = grid / (size - 1);
  for (let y = 0; y < size; y++) {
    const gy = y * scale;
    const y0 = Math.min(Math.floor(gy), grid - 1);
    const fy = gy - y0;
    for (let x = 0; x < size; x++) {
      const gx = x * scale;
      const x0 = Math.min(Math.floor(gx), grid - 1);
      const fx = gx - x0;
      const a = coarse[y0 * g + x0];
      const b = coarse[y0 * g + x0 + 1];
      const c = coarse[(y0 + 1) * g + x0];
      const d = coarse[(y0 + 1) * g + x0 + 1];
      out[y * size + x] = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
    }
  }
  return out;
}

export function sampleCrop(slice: TrainingSlice, size: number, rng: Rng, opt: AugmentOptions): Crop {
  const { width, height, channels } = slice;
  const x0 = rng.int(Math.max(1, width - size + 1));
  const y0 = rng.int(Math.max(1, height - size + 1));
  const orient = opt.flips ? rng.int(8) : 0;
  const dx = opt.elasticPx > 0 ? displacement(size, opt.elasticGrid, opt.elasticPx, rng) : undefined;
  const dy = opt.elasticPx > 0 ? displacement(size, opt.elasticGrid, opt.elasticPx, rng) : undefined;
  const gain = opt.intensity ? rng.uniform(0.8, 1.25) : 1;
  const bias = opt.intensity ? rng.uniform(-0.25, 0.25) : 0;
  const noise = opt.intensity ? rng.uniform(0, 0.1) : 0;
  const flipZ = opt.zFlip === true && channels > 1 && rng.int(2) === 1;
  const jitter = Array.from({ length: channels }, (_, c) => opt.intensityChannel === 'all' || c === opt.intensityChannel);
  const src = slice.raw;
  const srcWeight = slice.weight;

  const raw = new Float32Array(size * size * channels);
  const target = new Float32Array(size * size);
  const weight = srcWeight ? new Float32Array(size * size) : undefined;
  const last = size - 1;
  // Indices inside the slice (almost all of them) skip reflect's arithmetic.
  const rx = (i: number) => (i >= 0 && i < width ? i : reflect(i, width));
  const ry = (i: number) => (i >= 0 && i < height ? i : reflect(i, height));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Orientation: transpose (bit 2), flip x (bit 0), flip y (bit 1) — together the 8 elements of the dihedral group.
      let u = orient & 4 ? y : x;
      let v = orient & 4 ? x : y;
      if (orient & 1) u = last - u;
      if (orient & 2) v = last - v;
      let sx = x0 + u;
      let sy = y0 + v;
      const o = y * size + x;
      if (dx && dy) {
        sx += dx[o];
        sy += dy[o];
      }
      const ix = Math.floor(sx);
      const iy = Math.floor(sy);
      const fx = sx - ix;
      const fy = sy - iy;
      const rowA = ry(iy) * width;
      const rowB = ry(iy + 1) * width;
      const xa = rx(ix);
      const xb = rx(ix + 1);
      for (let c = 0; c < channels; c++) {
        const sc = flipZ ? channels - 1 - c : c;
        const p00 = src[(rowA + xa) * channels + sc];
        const p01 = src[(rowA + xb) * channels + sc];
        const p10 = src[(rowB + xa) * channels + sc];
        const p11 = src[(rowB + xb) * channels + sc];
        const val = (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy;
        raw[o * channels + c] = jitter[c] ? val * gain + bias + (noise > 0 ? noise * rng.normal() : 0) : val;
      }
      const n = ry(Math.round(sy)) * width + rx(Math.round(sx));
      target[o] = slice.target[n];
      if (weight) weight[o] = (srcWeight as Float32Array)[n];
    }
  }
  return weight ? { raw, target, weight } : { raw, target };
}
