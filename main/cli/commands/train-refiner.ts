// `emseg train-refiner`: trains the refinement CNN (Wu 2015) on maps of a trained membrane model.
import os from 'node:os';
import type { Command } from '../command';
import { labelledData, num, str, weightingOption } from '../options';
import { createProgressBar } from '../progress';
import { trainRefiner } from '../../engine/refiner-training';
import { formatRoundScores } from '../../engine/segmentation-tuning';
import { DEFAULT_MEMBRANE_MODEL } from '../../engine/models';
import { loadModel } from '../../engine/model-store';
import type { RefinerConfig } from '../../../ml/models';
import { UsageError } from '../command';

export const trainRefinerCommand: Command = {
  name: 'train-refiner',
  summary: 'Train the refinement model (Wu 2015) on a membrane model\'s maps',
  usage: 'emseg train-refiner --images <stack> --labels <stack> --label-membrane-value <0|255> --val-slices 20-29 --out <dir> [--membrane <model>] [options]',
  help: `
Trains a blind-spot CNN that predicts each pixel's membrane label from the membrane map around it with the pixel itself
hidden (the dense form of Wu's centre-removed patches), optionally with the raw slice as a second channel.

Its training maps come from the membrane model's snapshot whose V_rand on the training slices is closest to the final
model's V_rand on the validation slices, so they are as wrong as the maps it will refine. Training runs in stages: after
each stage the refiner's own output on the training slices joins the pool, so it learns every round it will run. The
number of rounds is then chosen on the validation slices and stored with the model.

Options:
  --images, --labels, --label-membrane-value, --val-slices, --train-slices   as for 'emseg train'
  --membrane <model dir>   membrane model (default: the shipped one; a training output folder with snapshots/ is best)
  --out <dir>              refiner folder to write
  --no-raw                 map channel only (default: map + raw slice)
  --raw-path <blind|open>  how the raw slice is read: through the blind branches, its centre pixel hidden like the
                           map's (default), or by its own 3×3 convolutions that see the centre pixel (the map's stays
                           hidden)
  --raw-layers <n>         convolutions of the open raw path (default: --branch-layers)
  --stages <n>             training stages = rounds seen in training (default 2)
  --steps <n>              steps per stage (default 300)
  --max-rounds <n>         largest number of rounds considered on validation (default 4)
  --channels <n>           width (default 16)   --branch-layers <n>  reach (default 6)
  --map-sources <n>        train on the maps of n membrane models: the final one or the snapshot closest to it (as
                           above) and the next closest snapshots, each predicting every training slice (default 1)
  --own-maps               train and tune on the final membrane model's own maps of the training slices when they score
                           no better than its maps of the validation slices (default: its snapshot whose training
                           V_rand is closest to its validation V_rand, which assumes its own maps are too good)
  --init <refiner dir>     continue training an existing refiner (its architecture and channels; --channels,
                           --branch-layers and --no-raw must agree with it or be left out)
  --weighting <plain|balanced|boundary>
                           loss weighting (default plain; balanced weighs membrane pixels up to half the loss;
                           boundary adds the U-Net weight on membranes between close cells, w0 10, σ 5 px)
  --malis <λ>              add the constrained MALIS loss with weight λ (see emseg train --help; default 0 = off)
  --average <decay>        save a moving average of the weights as the model (see emseg train --help; default 0 = off)
  --batch <n> (default 8)  --crop <px> (default 128)  --lr <x> (default 0.001)  --workers <n>  --seed <n>
`,
  options: {
    images: { type: 'string' }, labels: { type: 'string' }, 'label-membrane-value': { type: 'string' }, 'val-slices': { type: 'string' },
    'train-slices': { type: 'string' }, membrane: { type: 'string' }, out: { type: 'string' }, 'no-raw': { type: 'boolean' }, stages: { type: 'string' },
    steps: { type: 'string' }, 'max-rounds': { type: 'string' }, channels: { type: 'string' }, 'branch-layers': { type: 'string' },
    batch: { type: 'string' }, crop: { type: 'string' }, lr: { type: 'string' }, workers: { type: 'string' }, seed: { type: 'string' }, 'eval-every': { type: 'string' }, weighting: { type: 'string' },
    'raw-path': { type: 'string' }, 'raw-layers': { type: 'string' }, init: { type: 'string' }, 'map-sources': { type: 'string' }, 'own-maps': { type: 'boolean' }, malis: { type: 'string' }, average: { type: 'string' },
  },
  async run(ctx) {
    const { membraneValue: mv, trainSet, valSet, record: data } = await labelledData(ctx);
    const initDir = str(ctx, 'init');
    const init = initDir ? await loadModel(initDir) : null;
    if (init && init.record.config.kind !== 'refiner') throw new UsageError(`--init ${initDir}: not a refiner (its model.json has kind '${init.record.config.kind}')`);
    const initConfig = init ? (init.record.config as RefinerConfig) : null;
    const useRaw = initConfig ? initConfig.inChannels === 2 : ctx.values['no-raw'] !== true;
    const rawPath = str(ctx, 'raw-path') ?? 'blind';
    if (rawPath !== 'blind' && rawPath !== 'open') throw new UsageError(`--raw-path ${rawPath}: expected blind or open`);
    if ((ctx.values['raw-path'] !== undefined || ctx.values['raw-layers'] !== undefined) && (initConfig || !useRaw)) {
      throw new UsageError(initConfig ? `--raw-path and --raw-layers disagree with --init ${initDir}, whose architecture is fixed` : '--raw-path and --raw-layers need the raw channel (leave out --no-raw)');
    }
    const branchLayers = num(ctx, 'branch-layers', 6, { min: 1, int: true });
    const config: RefinerConfig = initConfig ?? {
      kind: 'refiner', inChannels: useRaw ? 2 : 1, channels: num(ctx, 'channels', 16, { min: 1, int: true }), branchLayers, headLayers: 2,
      ...(useRaw && rawPath === 'open' ? { rawPath, rawLayers: num(ctx, 'raw-layers', branchLayers, { min: 1, int: true }) } : {}),
    };
    if (initConfig) {
      const clash = (
        [['channels', initConfig.channels], ['branch-layers', initConfig.branchLayers]] as const
      ).find(([name, v]) => ctx.values[name] !== undefined && num(ctx, name, v) !== v);
      if (clash) throw new UsageError(`--${clash[0]} ${String(ctx.values[clash[0]])} disagrees with --init ${initDir} (${clash[1]})`);
      if (ctx.values['no-raw'] === true && useRaw) throw new UsageError(`--no-raw disagrees with --init ${initDir}, which takes the raw slice as a second channel`);
    }
    const stages = num(ctx, 'stages', 2, { min: 1, int: true });
    const steps = num(ctx, 'steps', 300, { min: 1, int: true });
    const weighting = weightingOption(ctx, 'plain');
    const bar = createProgressBar('train-refiner', stages * steps, { quiet: ctx.quiet });
    const result = await trainRefiner({
      membrane: str(ctx, 'membrane') ?? DEFAULT_MEMBRANE_MODEL,
      trainSet,
      valSet,
      membraneValue: mv,
      out: str(ctx, 'out', true),
      useRaw,
      config, init: init ? { weights: init.weights, from: initDir! } : undefined,
      stages, stepsPerStage: steps, maxRounds: num(ctx, 'max-rounds', 4, { min: 1, int: true }),
      batchSize: num(ctx, 'batch', 8, { min: 1, int: true }), cropPx: num(ctx, 'crop', 128, { min: 16, int: true }), lr: num(ctx, 'lr', 1e-3, { min: 0 }),
      workers: num(ctx, 'workers', os.availableParallelism(), { min: 1, int: true }), seed: num(ctx, 'seed', 1, { int: true }),
      evalEvery: num(ctx, 'eval-every', 100, { min: 1, int: true }), weighting, malis: num(ctx, 'malis', 0, { min: 0 }),
      average: num(ctx, 'average', 0, { min: 0, max: 0.99999 }),
      mapSources: num(ctx, 'map-sources', 1, { min: 1, int: true }), ownMaps: ctx.values['own-maps'] === true, data,
      log: (line) => (ctx.quiet ? undefined : ctx.err(line)),
      onProgress: (d, t, m) => bar.update(d, t, m),
    });
    bar.done();
    for (const r of result.perRound) ctx.out(formatRoundScores(r));
    ctx.out(`rounds chosen on validation: ${result.rounds}`);
    return 0;
  },
};
