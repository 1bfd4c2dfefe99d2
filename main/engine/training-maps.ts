// The maps a refiner trains on and the watershed is tuned on: maps of the training slices that are as wrong as the
// maps of unseen slices. A membrane model usually predicts its own training slices far better than unseen ones, so
// instead of k-fold cross-prediction (k extra membrane trainings) we take the membrane model's own earlier snapshot
// whose V_rand on the *training* slices is closest to the final model's V_rand on the *validation* slices: maps that are
// wrong about as often, and in the same ways, as the maps the refiner will meet. With --own-maps, where the final
// model's own training maps score no better than its validation maps (ISBI's slices 0–19 score lower than 20–29), they
// are used themselves. Both scores are recorded in the model card.
import { readdir, access } from 'node:fs/promises';
import { join } from 'node:path';
import { normalizeSlice } from '../../ml/train/normalize';
import { DEFAULT_TILE_PX, predictTiled } from '../../ml/infer/tiled';
import { refineRounds } from '../../ml/infer/refine';
import { scoreMembraneStack, type GroundTruth } from '../../ml/metrics';
import type { MembraneMap } from '../../ml/types';
import { loadInferenceModel, type InferenceModel } from './models';
import { contextPlanes, type LabelledSlice } from './datasets';
import { planar } from '../../ml/infer/z-context';

export interface TrainingMapsOptions {
  /** The final membrane model's folder (a training output folder with snapshots/ is best). */
  membrane: string;
  trainSet: LabelledSlice[];
  valSet: LabelledSlice[];
  /**
   * Take the final model's own training maps when they score no better than its validation maps (see
   * orderTrainingMaps); otherwise, and by default, the snapshot closest to the validation score.
   */
  ownMaps?: boolean;
  log: (line: string) => void;
}

/** The membrane model's maps of a set of slices (a z-context model reads its neighbours from the same set). */
export async function predictAll(model: InferenceModel, slices: LabelledSlice[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const inputs = contextPlanes(slices, model.zContext);
  for (const [j, s] of slices.entries()) {
    out.push(await predictTiled(model.session, planar(inputs[j]), inputs[j].length, s.raw.height, s.raw.width, { tilePx: DEFAULT_TILE_PX, marginPx: model.marginPx, multiple: model.multiple }));
  }
  return out;
}

/**
 * Every slice's maps after 0..rounds refinement rounds ([round-0 map, round 1, …]); only round 0 without a refiner.
 * `raw` gives the normalised raw slices a two-channel refiner needs (computed here when absent).
 */
export async function refineAll(refiner: InferenceModel | null, slices: LabelledSlice[], maps0: Float32Array[], rounds: number, raw?: Float32Array[]): Promise<Float32Array[][]> {
  const out: Float32Array[][] = [];
  for (let k = 0; k < slices.length; k++) {
    const s = slices[k];
    if (!refiner || rounds === 0) {
      out.push([maps0[k]]);
      continue;
    }
    const r = refiner.inChannels > 1 ? (raw?.[k] ?? normalizeSlice(s.raw)) : null;
    out.push([maps0[k], ...(await refineRounds(refiner.session, refiner.inChannels, maps0[k], r, s.raw.height, s.raw.width, rounds, { tilePx: DEFAULT_TILE_PX, marginPx: refiner.marginPx, multiple: 1 }))]);
  }
  return out;
}

export const asMaps = (slices: LabelledSlice[], data: Float32Array[]): MembraneMap[] => data.map((d, i) => ({ width: slices[i].raw.width, height: slices[i].raw.height, data: d }));

export interface TrainingMapSet {
  maps: Float32Array[];
  /** The model folder that predicted them. */
  source: string;
  /** Their V_rand on the training slices (best threshold). */
  trainVrand: number;
}

export interface TrainingMapsChoice extends TrainingMapSet {
  /** The `sources` sets closest to the target, closest first; the first is the one above. */
  sets: TrainingMapSet[];
  targetVrand: number;
  finalTrainVrand: number;
  /** The final model's validation maps. */
  valMaps: Float32Array[];
}

/**
 * The `sources` candidate sets to train or tune on, best first; `candidates[0]` is the final model's own. Closest
 * training V_rand to `targetVrand` first (stable: on equal distance the final model, then the earlier snapshot). With
 * `preferOwn`, the final model's own maps come first when they are already no better than its validation maps: then no
 * stand-in is needed, and a snapshot's maps, however close their score, are another model's, calibrated differently,
 * so thresholds tuned on them can miss the final model's.
 */
export function orderTrainingMaps(candidates: TrainingMapSet[], targetVrand: number, sources = 1, preferOwn = false): TrainingMapSet[] {
  const own = candidates[0];
  const gap = (c: TrainingMapSet) => (preferOwn && c === own && own.trainVrand <= targetVrand ? -1 : Math.abs(c.trainVrand - targetVrand));
  return [...candidates].sort((a, b) => gap(a) - gap(b)).slice(0, Math.max(1, sources));
}

const sameMaps = (a: Float32Array[], b: Float32Array[]): boolean => a.every((m, k) => m.length === b[k].length && m.every((v, i) => v === b[k][i]));

/**
 * The membrane snapshot whose training-slice V_rand best matches the final model's validation V_rand, and with
 * `sources` > 1 the next closest ones as well (a snapshot with the final model's own weights counts once): training
 * maps from several models are wrong in more different ways than one model's 20 maps.
 */
export async function chooseTrainingMaps(opts: TrainingMapsOptions, trainGts: GroundTruth[], valGts: GroundTruth[], sources = 1): Promise<TrainingMapsChoice> {
  const final = await loadInferenceModel(opts.membrane);
  const valMaps = await predictAll(final, opts.valSet);
  const targetVrand = scoreMembraneStack(asMaps(opts.valSet, valMaps), valGts).vrand;
  const finalTrain = await predictAll(final, opts.trainSet);
  const finalTrainVrand = scoreMembraneStack(asMaps(opts.trainSet, finalTrain), trainGts).vrand;
  await final.session.release();
  opts.log(`membrane model: V_rand ${targetVrand.toFixed(4)} on validation, ${finalTrainVrand.toFixed(4)} on its own training slices`);
  const candidates: TrainingMapSet[] = [{ maps: finalTrain, source: opts.membrane, trainVrand: finalTrainVrand }];
  const snapDir = join(opts.membrane, 'snapshots');
  let snaps: string[] = [];
  try {
    await access(snapDir);
    snaps = (await readdir(snapDir)).filter((d) => d.startsWith('step-')).sort();
  } catch {
    opts.log(`no snapshots in ${opts.membrane}: training maps come from the final model`);
  }
  for (const snap of snaps) {
    const m = await loadInferenceModel(join(snapDir, snap));
    const maps = await predictAll(m, opts.trainSet);
    await m.session.release();
    const v = scoreMembraneStack(asMaps(opts.trainSet, maps), trainGts).vrand;
    const duplicate = sameMaps(maps, finalTrain);
    opts.log(`snapshot ${snap}: training-slice V_rand ${v.toFixed(4)} (target ${targetVrand.toFixed(4)})${duplicate ? ', the final model itself' : ''}`);
    if (!duplicate) candidates.push({ maps, source: join(snapDir, snap), trainVrand: v });
  }
  const preferOwn = opts.ownMaps === true && finalTrainVrand <= targetVrand;
  const sets = orderTrainingMaps(candidates, targetVrand, sources, preferOwn);
  if (preferOwn) opts.log(`the final model's own training maps are no better than its validation maps: they are used (--own-maps)`);
  if (sets.length < sources) opts.log(`only ${sets.length} set(s) of training maps available (asked for ${sources})`);
  return { ...sets[0], sets, targetVrand, finalTrainVrand, valMaps };
}
