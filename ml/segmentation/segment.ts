// One entry point from a membrane map to a segmentation: watershed + agglomeration (the default) or plain
// thresholding (the ISBI baseline), then removal of tiny segments and consecutive ids 1..n with 0 = boundary.
import type { Labels, MembraneMap } from '../types';
import { removeSmallSegments, thresholdSegment, type Connectivity } from './components';
import { DEFAULT_WATERSHED_PARAMS, watershed, type WatershedParams } from './watershed';
import { agglomerate } from './agglomerate';

export interface SegmentParams extends WatershedParams {
  method: 'watershed' | 'threshold';
  /** 'threshold' method: interior = map < threshold. */
  threshold: number;
  /** 'threshold' method: neighbourhood of the connected components. */
  connectivity: Connectivity;
  /** 'watershed' method: merge neighbours whose boundary has a mean P(membrane) below this; 0 turns merging off. */
  agglomerationThreshold: number;
  /** Segments with fewer pixels become boundary (0). */
  minSizePx: number;
}

/**
 * Defaults for maps that come without tuned thresholds (a map given by the user, a model never tuned). A trained model
 * stores its own, chosen per refinement round on its training slices (tune.ts; `emseg tune-segmentation`), and those
 * win: on the shipped models' maps they are far from these. The reasoning behind these: on a calibrated map membranes
 * sit near 1 and cytoplasm near 0, so seeds at P < 0.3 are safely inside cells, and a boundary whose mean P is below
 * 0.5 is more likely cytoplasm than membrane and is merged away. The threshold method cuts at 0.5, the decision
 * boundary of the classifier. 16 px (16×16 nm at ISBI's 4 nm/px) is far below any neurite profile.
 */
export const DEFAULT_SEGMENT_PARAMS: Readonly<SegmentParams> = Object.freeze({
  ...DEFAULT_WATERSHED_PARAMS,
  method: 'watershed',
  threshold: 0.5,
  connectivity: 4,
  agglomerationThreshold: 0.5,
  minSizePx: 16,
});

/** Segments one slice. The threshold method never agglomerates (it is the baseline the watershed has to beat). */
export function segment(map: MembraneMap, params: Partial<SegmentParams> = {}): Labels {
  const p = { ...DEFAULT_SEGMENT_PARAMS, ...params };
  if (p.method === 'threshold') {
    return thresholdSegment(map, { threshold: p.threshold, connectivity: p.connectivity, minSizePx: p.minSizePx });
  }
  if (p.method !== 'watershed') throw new RangeError(`segment: unknown method '${String(p.method)}'`);
  let labels = watershed(map, p);
  if (p.agglomerationThreshold > 0) labels = agglomerate(labels, map, { threshold: p.agglomerationThreshold });
  removeSmallSegments(labels.data, p.minSizePx);
  return labels;
}
