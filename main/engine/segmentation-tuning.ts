// Tuning the watershed for a membrane model and its refiner on the training slices, round by round, so that
// `emseg segment` and the app's jobs cut each round's maps at thresholds chosen for them rather than at fixed defaults.
//
// The maps tuned on must be as wrong as the maps that will be segmented: the membrane model's own training slices are
// predicted too well, so the maps come from the same source as the refiner's training maps (the snapshot whose
// training-slice V_rand is closest to the final model's validation V_rand, training-maps.ts), then go through the
// refiner round after round. The thresholds never see the validation slices; those set that target V_rand and, once
// the thresholds are fixed, score every round's labels so that the number of rounds can be chosen (scoreRounds).
import { formatSliceRange } from './slices';
import type { LabelledSlice } from './datasets';
import { asMaps, chooseTrainingMaps, refineAll } from './training-maps';
import { loadInferenceModel, modelLabel, type InferenceModel } from './models';
import { asGroundTruth, meanScores, scoreLabels, scoreMembraneStack, type GroundTruth } from '../../ml/metrics';
import { segment } from '../../ml/segmentation/segment';
import { DEFAULT_TUNING_GRID, tunedParams, tuneSegmentation, type TunedRound, type TunedSegmentation, type TuningGrid } from '../../ml/segmentation/tune';

export interface SegmentationTuningOptions {
  /** See TrainingMapsOptions.ownMaps. */
  ownMaps?: boolean;
  trainSet: LabelledSlice[];
  membraneValue: number;
  /** Rounds 0..maxRounds are tuned (0 = the membrane model's maps only). */
  maxRounds: number;
  grid?: TuningGrid;
  log: (line: string) => void;
  onProgress?: (done: number, total: number, message?: string) => void;
}

/** Tunes rounds 0..maxRounds on given round-0 training maps (`source` says where they came from). */
export async function tuneOnMaps(
  opts: SegmentationTuningOptions,
  maps0: Float32Array[],
  source: string,
  refiner: InferenceModel | null,
  trainGts: GroundTruth[] = opts.trainSet.map((s) => asGroundTruth(s.label, opts.membraneValue)),
): Promise<TunedSegmentation> {
  const rounds = refiner ? opts.maxRounds : 0;
  const perSlice = await refineAll(refiner, opts.trainSet, maps0, rounds);
  const perRound: TunedRound[] = [];
  for (let r = 0; r <= rounds; r++) {
    opts.onProgress?.(r, rounds + 1, `tuning round ${r}`);
    const maps = asMaps(opts.trainSet, perSlice.map((m) => m[r]));
    const { best } = tuneSegmentation(maps.map((map, k) => ({ map, gt: trainGts[k] })), opts.grid ?? DEFAULT_TUNING_GRID);
    opts.log(`round ${r}: seeds P < ${best.seedThreshold}, agglomeration below ${best.agglomerationThreshold}: training V_rand ${best.vrand.toFixed(4)} V_info ${best.vinfo.toFixed(4)}`);
    perRound.push({ round: r, seedThreshold: best.seedThreshold, agglomerationThreshold: best.agglomerationThreshold, vrand: best.vrand, vinfo: best.vinfo });
  }
  opts.onProgress?.(rounds + 1, rounds + 1);
  return {
    method: 'watershed',
    tunedOn: `training slices ${formatSliceRange(opts.trainSet.map((s) => s.index))}`,
    maps: refiner ? `${modelLabel(source)}, then the refiner ${modelLabel(refiner.dir)}` : modelLabel(source),
    perRound,
  };
}

/**
 * Validation scores of rounds 0..n (`perSlice[k]` = slice k's maps after 0, 1, … rounds): each round's map at its best
 * threshold (vrand, vinfo, … as scoreMembraneStack gives them) and its watershed labels at the thresholds tuned for
 * that round on the training slices (labelsVrand, labelsVinfo, labelsVrandSplit, labelsVrandMerge).
 */
export function scoreRounds(valSet: LabelledSlice[], valGts: GroundTruth[], perSlice: Float32Array[][], segmentation: TunedSegmentation | undefined): Record<string, number>[] {
  const rows: Record<string, number>[] = [];
  for (let r = 0; r < perSlice[0].length; r++) {
    const maps = asMaps(valSet, perSlice.map((m) => m[r]));
    const row: Record<string, number> = { round: r, ...scoreMembraneStack(maps, valGts) };
    const params = tunedParams(segmentation, r);
    if (params) {
      const labels = meanScores(maps.map((map, k) => scoreLabels(segment(map, params), valGts[k])));
      Object.assign(row, { labelsVrand: labels.vrand, labelsVinfo: labels.vinfo, labelsVrandSplit: labels.vrandSplit, labelsVrandMerge: labels.vrandMerge });
    }
    rows.push(row);
  }
  return rows;
}

const ROUNDS_CHOSEN_BY = {
  labels: 'validation V_rand of the watershed labels at each round\'s tuned thresholds',
  map: 'validation V_rand of the map at its best threshold',
} as const;

/**
 * The number of rounds to store, with the validation record that explains it: the best validation V_rand of the
 * watershed labels at each round's tuned thresholds — what `emseg segment` gives a user — or of the best-threshold map
 * when some round has no tuned thresholds. Ties go to fewer rounds.
 */
export function chooseRounds(rows: Record<string, number>[]): { rounds: number; validation: { perRound: Record<string, number>[]; chosenRounds: number; roundsChosenBy: string } } {
  const by = rows.every((r) => r.labelsVrand !== undefined) ? 'labels' : 'map';
  const key = by === 'labels' ? 'labelsVrand' : 'vrand';
  let best = 0;
  for (let r = 1; r < rows.length; r++) if (rows[r][key] > rows[best][key]) best = r;
  const rounds = rows[best].round;
  return { rounds, validation: { perRound: rows, chosenRounds: rounds, roundsChosenBy: ROUNDS_CHOSEN_BY[by] } };
}

/** One line of a round's validation scores: the map's, and its labels' when scored. */
export function formatRoundScores(r: Record<string, number>): string {
  const labels = r.labelsVrand === undefined ? '' : `, labels V_rand ${r.labelsVrand.toFixed(4)} V_info ${r.labelsVinfo.toFixed(4)}`;
  return `round ${r.round}: map V_rand ${r.vrand.toFixed(4)} V_info ${r.vinfo.toFixed(4)}${labels}`;
}

/**
 * Chooses the tuning maps (see the file comment) and tunes every round for this membrane model and refiner. With a
 * refiner, the validation slices are then refined and scored round by round (scoreRounds), so that the number of
 * rounds can be chosen again for the new thresholds.
 */
export async function tuneSegmentationForModels(
  opts: SegmentationTuningOptions & { membrane: string; refiner: string | null; valSet: LabelledSlice[] },
): Promise<{ segmentation: TunedSegmentation; validation: Record<string, number>[] | null }> {
  const trainGts = opts.trainSet.map((s) => asGroundTruth(s.label, opts.membraneValue));
  const valGts = opts.valSet.map((s) => asGroundTruth(s.label, opts.membraneValue));
  const choice = await chooseTrainingMaps(opts, trainGts, valGts);
  opts.log(`tuning maps from ${choice.source}: V_rand ${choice.trainVrand.toFixed(4)} (best threshold) on the training slices, target ${choice.targetVrand.toFixed(4)}`);
  const refiner = opts.refiner ? await loadInferenceModel(opts.refiner) : null;
  try {
    const segmentation = await tuneOnMaps(opts, choice.maps, choice.source, refiner, trainGts);
    if (!refiner) return { segmentation, validation: null };
    const validation = scoreRounds(opts.valSet, valGts, await refineAll(refiner, opts.valSet, choice.valMaps, opts.maxRounds), segmentation);
    return { segmentation, validation };
  } finally {
    await refiner?.session.release();
  }
}
