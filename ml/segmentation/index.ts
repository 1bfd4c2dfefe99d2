// 2D segmentation of membrane maps, one slice at a time: connected components, distance transform, seeded watershed,
// mean-boundary agglomeration, and `segment` that chains them. Pure compute: typed arrays in, typed arrays out.
export {
  connectedComponents,
  thresholdSegment,
  relabelConsecutive,
  removeSmallSegments,
  maxLabel,
  type Components,
  type Connectivity,
  type ThresholdSegmentParams,
} from './components';
export { distanceTransform } from './distance';
export {
  watershed,
  watershedSeeds,
  floodFromSeeds,
  DEFAULT_WATERSHED_PARAMS,
  type WatershedParams,
  type SeedParams,
  type FloodParams,
} from './watershed';
export { agglomerate, regionGraph, type AgglomerateParams, type RegionGraph } from './agglomerate';
export { segment, DEFAULT_SEGMENT_PARAMS, type SegmentParams } from './segment';
// Tuning (tune.ts) scores with ml/metrics, which itself imports this index: import it from './tune' directly.
