// Exact Euclidean distance transform (Felzenszwalb & Huttenlocher, "Distance transforms of sampled functions",
// Theory of Computing 8, 2012): two 1D lower-envelope passes, linear in the pixel count. The watershed uses it on the
// interior mask to place one seed per cell body instead of one per dark blob.

/** Stands for "no background yet" in the squared distances; any real squared distance is far below it. */
const FAR = 1e20;

/** Squared 1D distance transform of f[0..n) (stride-free scratch buffers v, z, d of length ≥ n, n + 1, n). */
function dt1d(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  let k = 0;
  v[0] = 0;
  z[0] = -Infinity;
  z[1] = Infinity;
  for (let q = 1; q < n; q++) {
    const fq = f[q] + q * q;
    let s = (fq - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    while (s <= z[k]) {
      k--;
      s = (fq - (f[v[k]] + v[k] * v[k])) / (2 * q - 2 * v[k]);
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  k = 0;
  for (let q = 0; q < n; q++) {
    while (z[k + 1] < q) k++;
    const dq = q - v[k];
    d[q] = dq * dq + f[v[k]];
  }
}

/**
 * Euclidean distance (px) from every non-zero pixel of the mask to the nearest zero pixel; 0 on zero pixels.
 * Pixels beyond the image border do not count as background. With no zero pixel at all every distance is Infinity.
 */
export function distanceTransform(mask: Uint8Array, width: number, height: number): Float32Array {
  const n = width * height;
  if (mask.length !== n) throw new RangeError(`distanceTransform: ${mask.length} values for ${width}×${height}`);
  const out = new Float32Array(n);
  let anyBackground = false;
  for (let i = 0; i < n; i++) {
    if (!mask[i]) {
      anyBackground = true;
      break;
    }
  }
  if (!anyBackground) return out.fill(Infinity);
  const grid = new Float64Array(n);
  for (let i = 0; i < n; i++) grid[i] = mask[i] ? FAR : 0;
  const len = Math.max(width, height);
  const f = new Float64Array(len);
  const d = new Float64Array(len);
  const v = new Int32Array(len);
  const z = new Float64Array(len + 1);
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) f[y] = grid[y * width + x];
    dt1d(f, height, d, v, z);
    for (let y = 0; y < height; y++) grid[y * width + x] = d[y];
  }
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) f[x] = grid[row + x];
    dt1d(f, width, d, v, z);
    for (let x = 0; x < width; x++) out[row + x] = Math.sqrt(d[x]);
  }
  return out;
}
