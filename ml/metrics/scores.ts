// The ISBI 2012 segmentation scores (Arganda-Carreras et al. 2015, Front. Neuroanat. 9:142, eqs. 3-6), computed from
// the contingency table of predicted segments S and ground-truth segments T over the ground-truth interior pixels.
//
// p_ij = fraction of counted pixels in predicted segment i and true segment j; s_i = Σ_j p_ij, t_j = Σ_i p_ij.
//   V_rand       = Σ p_ij² / (½ Σ t_j² + ½ Σ s_i²)   (eq. 3 with α = ½: the F-score of the two below)
//   V_rand_split = Σ p_ij² / Σ t_j²   P(same predicted segment | same true segment): low when S splits T ("recall")
//   V_rand_merge = Σ p_ij² / Σ s_i²   P(same true segment | same predicted segment): low when S merges T ("precision")
//   V_info       = I(S;T) / (½ H(S) + ½ H(T))
//   V_info_split = I(S;T) / H(S)      low when S splits (H(S) grows, I stays H(T))
//   V_info_merge = I(S;T) / H(T)      low when S merges
// These are the paper's definitions and match Fiji's trainableSegmentation.metrics (RandError precision = ΣAB²/ΣB²
// with B the proposal, recall = ΣAB²/ΣA²; VariationOfInformation precision = I/H(ground truth), recall = I/H(proposal)).
// Beware: some Python ports of the challenge script pass the marginals in the other order and so swap the names
// "split" and "merge"; the values themselves agree.
//   randError    = 1 − V_rand, the adapted Rand error of SNEMI3D (1 − Rand F-score; same table, N² normalisation).
//   pixelError   = fraction of all pixels whose boundary/interior class differs from the ground truth's.
import type { Labels } from '../types';
import { maxLabel, relabelConsecutive } from '../segmentation/components';
import { absorbBoundaries } from './absorb';
import { groundTruthSegments, type GroundTruthInput, type GroundTruthSegments } from './ground-truth';

export interface SegmentationScores {
  vrand: number;
  vrandSplit: number;
  vrandMerge: number;
  vinfo: number;
  vinfoSplit: number;
  vinfoMerge: number;
  randError: number;
  pixelError: number;
}

export const SCORE_KEYS = ['vrand', 'vrandSplit', 'vrandMerge', 'vinfo', 'vinfoSplit', 'vinfoMerge', 'randError', 'pixelError'] as const;

export type ContingencyScores = Omit<SegmentationScores, 'pixelError'>;

/**
 * Scores a predicted segmentation (0 = boundary) against ground truth: predicted boundary pixels are absorbed first
 * (absorbBoundaries), then the Rand and information scores are computed over the ground-truth interior.
 * A slice without any ground-truth interior pixel has nothing to score: every score but pixelError is NaN.
 */
export function scoreLabels(pred: Labels, gt: GroundTruthInput): SegmentationScores {
  const g = groundTruthSegments(gt);
  if (pred.width !== g.width || pred.height !== g.height) {
    throw new RangeError(`scoreLabels: prediction is ${pred.width}×${pred.height}, ground truth ${g.width}×${g.height}`);
  }
  let wrong = 0;
  const p = pred.data;
  const s = g.segments;
  for (let i = 0; i < s.length; i++) if ((p[i] === 0) !== (s[i] === 0)) wrong++;
  const scores = contingencyScores(absorbBoundaries(pred).data, g);
  return { ...scores, pixelError: s.length > 0 ? wrong / s.length : Number.NaN };
}

/**
 * Rand and information scores of a prediction whose boundaries are already absorbed. `pred` may be renumbered in
 * place. Predicted 0 pixels still inside the ground-truth interior (only when the prediction had no segment at all)
 * count as one singleton segment each — Fiji's convention for unassigned proposal pixels — so an empty prediction
 * scores as the worst possible split.
 */
export function contingencyScores(pred: Uint32Array, gt: GroundTruthSegments): ContingencyScores {
  const seg = gt.segments;
  if (pred.length !== seg.length) throw new RangeError('contingencyScores: prediction and ground truth differ in size');
  let max = maxLabel(pred);
  // Keys i·P + j must stay below 2^53 and the marginal table small: renumber sparse ids.
  if (max > pred.length) max = relabelConsecutive(pred);
  const P = max + 1;
  const t = new Float64Array(gt.count + 1);
  const s = new Float64Array(P);
  const joint = new Map<number, number>();
  let singletons = 0;
  // Neighbouring pixels nearly always share their (true, predicted) pair, so counting runs keeps the hash map out of
  // the per-pixel loop.
  let runKey = -1;
  let runLength = 0;
  for (let i = 0; i < seg.length; i++) {
    const j = seg[i];
    if (j === 0) continue;
    const k = pred[i];
    t[j]++;
    if (k === 0) {
      singletons++;
      continue;
    }
    s[k]++;
    const key = j * P + k;
    if (key === runKey) {
      runLength++;
      continue;
    }
    if (runLength > 0) joint.set(runKey, (joint.get(runKey) ?? 0) + runLength);
    runKey = key;
    runLength = 1;
  }
  if (runLength > 0) joint.set(runKey, (joint.get(runKey) ?? 0) + runLength);

  const n = gt.pixels;
  if (n === 0) {
    return { vrand: Number.NaN, vrandSplit: Number.NaN, vrandMerge: Number.NaN, vinfo: Number.NaN, vinfoSplit: Number.NaN, vinfoMerge: Number.NaN, randError: Number.NaN };
  }
  const counts = Float64Array.from(joint.values());
  // Integer sums of squares below 2^53 are exact, so identical partitions give exactly 1.
  const sumP2 = sumOfSquares(counts) + singletons;
  const sumS2 = sumOfSquares(s) + singletons;
  const sumT2 = sumOfSquares(t);
  const vrandSplit = sumP2 / sumT2;
  const vrandMerge = sumP2 / sumS2;
  const vrand = (2 * sumP2) / (sumT2 + sumS2);

  // H = log n − (1/n) Σ c log c over the counts c of a partition; singletons add 1·log 1 = 0. Summing the sorted counts
  // makes each entropy a function of the multiset of counts only, so equal partitions give bit-identical entropies
  // and scores of exactly 1.
  const logN = Math.log(n);
  const hS = logN - sumCLogC(s) / n;
  const hT = logN - sumCLogC(t) / n;
  const hST = logN - sumCLogC(counts) / n;
  const mutual = Math.max(0, hS + hT - hST);
  const vinfoSplit = ratio(mutual, hS);
  const vinfoMerge = ratio(mutual, hT);
  const vinfo = ratio(2 * mutual, hS + hT);
  return { vrand, vrandSplit, vrandMerge, vinfo, vinfoSplit, vinfoMerge, randError: 1 - vrand };
}

/** Mean of each score over slices, skipping NaN (slices without ground-truth interior). */
export function meanScores(list: readonly SegmentationScores[]): SegmentationScores {
  const out = {} as SegmentationScores;
  for (const key of SCORE_KEYS) {
    let sum = 0;
    let k = 0;
    for (const s of list) {
      if (Number.isNaN(s[key])) continue;
      sum += s[key];
      k++;
    }
    out[key] = k > 0 ? sum / k : Number.NaN;
  }
  return out;
}

/** a / b clamped to [0, 1]; 0/0 = 1 (a partition with one segment cannot be split or merged any further). */
function ratio(a: number, b: number): number {
  if (b <= 0) return 1;
  const r = a / b;
  return r > 1 ? 1 : r < 0 ? 0 : r;
}

function sumOfSquares(a: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * a[i];
  return sum;
}

function sumCLogC(a: Float64Array): number {
  const sorted = a.filter((c) => c > 1).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i] * Math.log(sorted[i]);
  return sum;
}
