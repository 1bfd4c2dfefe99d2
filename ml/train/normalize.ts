// Slice normalisation shared by training and inference: zero mean, unit standard deviation per slice. It makes the
// models indifferent to bit depth (8-, 16-bit, float) and to the contrast drift between sections of a stack.
import type { Image2D } from '../types';

export function normalizeSlice(img: Image2D): Float32Array {
  const n = img.width * img.height;
  const src = img.data;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += src[i];
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const d = src[i] - mean;
    sq += d * d;
  }
  const std = Math.sqrt(sq / n) || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (src[i] - mean) / std;
  return out;
}

/** 1 where the ground-truth label marks membrane, else 0. */
export function membraneTarget(label: Image2D, membraneValue: number): Uint8Array {
  const n = label.width * label.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = label.data[i] === membraneValue ? 1 : 0;
  return out;
}
