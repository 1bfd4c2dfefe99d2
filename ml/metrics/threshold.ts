// Scoring a membrane map rather than a segmentation, the way the ISBI 2012 Fiji script does: segment the map at each
// threshold of a sweep (interior = map < t, 4-connected components, no size filter), score each, keep the best V_rand.
// For a stack one threshold serves all slices and is chosen on the mean over slices (Fiji averages the per-slice
// scores at each threshold, then takes the maximum); choosing per slice would flatter the map. Fiji sweeps 0..1 in
// steps of 0.1; our default is 0.05..0.95 in steps of 0.05 (the ends give all-membrane or all-interior maps).
import type { MembraneMap } from '../types';
import { segment, thresholdSegment, type SegmentParams } from '../segmentation';
import { groundTruthSegments, type GroundTruthInput } from './ground-truth';
import { meanScores, scoreLabels, type SegmentationScores } from './scores';

export const DEFAULT_THRESHOLDS: readonly number[] = Object.freeze(Array.from({ length: 19 }, (_, k) => Math.round((k + 1) * 5) / 100));

export interface ThresholdScores extends SegmentationScores {
  threshold: number;
}

export interface SweepOptions {
  thresholds?: readonly number[];
  /**
   * 'threshold' (default): components of map < t, as in the ISBI script. 'watershed': the full `segment` pipeline with
   * t as its seed threshold (and `params` for everything else) — to pick a seed threshold for a map.
   */
  segment?: 'threshold' | 'watershed';
  params?: Partial<SegmentParams>;
}

/** Scores of one slice at every threshold of the sweep. pixelError is that of the map cut at t (map ≥ t = boundary). */
export function thresholdCurve(map: MembraneMap, gt: GroundTruthInput, opts: SweepOptions = {}): ThresholdScores[] {
  const g = groundTruthSegments(gt);
  const thresholds = opts.thresholds ?? DEFAULT_THRESHOLDS;
  return thresholds.map((threshold) => {
    const labels =
      opts.segment === 'watershed'
        ? segment(map, { ...opts.params, method: 'watershed', seedThreshold: threshold })
        : thresholdSegment(map, { threshold, connectivity: 4 });
    return { ...scoreLabels(labels, g), pixelError: mapPixelError(map, g.segments, threshold), threshold };
  });
}

function mapPixelError(map: MembraneMap, segments: Uint32Array, threshold: number): number {
  const m = map.data;
  let wrong = 0;
  for (let i = 0; i < m.length; i++) if (!(m[i] < threshold) !== (segments[i] === 0)) wrong++;
  return m.length > 0 ? wrong / m.length : Number.NaN;
}

export interface ThresholdChoice {
  threshold: number;
  /** Means over slices at the chosen threshold. */
  mean: ThresholdScores;
  /** Each slice's scores at the chosen threshold. */
  perSlice: ThresholdScores[];
  /** Means over slices at every threshold. */
  curve: ThresholdScores[];
  /** The best mean V_info and its threshold, which Fiji reports independently of the best V_rand. */
  bestVinfo: { threshold: number; vinfo: number };
}

/** Picks the threshold with the highest mean V_rand (the first one on ties) from per-slice curves of one sweep. */
export function pickThreshold(curves: readonly ThresholdScores[][]): ThresholdChoice {
  if (curves.length === 0 || curves[0].length === 0) throw new RangeError('pickThreshold: no scores');
  const steps = curves[0].length;
  const curve: ThresholdScores[] = [];
  for (let k = 0; k < steps; k++) {
    curve.push({ ...meanScores(curves.map((c) => c[k])), threshold: curves[0][k].threshold });
  }
  let best = 0;
  let bestInfo = 0;
  for (let k = 1; k < steps; k++) {
    if (curve[k].vrand > curve[best].vrand || Number.isNaN(curve[best].vrand)) best = k;
    if (curve[k].vinfo > curve[bestInfo].vinfo || Number.isNaN(curve[bestInfo].vinfo)) bestInfo = k;
  }
  return {
    threshold: curve[best].threshold,
    mean: curve[best],
    perSlice: curves.map((c) => c[best]),
    curve,
    bestVinfo: { threshold: curve[bestInfo].threshold, vinfo: curve[bestInfo].vinfo },
  };
}

/** The best threshold of one slice's membrane map: its scores, the threshold and the whole curve. */
export function bestThreshold(map: MembraneMap, gt: GroundTruthInput, opts: SweepOptions = {}): { threshold: number; best: ThresholdScores; curve: ThresholdScores[] } {
  const curve = thresholdCurve(map, gt, opts);
  const choice = pickThreshold([curve]);
  return { threshold: choice.threshold, best: choice.perSlice[0], curve };
}
