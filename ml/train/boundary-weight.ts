// Boundary weighting of the loss (Ronneberger, Fischer & Brox 2015, "U-Net", eq. 2): membrane pixels that separate two
// cells closely get extra weight w0·exp(−(d1 + d2)² / 2σ²), where d1 and d2 are the distances to the nearest and the
// second-nearest cell. A thin membrane between two touching cells (d1 + d2 ≈ 2–4 px) weighs up to w0 more than an
// interior pixel; a membrane pixel in a wide extracellular gap or far from any second cell weighs nothing extra. Those
// thin membranes are the ones whose one-pixel gap merges two segments, so this is the loss that cares about V_rand.
import { connectedComponents } from '../segmentation/components';
import { distanceTransform } from '../segmentation/distance';

export interface BoundaryWeightOptions {
  /** Peak extra weight (U-Net: 10). */
  w0: number;
  /** Width of the fall-off in pixels (U-Net: 5). */
  sigma: number;
}

export const DEFAULT_BOUNDARY_WEIGHT: BoundaryWeightOptions = Object.freeze({ w0: 10, sigma: 5 });

/**
 * The separation term per pixel of a membrane mask (1 = membrane, 0 = interior), 0 on interior pixels. Cells are the
 * 4-connected interior components. Each cell's distance transform is computed only within its bounding box grown by
 * the distance past which the term is negligible (3σ), so the cost is proportional to the cells' areas.
 */
export function boundaryWeights(target: Uint8Array, width: number, height: number, opts: BoundaryWeightOptions = DEFAULT_BOUNDARY_WEIGHT): Float32Array {
  const n = width * height;
  if (target.length !== n) throw new RangeError(`boundaryWeights: ${target.length} values for ${width}×${height}`);
  const interior = new Uint8Array(n);
  for (let i = 0; i < n; i++) interior[i] = target[i] ? 0 : 1;
  const { labels, count } = connectedComponents(interior, width, height, 4);
  const x0 = new Int32Array(count + 1).fill(width);
  const y0 = new Int32Array(count + 1).fill(height);
  const x1 = new Int32Array(count + 1).fill(-1);
  const y1 = new Int32Array(count + 1).fill(-1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = labels[y * width + x];
      if (!c) continue;
      if (x < x0[c]) x0[c] = x;
      if (x > x1[c]) x1[c] = x;
      if (y < y0[c]) y0[c] = y;
      if (y > y1[c]) y1[c] = y;
    }
  }
  const reach = Math.ceil(3 * opts.sigma);
  const d1 = new Float32Array(n).fill(Infinity);
  const d2 = new Float32Array(n).fill(Infinity);
  for (let c = 1; c <= count; c++) {
    const wx0 = Math.max(0, x0[c] - reach);
    const wy0 = Math.max(0, y0[c] - reach);
    const ww = Math.min(width - 1, x1[c] + reach) - wx0 + 1;
    const wh = Math.min(height - 1, y1[c] + reach) - wy0 + 1;
    // distanceTransform measures the distance to the nearest zero pixel: the cell is 0, everything else 1.
    const mask = new Uint8Array(ww * wh);
    for (let y = 0; y < wh; y++) {
      const row = (wy0 + y) * width + wx0;
      for (let x = 0; x < ww; x++) mask[y * ww + x] = labels[row + x] === c ? 0 : 1;
    }
    const dist = distanceTransform(mask, ww, wh);
    for (let y = 0; y < wh; y++) {
      const row = (wy0 + y) * width + wx0;
      for (let x = 0; x < ww; x++) {
        const i = row + x;
        if (!target[i]) continue;
        const d = dist[y * ww + x];
        if (d < d1[i]) {
          d2[i] = d1[i];
          d1[i] = d;
        } else if (d < d2[i]) d2[i] = d;
      }
    }
  }
  const out = new Float32Array(n);
  const k = 1 / (2 * opts.sigma * opts.sigma);
  for (let i = 0; i < n; i++) {
    if (!target[i] || d2[i] === Infinity) continue;
    const s = d1[i] + d2[i];
    out[i] = opts.w0 * Math.exp(-s * s * k);
  }
  return out;
}
