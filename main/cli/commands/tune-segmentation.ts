// `emseg tune-segmentation`: chooses the watershed's thresholds for a membrane model and its refiner on the training
// slices, round by round, and stores them in the refiner's model.json (or the membrane model's, with --no-refiner),
// where `emseg segment`, batch runs and the app's jobs find them.
import { join } from 'node:path';
import type { Command } from '../command';
import { labelledData, num, str } from '../options';
import { createProgressBar } from '../progress';
import { DEFAULT_MEMBRANE_MODEL, DEFAULT_REFINER_MODEL } from '../../engine/models';
import { loadModelRecord, saveModelRecord } from '../../engine/model-store';
import { chooseRounds, tuneSegmentationForModels } from '../../engine/segmentation-tuning';
import { writeModelCard } from '../../engine/model-card';

export const tuneSegmentationCommand: Command = {
  name: 'tune-segmentation',
  summary: 'Choose the watershed thresholds for a model\'s maps on your ground truth',
  usage: 'emseg tune-segmentation --images <stack> --labels <stack> --label-membrane-value <0|255> --val-slices 20-29 [--membrane <dir>] [--refiner <dir> | --no-refiner]',
  help: `
The watershed cuts a membrane map with two thresholds: seeds where P(membrane) is below the seed threshold, and
merging of neighbouring basins whose shared boundary has a mean P below the agglomeration threshold. The best pair
depends on the model and on the round: refined maps are more confident than the membrane model's. This command
predicts the training slices (never the validation slices) with maps as wrong as unseen slices get — the membrane
model's snapshot whose training V_rand matches its validation V_rand, as 'emseg train-refiner' picks — refines them
round by round, scores a grid of threshold pairs with V_rand on each round's maps, and stores the best pair of every
round in the refiner's model.json and model card. With a refiner it then refines the validation slices and stores
the number of rounds whose watershed labels score best there (V_rand). 'emseg train-refiner' does both itself at the
end of training.

Options:
  --images, --labels, --label-membrane-value, --val-slices, --train-slices   as for 'emseg train'
  --membrane <model dir>   membrane model (default: the shipped one; a training output folder with snapshots/ is best)
  --refiner <model dir>    refiner whose rounds are tuned and which stores the result (default: the shipped one)
  --no-refiner             tune round 0 only and store it in the membrane model
  --max-rounds <n>         rounds tuned (default: the refiner's stored rounds + 2)
  --own-maps               tune on the final membrane model's own maps of the training slices when they score
                           no better than its maps of the validation slices (default: its snapshot whose training
                           V_rand is closest to its validation V_rand, which assumes its own maps are too good)
`,
  options: {
    images: { type: 'string' }, labels: { type: 'string' }, 'label-membrane-value': { type: 'string' }, 'val-slices': { type: 'string' },
    'train-slices': { type: 'string' }, membrane: { type: 'string' }, refiner: { type: 'string' }, 'no-refiner': { type: 'boolean' }, 'max-rounds': { type: 'string' },
    'own-maps': { type: 'boolean' },
  },
  async run(ctx) {
    const { membraneValue: mv, trainSet, valSet } = await labelledData(ctx);
    const membrane = str(ctx, 'membrane') ?? DEFAULT_MEMBRANE_MODEL;
    const refiner = ctx.values['no-refiner'] === true ? null : (str(ctx, 'refiner') ?? DEFAULT_REFINER_MODEL);
    const target = refiner ?? membrane;
    const record = await loadModelRecord(target);
    const maxRounds = refiner ? num(ctx, 'max-rounds', (record.rounds ?? 1) + 2, { min: 0, int: true }) : 0;
    const bar = createProgressBar('tune-segmentation', maxRounds + 1, { quiet: ctx.quiet });
    const { segmentation: tuned, validation } = await tuneSegmentationForModels({
      membrane, refiner, trainSet, valSet,
      membraneValue: mv, maxRounds, ownMaps: ctx.values['own-maps'] === true,
      log: (line) => (ctx.quiet ? undefined : ctx.err(line)),
      onProgress: (d, t, m) => bar.update(d, t, m),
    });
    bar.done();
    // With a refiner the number of rounds is chosen again on validation, for the new thresholds.
    const chosen = validation ? chooseRounds(validation) : null;
    // Re-read model.json just before writing it: only these fields change.
    const current = await loadModelRecord(target);
    await saveModelRecord(target, {
      ...current,
      segmentation: tuned,
      ...(chosen ? { rounds: chosen.rounds, validation: chosen.validation } : {}),
    });
    await writeModelCard(target);
    for (const r of tuned.perRound) {
      const v = validation?.[r.round];
      const val = v?.labelsVrand === undefined ? '' : `; validation labels V_rand ${v.labelsVrand.toFixed(4)}, map V_rand ${v.vrand.toFixed(4)}`;
      ctx.out(`round ${r.round}: seed threshold ${r.seedThreshold}, agglomeration threshold ${r.agglomerationThreshold} (training V_rand ${r.vrand.toFixed(4)}${val})`);
    }
    if (chosen) ctx.out(`refinement rounds chosen on validation: ${chosen.rounds} (was ${current.rounds ?? 'unset'})`);
    ctx.out(`stored in ${join(target, 'model.json')}`);
    return 0;
  },
};
