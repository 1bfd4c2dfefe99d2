// Live quality of one proofread slice against its ground truth: the ISBI scores (V_rand, V_info from ml/metrics) and
// the errors worth fixing first. Each predicted segment's merge error is the number of pixel pairs it puts together
// that the ground truth keeps apart, s_i² − Σ_j n_ij²; each true segment's split error is the pairs it keeps together
// that the prediction separates, t_j² − Σ_i n_ij². Their sums are exactly the pair counts behind V_rand_merge and
// V_rand_split, so "share" is the fraction of that error one fix would remove.
import type { Labels } from '../types';
import { absorbBoundaries } from '../metrics/absorb';
import { scoreLabels, type SegmentationScores } from '../metrics/scores';
import type { GroundTruthSegments } from '../metrics/ground-truth';

export interface QualityError {
  kind: 'split' | 'merge';
  /** Share of all split (or all merge) pair errors on the slice, 0..1. */
  share: number;
  /** A pixel to jump to: in the largest overlap of the offending segment. */
  x: number;
  y: number;
  /** Predicted ids involved: the merged segment, or the pieces of the split one (largest first). */
  ids: number[];
}

export interface SliceQuality {
  scores: SegmentationScores;
  errors: QualityError[];
}

export function sliceQuality(pred: Labels, gt: GroundTruthSegments, maxErrors = 10): SliceQuality {
  const scores = scoreLabels(pred, gt);
  const p = absorbBoundaries(pred).data;
  const seg = gt.segments;
  const width = pred.width;
  // Joint counts keyed by (true, predicted), with one pixel of each pair remembered for the jump.
  const joint = new Map<string, { j: number; k: number; n: number; at: number }>();
  const s = new Map<number, number>();
  const t = new Map<number, number>();
  for (let i = 0; i < seg.length; i++) {
    const j = seg[i];
    const k = p[i];
    if (j === 0 || k === 0) continue;
    s.set(k, (s.get(k) ?? 0) + 1);
    t.set(j, (t.get(j) ?? 0) + 1);
    const key = `${j}:${k}`;
    const e = joint.get(key);
    if (e) e.n++;
    else joint.set(key, { j, k, n: 1, at: i });
  }
  const byPred = new Map<number, { sq: number; parts: { j: number; n: number; at: number }[] }>();
  const byTrue = new Map<number, { sq: number; parts: { k: number; n: number; at: number }[] }>();
  for (const e of joint.values()) {
    const bp = byPred.get(e.k) ?? { sq: 0, parts: [] };
    bp.sq += e.n * e.n;
    bp.parts.push({ j: e.j, n: e.n, at: e.at });
    byPred.set(e.k, bp);
    const bt = byTrue.get(e.j) ?? { sq: 0, parts: [] };
    bt.sq += e.n * e.n;
    bt.parts.push({ k: e.k, n: e.n, at: e.at });
    byTrue.set(e.j, bt);
  }
  const merges: (QualityError & { pairs: number })[] = [];
  let mergeTotal = 0;
  for (const [k, b] of byPred) {
    const size = s.get(k) ?? 0;
    const pairs = size * size - b.sq;
    if (pairs <= 0) continue;
    mergeTotal += pairs;
    const big = b.parts.reduce((a, c) => (c.n > a.n ? c : a));
    merges.push({ kind: 'merge', share: 0, pairs, x: big.at % width, y: Math.floor(big.at / width), ids: [k] });
  }
  const splits: (QualityError & { pairs: number })[] = [];
  let splitTotal = 0;
  for (const [j, b] of byTrue) {
    const size = t.get(j) ?? 0;
    const pairs = size * size - b.sq;
    if (pairs <= 0) continue;
    splitTotal += pairs;
    const parts = b.parts.slice().sort((a, c) => c.n - a.n);
    splits.push({ kind: 'split', share: 0, pairs, x: parts[0].at % width, y: Math.floor(parts[0].at / width), ids: parts.map((q) => q.k) });
  }
  for (const m of merges) m.share = m.pairs / mergeTotal;
  for (const m of splits) m.share = m.pairs / splitTotal;
  // Rank by the absolute number of wrong pairs: a split and a merge compete on the same scale.
  const errors = [...merges, ...splits]
    .sort((a, b) => b.pairs - a.pairs)
    .slice(0, maxErrors)
    .map(({ pairs: _pairs, ...e }) => e);
  return { scores, errors };
}
