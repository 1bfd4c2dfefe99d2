// Activity-based pruning, "neural network relief" (Dekhovich et al. 2021, arXiv:2109.10795): a connection matters as
// much as the signal it carries on real data, relative to everything else entering the same neuron.
//
// For a convolution with kernel K (ONNX layout [co, ci, kh, kw]; batch norm folded in) and bias b, the importance of
// the connection from input channel i to filter j is
//   s_ij = E_x ‖ |K_ij| ∗ |x_i| ‖_F / ( Σ_k E_x ‖ |K_kj| ∗ |x_k| ‖_F + E_x ‖ b_j · 1 ‖_F ),
// the expectation over a pruning set of the layer's inputs x ("same" zero padding, stride 1). The bias term is the
// Frobenius norm of the constant map b_j (|b_j| · √(H·W)). Per filter, the connections are kept in decreasing order
// of score until their scores sum to at least α (≈ 0.9 for convolutions, the paper's value); the rest are pruned.
// Fine-tuning and repeating is the caller's loop.

/** ‖ |k| ∗ |x| ‖_F for one kh×kw kernel slice and one h×w channel, "same" zero padding. */
export function absConvNorm(k: Float32Array, kOff: number, kh: number, kw: number, x: Float32Array, xOff: number, h: number, w: number): number {
  const py = (kh - 1) >> 1;
  const px = (kw - 1) >> 1;
  let sq = 0;
  for (let y = 0; y < h; y++)
    for (let xx = 0; xx < w; xx++) {
      let v = 0;
      for (let ky = 0; ky < kh; ky++) {
        const sy = y + ky - py;
        if (sy < 0 || sy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const sx = xx + kx - px;
          if (sx < 0 || sx >= w) continue;
          v += Math.abs(k[kOff + ky * kw + kx]) * Math.abs(x[xOff + sy * w + sx]);
        }
      }
      sq += v * v;
    }
  return Math.sqrt(sq);
}

/**
 * Normalised relief scores s_ij, laid out [co][ci], over a pruning set of planar CHW inputs (ci × h × w each).
 * Each filter's scores and its bias share sum to 1.
 */
export function reliefScores(inputs: readonly Float32Array[], h: number, w: number, kernel: Float32Array, bias: Float32Array | null, co: number, ci: number, kh: number, kw: number): Float32Array {
  if (inputs.length === 0) throw new Error('relief scores need at least one input');
  const s = new Float64Array(co * ci);
  for (const x of inputs) {
    if (x.length !== ci * h * w) throw new RangeError(`input of ${x.length} values, expected ${ci}×${h}×${w}`);
    for (let j = 0; j < co; j++)
      for (let i = 0; i < ci; i++) s[j * ci + i] += absConvNorm(kernel, (j * ci + i) * kh * kw, kh, kw, x, i * h * w, h, w) / inputs.length;
  }
  const out = new Float32Array(co * ci);
  for (let j = 0; j < co; j++) {
    let total = bias ? Math.abs(bias[j]) * Math.sqrt(h * w) : 0;
    for (let i = 0; i < ci; i++) total += s[j * ci + i];
    for (let i = 0; i < ci; i++) out[j * ci + i] = total > 0 ? s[j * ci + i] / total : 0;
  }
  return out;
}

/** Per filter, the smallest set of connections whose scores sum to at least α: 1 = keep, laid out [co][ci]. */
export function reliefKeep(scores: Float32Array, co: number, ci: number, alpha: number): Uint8Array {
  const keep = new Uint8Array(co * ci);
  for (let j = 0; j < co; j++) {
    const order = Array.from({ length: ci }, (_, i) => i).sort((a, b) => scores[j * ci + b] - scores[j * ci + a] || a - b);
    let sum = 0;
    for (const i of order) {
      // A connection that carries no signal is never kept, even when α is out of reach without the bias.
      if (sum >= alpha || scores[j * ci + i] <= 0) break;
      keep[j * ci + i] = 1;
      sum += scores[j * ci + i];
    }
  }
  return keep;
}

/**
 * Global magnitude pruning at the same sparsity, the baseline the relief paper compares against: keep the
 * `keepCount` largest-magnitude weights over all the given kernels; 1 = keep, one mask per kernel.
 */
export function magnitudeKeep(kernels: readonly Float32Array[], keepCount: number): Uint8Array[] {
  const all: number[] = [];
  for (const k of kernels) for (const v of k) all.push(Math.abs(v));
  all.sort((a, b) => b - a);
  const threshold = keepCount > 0 ? all[Math.min(keepCount, all.length) - 1] : Infinity;
  let budget = keepCount;
  // Keep strictly-above-threshold weights, then ties at the threshold in order, so exactly keepCount survive.
  const masks = kernels.map((k) => Uint8Array.from(k, (v) => (Math.abs(v) > threshold ? 1 : 0)));
  for (const m of masks) budget -= m.reduce((a, b) => a + b, 0);
  kernels.forEach((k, n) => {
    for (let i = 0; i < k.length && budget > 0; i++) {
      if (Math.abs(k[i]) === threshold && !masks[n][i]) {
        masks[n][i] = 1;
        budget--;
      }
    }
  });
  return masks;
}
