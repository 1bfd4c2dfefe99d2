// Matching a stack's pixel size to the one a model was trained at. A membrane model learns membranes a few pixels
// wide; run on a stack imaged at twice the pixel size it sees membranes half as wide and cells a quarter of the area
// it knows. So slices are resampled to the model's pixel size for inference and the maps resampled back.
//
// The resampler is separable and linear: output sample i along an axis sits at input coordinate (i + ½)·n/m − ½
// (pixel centres line up, as in every image library), and takes a triangle-weighted mean of the input samples within
// max(1, n/m) of it. Enlarging, that is bilinear interpolation; shrinking, the triangle widens with the factor so every
// input pixel contributes (no aliasing: a one-pixel membrane shrunk 2× still shows, at half strength). Edges repeat.

/** Within this relative difference a stack runs at its own pixel size: the models tolerate it, resampling costs time. */
export const PIXEL_SIZE_TOLERANCE = 0.1;

/**
 * The factor by which slices are enlarged for inference (stack pixel size / model pixel size), or 1 where either is
 * unknown or they agree within PIXEL_SIZE_TOLERANCE.
 */
export function inferenceScale(stackNm: number | undefined, modelNm: number | undefined): number {
  if (!stackNm || !modelNm || !(stackNm > 0) || !(modelNm > 0)) return 1;
  const f = stackNm / modelNm;
  return Math.abs(f - 1) <= PIXEL_SIZE_TOLERANCE ? 1 : f;
}

interface AxisWeights {
  /** First input index of each output sample's taps. */
  start: Int32Array;
  /** Number of taps of each output sample. */
  count: Int32Array;
  /** Tap weights, `taps` per output sample (normalised to sum 1). */
  w: Float32Array;
  taps: number;
}

function axisWeights(n: number, m: number): AxisWeights {
  const scale = n / m;
  const support = Math.max(1, scale);
  const taps = Math.ceil(2 * support) + 1;
  const start = new Int32Array(m);
  const count = new Int32Array(m);
  const w = new Float32Array(m * taps);
  for (let i = 0; i < m; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const lo = Math.floor(centre - support) + 1;
    const hi = Math.ceil(centre + support) - 1;
    let sum = 0;
    let k = 0;
    start[i] = lo;
    for (let j = lo; j <= hi && k < taps; j++, k++) {
      const v = Math.max(0, 1 - Math.abs(j - centre) / support);
      w[i * taps + k] = v;
      sum += v;
    }
    count[i] = k;
    for (let t = 0; t < k; t++) w[i * taps + t] /= sum;
  }
  return { start, count, w, taps };
}

/** Resample a planar image of `c` channels, h×w, to oh×ow. */
export function resample(src: Float32Array, c: number, h: number, w: number, oh: number, ow: number): Float32Array {
  if (src.length !== c * h * w) throw new Error(`resample: ${src.length} values for ${c}×${h}×${w}`);
  if (!(oh >= 1 && ow >= 1 && Number.isInteger(oh) && Number.isInteger(ow))) throw new Error(`resample: bad output size ${ow}×${oh}`);
  if (oh === h && ow === w) return src;
  const ax = axisWeights(w, ow);
  const ay = axisWeights(h, oh);
  const clampX = (j: number) => (j < 0 ? 0 : j >= w ? w - 1 : j);
  const clampY = (j: number) => (j < 0 ? 0 : j >= h ? h - 1 : j);
  const rows = new Float32Array(h * ow);
  const out = new Float32Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w;
    // Along x: every input row to ow samples.
    for (let y = 0; y < h; y++) {
      const row = base + y * w;
      for (let x = 0; x < ow; x++) {
        let s = 0;
        const o = x * ax.taps;
        for (let t = 0; t < ax.count[x]; t++) s += ax.w[o + t] * src[row + clampX(ax.start[x] + t)];
        rows[y * ow + x] = s;
      }
    }
    // Along y.
    const dst = ch * oh * ow;
    for (let y = 0; y < oh; y++) {
      const o = y * ay.taps;
      const line = dst + y * ow;
      for (let t = 0; t < ay.count[y]; t++) {
        const wt = ay.w[o + t];
        const from = clampY(ay.start[y] + t) * ow;
        for (let x = 0; x < ow; x++) out[line + x] += wt * rows[from + x];
      }
    }
  }
  return out;
}

/** The size of an h×w slice enlarged by `factor` (at least 1×1). */
export function scaledSize(h: number, w: number, factor: number): { h: number; w: number } {
  return { h: Math.max(1, Math.round(h * factor)), w: Math.max(1, Math.round(w * factor)) };
}
