// Scores over a stack: each slice is scored on its own (the ISBI metrics are 2D) and the stack score is the mean over
// slices, as in the Fiji evaluation (per-slice scores averaged), not the score of one pooled contingency table.
import type { Image2D, Labels, MembraneMap } from '../types';
import { asGroundTruth, type GroundTruthInput } from './ground-truth';
import { meanScores, scoreLabels, type SegmentationScores } from './scores';
import { pickThreshold, thresholdCurve, type SweepOptions } from './threshold';

export interface SlicePair {
  seg: Labels;
  gt: GroundTruthInput;
  /** Slice index reported back; defaults to the position in the list. */
  index?: number;
}

export interface StackScores {
  perSlice: Array<SegmentationScores & { index: number }>;
  mean: SegmentationScores;
}

export function scoreStack(pairs: readonly SlicePair[]): StackScores {
  const perSlice = pairs.map((p, k) => ({ index: p.index ?? k, ...scoreLabels(p.seg, p.gt) }));
  return { perSlice, mean: meanScores(perSlice) };
}

function isGroundTruth(x: GroundTruthInput | Image2D): x is GroundTruthInput {
  return 'kind' in x;
}

/**
 * Membrane maps of a stack against ground truth, as a flat record for training logs: the mean scores at the stack's
 * best threshold, plus `threshold`. Bare images are ground truth as asGroundTruth reads them (uint8/uint16: 0 =
 * membrane, the ISBI convention; uint32: instance labels).
 */
export function scoreMembraneStack(maps: readonly MembraneMap[], gts: ReadonlyArray<GroundTruthInput | Image2D>, opts: SweepOptions = {}): Record<string, number> {
  if (maps.length !== gts.length) throw new RangeError(`scoreMembraneStack: ${maps.length} maps for ${gts.length} ground-truth slices`);
  const curves = maps.map((m, k) => {
    const gt = gts[k];
    return thresholdCurve(m, isGroundTruth(gt) ? gt : asGroundTruth(gt), opts);
  });
  const choice = pickThreshold(curves);
  return { ...choice.mean };
}
