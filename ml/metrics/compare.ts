// Is one segmentation better than another on the same slices, or is the difference within what the slices' spread
// allows? A paired percentile bootstrap over slices: the per-slice differences are resampled with replacement and the
// mean difference's spread gives a confidence interval. On 10 slices a gain of a few thousandths of V_rand is often
// inside it, which is what this is for.
import { Rng } from '../train/rng';

export interface PairedDifference {
  /** Mean over slices of candidate − baseline. */
  mean: number;
  /** Percentile bootstrap interval of the mean difference at `level`. */
  lo: number;
  hi: number;
  level: number;
  /** Slices where the candidate scores higher / lower than the baseline. */
  better: number;
  worse: number;
  slices: number;
  resamples: number;
}

export interface BootstrapOptions {
  resamples?: number;
  level?: number;
  seed?: number;
}

/** A difference with its sign always shown, 4 decimals (V_rand and V_info differences): +0.0020, −0.0015. */
export function signedDifference(v: number): string {
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(4)}`;
}

export function pairedBootstrap(baseline: readonly number[], candidate: readonly number[], opts: BootstrapOptions = {}): PairedDifference {
  if (baseline.length !== candidate.length) throw new Error(`paired bootstrap: ${baseline.length} baseline slices against ${candidate.length}`);
  const n = baseline.length;
  if (n === 0) throw new Error('paired bootstrap: no slices');
  const resamples = opts.resamples ?? 10000;
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new Error(`paired bootstrap: level ${level} is not in (0, 1)`);
  const d = candidate.map((c, i) => c - baseline[i]);
  const mean = d.reduce((a, b) => a + b, 0) / n;
  const rng = new Rng(opts.seed ?? 1);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += d[rng.int(n)];
    means[r] = s / n;
  }
  means.sort();
  const at = (q: number) => means[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))];
  const tail = (1 - level) / 2;
  return {
    mean, lo: at(tail), hi: at(1 - tail), level,
    better: d.filter((x) => x > 0).length, worse: d.filter((x) => x < 0).length, slices: n, resamples,
  };
}
