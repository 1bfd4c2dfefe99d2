// ISBI 2012 segmentation metrics (V_rand, V_info with split/merge parts, adapted Rand error, pixel error) for labels
// and membrane maps, per slice and per stack. Pure compute: typed arrays in, numbers out.
export { asGroundTruth, groundTruthSegments, type GroundTruth, type GroundTruthInput, type GroundTruthSegments } from './ground-truth';
export { absorbBoundaries } from './absorb';
export { scoreLabels, contingencyScores, meanScores, SCORE_KEYS, type SegmentationScores, type ContingencyScores } from './scores';
export {
  bestThreshold,
  thresholdCurve,
  pickThreshold,
  DEFAULT_THRESHOLDS,
  type SweepOptions,
  type ThresholdScores,
  type ThresholdChoice,
} from './threshold';
export { scoreStack, scoreMembraneStack, type SlicePair, type StackScores } from './stack';
export { pairedBootstrap, signedDifference, type PairedDifference, type BootstrapOptions } from './compare';
