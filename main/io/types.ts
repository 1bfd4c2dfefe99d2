// Types shared by the stack readers and the TIFF writer (kept apart so the readers need not import each other).

/** The pixel types EMSeg keeps in memory; every reader converts what it reads to one of these. */
export type PixelType = 'uint8' | 'uint16' | 'uint32' | 'float32';

/** Physical size of one voxel in nanometres; z is absent when the file does not say. */
export interface PixelSizeNm {
  x: number;
  y: number;
  z?: number;
}

export type NoticeFn = (msg: string) => void;

export const BYTES_PER_PIXEL: Record<PixelType, number> = { uint8: 1, uint16: 2, uint32: 4, float32: 4 };

/** Default limit on the declared size of one slice, so a corrupt or hostile header cannot make us allocate 40 GB. */
export const DEFAULT_MAX_SLICE_BYTES = 2 * 1024 ** 3;

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
