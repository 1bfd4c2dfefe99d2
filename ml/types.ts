// The data types every layer shares. Everything is a plain typed array in row-major order (index = y * width + x).

export type PixelArray = Uint8Array | Uint16Array | Uint32Array | Float32Array;

/** One 2D image: a slice of a stack, a membrane map or a label image. */
export interface Image2D<T extends PixelArray = PixelArray> {
  width: number;
  height: number;
  data: T;
}

/** P(membrane) per pixel, 1 = membrane. */
export type MembraneMap = Image2D<Float32Array>;

/** Segment ids per pixel, 0 = boundary, consecutive ids 1..n. */
export type Labels = Image2D<Uint32Array>;

/** Progress callback used by long computations: done of total units, with an optional short message. */
export type ProgressFn = (done: number, total: number, message?: string) => void;
