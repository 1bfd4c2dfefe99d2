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
  /** A pixel to jump to: of the offending segment's largest overlap, the one nearest that overlap's centroid, and
   * never a boundary pixel (so the label there is the first of `ids`). */
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
  const raw = pred.data;
  // Joint counts keyed by (true, predicted), with the pair's centroid for the jump.
  const joint = new Map<string, { j: number; k: number; n: number; at: number; sx: number; sy: number }>();
  const s = new Map<number, number>();
  const t = new Map<number, number>();
  for (let i = 0; i < seg.length; i++) {
    const j = seg[i];
    const k = p[i];
    if (j === 0 || k === 0) continue;
    s.set(k, (s.get(k) ?? 0) + 1);
    t.set(j, (t.get(j) ?? 0) + 1);
    const key = `${j}:${k}`;
    const x = i % width;
    const y = (i - x) / width;
    const e = joint.get(key);
    if (e) {
      e.n++;
      e.sx += x;
      e.sy += y;
    } else joint.set(key, { j, k, n: 1, at: i, sx: x, sy: y });
  }
  type Part = { j: number; k: number; n: number; at: number };
  const byPred = new Map<number, { sq: number; parts: Part[] }>();
  const byTrue = new Map<number, { sq: number; parts: Part[] }>();
  for (const e of joint.values()) {
    const bp = byPred.get(e.k) ?? { sq: 0, parts: [] };
    bp.sq += e.n * e.n;
    bp.parts.push(e);
    byPred.set(e.k, bp);
    const bt = byTrue.get(e.j) ?? { sq: 0, parts: [] };
    bt.sq += e.n * e.n;
    bt.parts.push(e);
    byTrue.set(e.j, bt);
  }
  const merges: (QualityError & { pairs: number; part: Part })[] = [];
  let mergeTotal = 0;
  for (const [k, b] of byPred) {
    const size = s.get(k) ?? 0;
    const pairs = size * size - b.sq;
    if (pairs <= 0) continue;
    mergeTotal += pairs;
    const big = b.parts.reduce((a, c) => (c.n > a.n ? c : a));
    merges.push({ kind: 'merge', share: 0, pairs, x: 0, y: 0, ids: [k], part: big });
  }
  const splits: (QualityError & { pairs: number; part: Part })[] = [];
  let splitTotal = 0;
  for (const [j, b] of byTrue) {
    const size = t.get(j) ?? 0;
    const pairs = size * size - b.sq;
    if (pairs <= 0) continue;
    splitTotal += pairs;
    const parts = b.parts.slice().sort((a, c) => c.n - a.n);
    splits.push({ kind: 'split', share: 0, pairs, x: 0, y: 0, ids: parts.map((q) => q.k), part: parts[0] });
  }
  for (const m of merges) m.share = m.pairs / mergeTotal;
  for (const m of splits) m.share = m.pairs / splitTotal;
  // Rank by the absolute number of wrong pairs: a split and a merge compete on the same scale.
  const ranked = [...merges, ...splits].sort((a, b) => b.pairs - a.pairs).slice(0, maxErrors);
  // Where to jump: the first pixel of an overlap is on its top edge, often a boundary pixel that absorbing gave the
  // segment; the pixel of the overlap (not on a boundary) nearest its centroid is in the middle of what to look at.
  // One more pass over the slice, only for the errors listed.
  const wanted = new Map<number, Map<number, { cx: number; cy: number; best: number; at: number }>>();
  for (const e of ranked) {
    const part = joint.get(`${e.part.j}:${e.part.k}`);
    if (!part) continue;
    const byK = wanted.get(part.j) ?? new Map();
    byK.set(part.k, { cx: part.sx / part.n, cy: part.sy / part.n, best: Infinity, at: part.at });
    wanted.set(part.j, byK);
  }
  for (let i = 0; i < seg.length; i++) {
    const w = wanted.get(seg[i])?.get(raw[i]);
    if (!w) continue;
    const x = i % width;
    const d = (x - w.cx) ** 2 + ((i - x) / width - w.cy) ** 2;
    if (d < w.best) {
      w.best = d;
      w.at = i;
    }
  }
  const errors = ranked.map(({ pairs: _pairs, part, ...e }) => {
    const at = wanted.get(part.j)?.get(part.k)?.at ?? part.at;
    return { ...e, x: at % width, y: Math.floor(at / width) };
  });
  return { scores, errors };
}
