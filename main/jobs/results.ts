// Where a job's results live: one raw little-endian file per slice and layer in the job's folder,
// `z<index>.round-<r>.f32` (membrane map after round r, float32) and `z<index>.labels.u32` (segmentation, uint32).
// Raw files because the viewer reads them back whole and cuts tiles; no codec is worth its time for a cache that
// lives as long as the session. Files are written to a temporary name and renamed, so a reader never sees half a file.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Image2D } from '../../ml/types';
import type { ResultLayer } from '../api/contract';

export function resultFile(outDir: string, z: number, layer: Exclude<ResultLayer, 'truth'>): string {
  return join(outDir, layer === 'labels' ? `z${z}.labels.u32` : `z${z}.${layer}.f32`);
}

/** Reads one result slice back as an Image2D of the slice's size. */
export async function readResultSlice(path: string, width: number, height: number, layer: Exclude<ResultLayer, 'truth'>): Promise<Image2D> {
  const buf = await readFile(path);
  if (buf.byteLength !== width * height * 4) throw new Error(`${path}: ${buf.byteLength} bytes, expected ${width * height * 4}`);
  // Copy into an aligned buffer of its own: a Buffer may share a larger pool at an odd offset.
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  const data = layer === 'labels' ? new Uint32Array(bytes.buffer) : new Float32Array(bytes.buffer);
  return { width, height, data };
}
