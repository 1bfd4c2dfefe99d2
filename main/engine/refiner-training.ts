// Training the refinement model (Wu 2015) so that it sees, in training, maps like those it will refine:
//
// 1. Training maps: as wrong as the maps it will refine (training-maps.ts).
// 2. Rounds. Training runs in stages: stage 0 on round-0 maps; after each stage the current refiner produces the next
//    round's maps of the training slices, which join the training pool — round r's output is round r+1's input.
// 3. The watershed's thresholds are chosen for every round on the training maps (segmentation-tuning.ts) and stored
//    in model.json.
// 4. The number of rounds is chosen on the validation slices: the V_rand of each round's watershed labels at its tuned
//    thresholds, what `emseg segment` gives a user (best kept; 0 if refinement does not help), stored in model.json.
import { join } from 'node:path';
import type { ModelConfig, RefinerConfig } from '../../ml/models';
import type { TrainingSlice } from '../../ml/train/augment';
import type { LossWeighting } from '../../ml/train/trainer';
import { DEFAULT_AUGMENT } from '../../ml/train/augment';
import { normalizeSlice, membraneTarget } from '../../ml/train/normalize';
import { scoreMembraneStack, asGroundTruth } from '../../ml/metrics';
import { loadInferenceModel, modelLabel } from './models';
import { interleave, type LabelledSlice, type TrainingDataRecord } from './datasets';
import { lastAverage, train, type ValidationSlice } from './train';
import { exportModelFolder } from './export';
import { loadModel, loadModelRecord, saveModel, type ModelRecord } from './model-store';
import { chooseRounds, formatRoundScores, scoreRounds, tuneOnMaps } from './segmentation-tuning';
import type { TunedSegmentation } from '../../ml/segmentation/tune';
import { chooseTrainingMaps, refineAll } from './training-maps';

export interface RefinerTrainOptions {
  membrane: string;
  trainSet: LabelledSlice[];
  valSet: LabelledSlice[];
  membraneValue: number;
  out: string;
  useRaw: boolean;
  config: RefinerConfig;
  stages: number;
  stepsPerStage: number;
  maxRounds: number;
  batchSize: number;
  cropPx: number;
  lr: number;
  workers: number;
  seed: number;
  evalEvery: number;
  /** Loss weighting: 'plain' BCE, 'balanced' (both classes the same total weight, favouring membrane recall), or 'boundary'. */
  weighting?: LossWeighting;
  /** Weight of the constrained MALIS term added to the loss (ml/train/malis.ts); 0 or absent: none. */
  malis?: number;
  /** Decay of a moving average of the weights, saved as the model (see TrainOptions.average); 0 or absent: none. */
  average?: number;
  /** Train on the maps of this many membrane models (the final one and its snapshots closest to it; default 1). */
  mapSources?: number;
  /** See TrainingMapsOptions.ownMaps. */
  ownMaps?: boolean;
  /** The training data as the record and model card describe it (images, labels, slices). */
  data?: TrainingDataRecord;
  /** Start from an existing refiner's weights (same config) instead of a fresh initialisation. */
  init?: { weights: Float32Array[]; from: string };
  log: (line: string) => void;
  onProgress?: (done: number, total: number, message?: string) => void;
}

export async function trainRefiner(opts: RefinerTrainOptions): Promise<{ rounds: number; perRound: Record<string, number>[] }> {
  const trainGts = opts.trainSet.map((s) => asGroundTruth(s.label, opts.membraneValue));
  const valGts = opts.valSet.map((s) => asGroundTruth(s.label, opts.membraneValue));
  const choice = await chooseTrainingMaps(opts, trainGts, valGts, opts.mapSources ?? 1);
  for (const set of choice.sets) {
    opts.log(`training maps from ${set.source}: V_rand ${set.trainVrand.toFixed(4)} on training slices vs ${choice.targetVrand.toFixed(4)} of the final model on validation`);
  }
  // Several sets of maps are several copies of the training slices, each with its own maps.
  const slices = choice.sets.flatMap(() => opts.trainSet);
  const rawTrain = opts.trainSet.map((s) => normalizeSlice(s.raw));
  const rawPool = choice.sets.flatMap(() => rawTrain);
  const targets = opts.trainSet.map((s) => membraneTarget(s.label, opts.membraneValue));
  const toSlice = (map: Float32Array, j: number): TrainingSlice => {
    const k = j % opts.trainSet.length;
    const x = interleave(map, opts.useRaw ? rawTrain[k] : null);
    return { width: opts.trainSet[k].raw.width, height: opts.trainSet[k].raw.height, channels: x.channels, raw: x.data, target: targets[k] };
  };
  let current = choice.sets.flatMap((set) => set.maps);
  const pool: TrainingSlice[] = current.map(toSlice);

  // Validation input: the final membrane model's maps of the validation slices (what the refiner will refine).
  const valMaps0 = choice.valMaps;
  const rawVal = opts.valSet.map((s) => normalizeSlice(s.raw));
  const val: ValidationSlice[] = opts.valSet.map((s, k) => {
    const x = interleave(valMaps0[k], opts.useRaw ? rawVal[k] : null);
    return { index: s.index, width: s.raw.width, height: s.raw.height, channels: x.channels, input: x.data };
  });

  let weights: Float32Array[] | undefined = opts.init?.weights;
  // The last stage's checkpoint record (training details) becomes the refiner's.
  let record: ModelRecord | undefined;
  const totalSteps = opts.stages * opts.stepsPerStage;
  for (let stage = 0; stage < opts.stages; stage++) {
    const stageOut = join(opts.out, `stage-${stage}`);
    opts.log(`stage ${stage + 1}/${opts.stages}: ${pool.length} training maps (rounds 0..${stage})`);
    await train({
      role: 'refiner', config: opts.config as ModelConfig, train: pool, val, out: stageOut, steps: opts.stepsPerStage, batchSize: opts.batchSize,
      cropPx: opts.cropPx, lr: opts.lr, workers: opts.workers, seed: opts.seed + stage,
      augment: { ...DEFAULT_AUGMENT, intensity: opts.useRaw, intensityChannel: 1, elasticPx: 0 }, weighting: opts.weighting ?? 'plain',
      malis: opts.malis, average: opts.average, evalEvery: opts.evalEvery, init: weights,
      score: async (maps) => scoreMembraneStack(maps, valGts),
      log: opts.log,
      onProgress: (p) => opts.onProgress?.(stage * opts.stepsPerStage + p.step, totalSteps, `stage ${stage + 1} loss ${p.loss.toFixed(4)}`),
    });
    // Keep the last weights of the stage (the refiner must handle every round, not only round 1): with --average, the
    // average at the last step, which the checkpoint keeps beside the current weights it resumes from.
    const checkpoint = await loadModel(join(stageOut, 'checkpoint'));
    weights = opts.average ? await lastAverage(join(stageOut, 'checkpoint'), checkpoint.weights) : checkpoint.weights;
    record = checkpoint.record;
    if (stage + 1 < opts.stages) {
      await saveModel(join(opts.out, 'work'), { ...record }, weights);
      const refiner = await loadInferenceModel(join(opts.out, 'work'));
      const next = (await refineAll(refiner, slices, current, 1, rawPool)).map((m) => m[1]);
      await refiner.session.release();
      current = next;
      pool.push(...next.map(toSlice));
    }
  }

  // Choose the number of rounds on validation.
  if (!record || !weights) throw new Error('trainRefiner: no training stage ran');
  await saveModel(opts.out, { ...record, role: 'refiner' }, weights);
  const refiner = await loadInferenceModel(opts.out);
  let segmentation: TunedSegmentation;
  let perRound: Record<string, number>[];
  try {
    const valRounds = await refineAll(refiner, opts.valSet, valMaps0, opts.maxRounds, rawVal);
    // The watershed's thresholds for every round, chosen on the same training maps (segmentation-tuning.ts).
    segmentation = await tuneOnMaps({ ...opts, onProgress: undefined }, choice.maps, choice.source, refiner, trainGts);
    perRound = scoreRounds(opts.valSet, valGts, valRounds, segmentation);
  } finally {
    await refiner.session.release();
  }
  for (const r of perRound) opts.log(formatRoundScores(r));
  const best = chooseRounds(perRound);
  const { pixelSizeNm } = await loadModelRecord(opts.membrane);
  await exportModelFolder(opts.out, {
    // The refiner works on maps at the membrane model's pixel size.
    ...(pixelSizeNm ? { pixelSizeNm } : {}),
    rounds: best.rounds,
    segmentation,
    validation: best.validation,
    training: {
      ...opts.data, ...(record.training ?? {}), stages: opts.stages, stepsPerStage: opts.stepsPerStage, useRaw: opts.useRaw,
      ...(opts.init ? { initFrom: opts.init.from } : {}),
      membraneModel: modelLabel(opts.membrane), trainingMapsFrom: choice.sets.map((set) => modelLabel(set.source)).join(', '),
      trainingMapsVrand: choice.trainVrand,
      ...(choice.sets.length > 1 ? { trainingMapSets: choice.sets.length, trainingMapsVrands: choice.sets.map((set) => Number(set.trainVrand.toFixed(4))) } : {}),
      membraneValVrand: choice.targetVrand, membraneOwnTrainVrand: choice.finalTrainVrand,
    },
  });
  return { rounds: best.rounds, perRound };
}
