// Tuning the watershed for a membrane model and its refiner on the training slices, round by round, so that
// `emseg segment` and the app's jobs cut each round's maps at thresholds chosen for them rather than at fixed defaults.
//
// The maps tuned on must be as wrong as the maps that will be segmented: the membrane model's own training slices are
// predicted too well, so the maps come from the same source as the refiner's training maps (the
// snapshot whose training-slice V_rand is closest to the final model's validation V_rand, training-maps.ts), then go through the refiner
// round after round. The validation slices are never looked at here, except to set that target V_rand.
import { formatSliceRange } from './slices';
import type { LabelledSlice } from './datasets';
import { asMaps, chooseTrainingMaps } from './training-maps';
import { loadInferenceModel, type InferenceModel } from './models';
import { normalizeSlice } from '../../ml/train/normalize';
import { refineRounds } from '../../ml/infer/refine';
import { asGroundTruth, type GroundTruth } from '../../ml/metrics';
import { DEFAULT_TUNING_GRID, tuneSegmentation, type TunedRound, type TunedSegmentation, type TuningGrid } from '../../ml/segmentation/tune';

export interface SegmentationTuningOptions {
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
  const perSlice: Float32Array[][] = [];
  for (let k = 0; k < opts.trainSet.length; k++) {
    const s = opts.trainSet[k];
    const raw = refiner && refiner.inChannels > 1 ? normalizeSlice(s.raw) : null;
    const refined = refiner && rounds > 0
      ? await refineRounds(refiner.session, refiner.inChannels, maps0[k], raw, s.raw.height, s.raw.width, rounds, { tilePx: 1024, marginPx: refiner.marginPx, multiple: 1 })
      : [];
    perSlice.push([maps0[k], ...refined]);
  }
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
    maps: refiner ? `${source}, then the refiner ${refiner.dir}` : source,
    perRound,
  };
}

/** Chooses the tuning maps (see the file comment) and tunes every round for this membrane model and refiner. */
export async function tuneSegmentationForModels(
  opts: SegmentationTuningOptions & { membrane: string; refiner: string | null; valSet: LabelledSlice[] },
): Promise<TunedSegmentation> {
  const trainGts = opts.trainSet.map((s) => asGroundTruth(s.label, opts.membraneValue));
  const valGts = opts.valSet.map((s) => asGroundTruth(s.label, opts.membraneValue));
  const choice = await chooseTrainingMaps(opts, trainGts, valGts);
  opts.log(`tuning maps from ${choice.source}: V_rand ${choice.trainVrand.toFixed(4)} (best threshold) on the training slices, target ${choice.targetVrand.toFixed(4)}`);
  const refiner = opts.refiner ? await loadInferenceModel(opts.refiner) : null;
  try {
    return await tuneOnMaps(opts, choice.maps, choice.source, refiner, trainGts);
  } finally {
    await refiner?.session.release();
  }
}
