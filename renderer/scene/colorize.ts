// Turning tile pixels into RGBA: grey levels for raw data, a colormap for membrane maps, a diverging map for the
// difference between refinement rounds, and random colours for labels. Pure functions over typed arrays, run in the
// colorize worker so that the UI thread only draws finished bitmaps.

export type TilePixels = Uint8Array | Uint16Array | Uint32Array | Float32Array;

export type TileStyle =
  /** t = ((v - lo) / (hi - lo) - 0.5) · contrast + 0.5 + brightness, clamped to [0, 1]. */
  | { kind: 'raw'; lo: number; hi: number; brightness: number; contrast: number }
  /** P(membrane) through the colormap; alpha follows P so cell interiors let the raw data show through. */
  | { kind: 'map' }
  /** round r minus round r-1: red where a round added membrane, blue where it removed some. */
  | { kind: 'diff' }
  /** Segment ids: random colours (0 = boundary, transparent); boundaryOnly draws only the edges of segments. */
  | { kind: 'labels'; boundaryOnly: boolean; seed: number };

export function styleKey(s: TileStyle): string {
  switch (s.kind) {
    case 'raw':
      return `raw:${s.lo}:${s.hi}:${s.brightness}:${s.contrast}`;
    case 'labels':
      return `labels:${s.boundaryOnly ? 1 : 0}:${s.seed}`;
    default:
      return s.kind;
  }
}

// Inferno-like ramp from a few anchors (dark purple → red → yellow): perceptually ordered and readable over grey EM.
const MAP_ANCHORS: [number, number, number][] = [
  [0, 0, 4],
  [40, 11, 84],
  [101, 21, 110],
  [159, 42, 99],
  [212, 72, 66],
  [245, 125, 21],
  [250, 193, 39],
  [252, 255, 164],
];

function buildLut(anchors: [number, number, number][]): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (anchors.length - 1);
    const k = Math.min(anchors.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(anchors[k][c] * (1 - f) + anchors[k + 1][c] * f);
  }
  return lut;
}

const MAP_LUT = buildLut(MAP_ANCHORS);

/** The membrane-map colour of P, for legends and tests. */
export function mapColor(p: number): [number, number, number] {
  const i = Math.max(0, Math.min(255, Math.round(p * 255))) * 3;
  return [MAP_LUT[i], MAP_LUT[i + 1], MAP_LUT[i + 2]];
}

/** A bright colour per segment id, stable across tiles and slices (a hash, not a table). */
export function labelColor(id: number, seed: number): [number, number, number] {
  let h = Math.imul(id ^ seed, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  const hue = (h >>> 0) / 4294967296;
  // HSV with s = 0.75, v = 1: saturated enough to tell neighbours apart, light enough over dark membranes.
  const i = Math.floor(hue * 6);
  const f = hue * 6 - i;
  const p = 0.25;
  const q = 1 - 0.75 * f;
  const t = 1 - 0.75 * (1 - f);
  const [r, g, b] = [
    [1, t, p],
    [q, 1, p],
    [p, 1, t],
    [p, q, 1],
    [t, p, 1],
    [1, p, q],
  ][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

export function colorize(style: TileStyle, w: number, h: number, data: TilePixels, previous?: TilePixels): Uint8ClampedArray<ArrayBuffer> {
  const n = w * h;
  const out = new Uint8ClampedArray(new ArrayBuffer(n * 4));
  switch (style.kind) {
    case 'raw': {
      const scale = style.hi > style.lo ? 1 / (style.hi - style.lo) : 1;
      const { lo, contrast, brightness } = style;
      for (let i = 0, o = 0; i < n; i++, o += 4) {
        const t = ((data[i] - lo) * scale - 0.5) * contrast + 0.5 + brightness;
        const g = t <= 0 ? 0 : t >= 1 ? 255 : t * 255;
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
        out[o + 3] = 255;
      }
      break;
    }
    case 'map': {
      for (let i = 0, o = 0; i < n; i++, o += 4) {
        const p = data[i];
        const k = (p <= 0 ? 0 : p >= 1 ? 255 : Math.round(p * 255)) * 3;
        out[o] = MAP_LUT[k];
        out[o + 1] = MAP_LUT[k + 1];
        out[o + 2] = MAP_LUT[k + 2];
        out[o + 3] = 40 + (k / 3) * (215 / 255);
      }
      break;
    }
    case 'diff': {
      for (let i = 0, o = 0; i < n; i++, o += 4) {
        const d = data[i] - (previous ? previous[i] : 0);
        // Changes under 0.02 are noise of the float maps; from there alpha grows to opaque at a change of 0.5.
        const a = Math.abs(d) < 0.02 ? 0 : Math.min(1, Math.abs(d) * 2);
        out[o] = d > 0 ? 230 : 40;
        out[o + 1] = 60;
        out[o + 2] = d > 0 ? 40 : 230;
        out[o + 3] = a * 255;
      }
      break;
    }
    case 'labels': {
      let lastId = -1;
      let c: [number, number, number] = [0, 0, 0];
      for (let y = 0, i = 0; y < h; y++) {
        for (let x = 0; x < w; x++, i++) {
          const id = data[i];
          const o = i * 4;
          if (id === 0) continue; // boundary: transparent
          if (style.boundaryOnly) {
            const edge = (x + 1 < w && data[i + 1] !== id) || (y + 1 < h && data[i + w] !== id) || (x > 0 && data[i - 1] !== id) || (y > 0 && data[i - w] !== id);
            if (!edge) continue;
          }
          if (id !== lastId) {
            c = labelColor(id, style.seed);
            lastId = id;
          }
          out[o] = c[0];
          out[o + 1] = c[1];
          out[o + 2] = c[2];
          out[o + 3] = 255;
        }
      }
      break;
    }
  }
  return out;
}

/** Black and white points for auto-levels: the 0.5th and 99.5th percentiles of the given pixels. */
export function autoLevels(arrays: TilePixels[]): { lo: number; hi: number } | null {
  let count = 0;
  for (const a of arrays) count += a.length;
  if (count === 0) return null;
  // A sample of at most 200 000 values: percentiles to well under one grey level, in a few milliseconds.
  const step = Math.max(1, Math.floor(count / 200_000));
  const sample: number[] = [];
  for (const a of arrays) for (let i = 0; i < a.length; i += step) sample.push(a[i]);
  const s = Float64Array.from(sample).sort();
  const lo = s[Math.floor(s.length * 0.005)];
  const hi = s[Math.min(s.length - 1, Math.floor(s.length * 0.995))];
  return hi > lo ? { lo, hi } : { lo, hi: lo + 1 };
}
