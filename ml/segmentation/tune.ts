// Choosing the watershed's two thresholds for a model's maps: a grid of seed threshold × agglomeration threshold,
// each point scored by the mean V_rand over slices with ground truth. Run on the training slices (never the slices
// that are reported), once per refinement round, since each round's map is calibrated differently: later rounds are
// more confident, so their best seeds sit lower. The chosen pairs are stored with the model (TunedSegmentation) and
// used by segment() by default.
import type { MembraneMap } from '../types';
import { groundTruthSegments, meanScores, scoreLabels, type GroundTruthInput, type SegmentationScores } from '../metrics';
import { DEFAULT_SEGMENT_PARAMS, type SegmentParams } from './segment';
import { watershed } from './watershed';
import { agglomerate } from './agglomerate';
import { removeSmallSegments } from './components';

export interface TuningGrid {
  seedThreshold: number[];
  /** 0 = no agglomeration. */
  agglomerationThreshold: number[];
}

export const DEFAULT_TUNING_GRID: Readonly<TuningGrid> = Object.freeze({
  seedThreshold: [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5],
  agglomerationThreshold: [0, 0.3, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85],
});

export interface TuningPoint {
  seedThreshold: number;
  agglomerationThreshold: number;
  vrand: number;
  vinfo: number;
  vrandSplit: number;
  vrandMerge: number;
}

export interface TuningResult {
  best: TuningPoint;
  points: TuningPoint[];
}

export interface TuningSlice {
  map: MembraneMap;
  gt: GroundTruthInput;
}

/** The thresholds chosen for one round's maps, with the training-slice scores they reached. */
export interface TunedRound {
  round: number;
  seedThreshold: number;
  agglomerationThreshold: number;
  vrand: number;
  vinfo: number;
}

/** Stored in a model's model.json: the thresholds for the maps after each number of refinement rounds. */
export interface TunedSegmentation {
  method: 'watershed';
  /** The slices the thresholds were chosen on, e.g. "training slices 0-19". */
  tunedOn: string;
  /** Where the tuning maps came from (the membrane model or snapshot, and the refiner). */
  maps: string;
  perRound: TunedRound[];
}

/**
 * Scores every grid point on every slice, one watershed per (slice, seed threshold) shared by all agglomeration
 * thresholds. The pipeline is segment()'s: watershed → agglomerate (if > 0) → remove segments below minSizePx.
 * The best point is the highest mean V_rand; ties go to the first in grid order.
 */
export function tuneSegmentation(slices: Iterable<TuningSlice>, grid: TuningGrid = DEFAULT_TUNING_GRID, base: Partial<SegmentParams> = {}): TuningResult {
  const params: SegmentParams = { ...DEFAULT_SEGMENT_PARAMS, ...base, method: 'watershed' };
  const nA = grid.agglomerationThreshold.length;
  if (grid.seedThreshold.length === 0 || nA === 0) throw new RangeError('tuneSegmentation: empty grid');
  const scores: SegmentationScores[][] = grid.seedThreshold.flatMap(() => grid.agglomerationThreshold.map(() => []));
  let count = 0;
  for (const s of slices) {
    count++;
    const gt = groundTruthSegments(s.gt);
    grid.seedThreshold.forEach((seedThreshold, a) => {
      const basins = watershed(s.map, { ...params, seedThreshold });
      grid.agglomerationThreshold.forEach((threshold, b) => {
        const labels = threshold > 0 ? agglomerate(basins, s.map, { threshold }) : { ...basins, data: basins.data.slice() };
        removeSmallSegments(labels.data, params.minSizePx);
        scores[a * nA + b].push(scoreLabels(labels, gt));
      });
    });
  }
  if (count === 0) throw new RangeError('tuneSegmentation: no slices');
  const points: TuningPoint[] = [];
  grid.seedThreshold.forEach((seedThreshold, a) => {
    grid.agglomerationThreshold.forEach((agglomerationThreshold, b) => {
      const m = meanScores(scores[a * nA + b]);
      points.push({ seedThreshold, agglomerationThreshold, vrand: m.vrand, vinfo: m.vinfo, vrandSplit: m.vrandSplit, vrandMerge: m.vrandMerge });
    });
  });
  const best = points.reduce((x, y) => (y.vrand > x.vrand ? y : x));
  return { best, points };
}

/** The stored thresholds for maps after `rounds` refinement rounds, or none when that round was not tuned. */
export function tunedParams(tuned: TunedSegmentation | undefined, rounds: number): Pick<SegmentParams, 'seedThreshold' | 'agglomerationThreshold'> | null {
  const r = tuned?.perRound.find((t) => t.round === rounds);
  return r ? { seedThreshold: r.seedThreshold, agglomerationThreshold: r.agglomerationThreshold } : null;
}
