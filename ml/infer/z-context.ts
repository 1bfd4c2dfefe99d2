// Z-context input: a membrane model that sees the slices around the one it predicts. Serial-section EM is anisotropic
// (ISBI 2012: 4 nm in-plane, 50 nm between sections), and a membrane that is faint or blurred in one section — cut
// obliquely, or broken by a fold or dirt — is often clear in the next. A model with z-context k reads the normalised
// slices z−k … z+k as 2k + 1 channels (centre channel k is the slice itself) and predicts slice z.
//
// At the ends of a run of slices the missing neighbours are mirrored (z−1 → z+1), and a run of one slice repeats it,
// so every slice gets an input of the same shape. Which slices exist is the caller's: the whole stack for inference,
// the training or the validation slices on their own for training, so that a model never reads a held-out slice.
import type { ModelConfig } from '../models';

/** Stack indices of the input channels for slice z: z−k … z+k, a missing z+d replaced by z−d, or by z. */
export function contextIndices(z: number, k: number, has: (i: number) => boolean): number[] {
  const out: number[] = [];
  for (let d = -k; d <= k; d++) {
    if (has(z + d)) out.push(z + d);
    else if (has(z - d)) out.push(z - d);
    else out.push(z);
  }
  return out;
}

/** Slices a model reads on each side of the one it predicts: a z-context U-Net's zContext, else 0. */
export function zContextOf(cfg: ModelConfig): number {
  return cfg.kind === 'unet' ? (cfg.zContext ?? 0) : 0;
}

/** The context model's channel count for context k. */
export const contextChannels = (k: number): number => 2 * k + 1;

/** Planes (one Float32Array per channel, equal lengths) as a planar CHW image: the inference layout. */
export function planar(planes: Float32Array[]): Float32Array {
  if (planes.length === 1) return planes[0];
  const n = planes[0].length;
  const out = new Float32Array(n * planes.length);
  planes.forEach((p, c) => out.set(p, c * n));
  return out;
}

/** Planes as an interleaved HWC image: the training layout. */
export function interleaved(planes: Float32Array[]): Float32Array {
  const c = planes.length;
  if (c === 1) return planes[0];
  const n = planes[0].length;
  const out = new Float32Array(n * c);
  for (let k = 0; k < c; k++) {
    const p = planes[k];
    for (let i = 0; i < n; i++) out[i * c + k] = p[i];
  }
  return out;
}

/**
 * A first-layer kernel (HWIO, taps × oldC × cout) widened to newC input channels, the old channels at `offset` and the
 * new ones zero: a 2D model turned into a z-context one that computes exactly what it did until training moves it.
 */
export function widenInputKernel(kernel: Float32Array, taps: number, oldC: number, newC: number, offset: number): Float32Array {
  const cout = kernel.length / (taps * oldC);
  if (!Number.isInteger(cout) || offset + oldC > newC) throw new Error(`kernel of ${kernel.length} values is not ${taps} taps × ${oldC} channels inside ${newC}`);
  const out = new Float32Array(taps * newC * cout);
  for (let t = 0; t < taps; t++) {
    for (let c = 0; c < oldC; c++) out.set(kernel.subarray((t * oldC + c) * cout, (t * oldC + c + 1) * cout), (t * newC + offset + c) * cout);
  }
  return out;
}
