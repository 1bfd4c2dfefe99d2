// `emseg train`: trains the membrane U-Net on the user's own ground truth, with validation V_rand after each
// evaluation interval, checkpoints and resume, then exports the best model to ONNX.
import os from 'node:os';
import { join } from 'node:path';
import type { Command } from '../command';
import { labelledData, num, str, trainingPixelSize, trainingSectionNm, weightingOption } from '../options';
import { createProgressBar } from '../progress';
import { resizeLabelled, toTrainingSlices, toValidationSlices, type LabelledSlice } from '../../engine/datasets';
import { train } from '../../engine/train';
import { exportModelFolder } from '../../engine/export';
import { loadModel } from '../../engine/model-store';
import { scoreMembraneStack, asGroundTruth } from '../../../ml/metrics';
import { DEFAULT_AUGMENT } from '../../../ml/train/augment';
import type { UNetConfig } from '../../../ml/models';
import { inferenceScale } from '../../../ml/infer/resample';
import { contextChannels, widenInputKernel } from '../../../ml/infer/z-context';

/**
 * An --init model's weights for a run with z-context k: unchanged at the model's own context; with more, the first
 * layer's kernel (the first weight, 3×3 × channels × width) widened with zero weights for the new slices around its own.
 */
function widenInit(weights: Float32Array[], cfg: UNetConfig, k: number, dir: string): Float32Array[] {
  const own = cfg.zContext ?? 0;
  if (k === own) return weights;
  if (k < own) throw Object.assign(new Error(`${dir}: the model reads ${own} slice(s) on each side; --z-context ${k} cannot drop them (train from scratch instead)`), { userFacing: true });
  return [widenInputKernel(weights[0], 9, cfg.inChannels, contextChannels(k), k - own), ...weights.slice(1)];
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'Train the membrane model on your ground truth',
  usage: 'emseg train --images <stack> --labels <stack> --label-membrane-value <0|255> --val-slices 20-29 --out <dir> [options]',
  help: `
Trains a U-Net that maps raw slices to membrane probability. Random 2D crops with flips, 90° rotations, intensity
jitter and elastic deformation; class-balanced binary cross-entropy; Adam with warm-up and cosine decay. Every
--eval-every steps the model predicts the validation slices and is scored with V_rand / V_info (best threshold); the
best model is kept in <dir> (model.json, weights.bin, model.onnx). Training uses one worker thread per core.

Interrupted runs resume: run the same command again and training continues from <dir>/checkpoint.

Options:
  --images <stack>               raw slices (any stack emseg reads)
  --labels <stack>               ground truth, same size and slice count
  --label-membrane-value <0|255> label value that marks membrane (ISBI: 0)
  --val-slices <range>           slices held out for validation, e.g. 20-29
  --train-slices <range>         slices to train on (default: all the others)
  --out <dir>                    model folder to write
  --steps <n>                    optimisation steps (default 3000)
  --batch <n>                    crops per step (default 4)
  --crop <px>                    crop edge (default 256; a multiple of 2^depth)
  --lr <x>                       peak learning rate (default 0.001)
  --base-channels <n>            U-Net width (default 16)
  --depth <n>                    U-Net poolings (default 4)
  --elastic <px>                 elastic deformation amplitude (default 3; 0 = off)
  --weighting <balanced|plain|boundary>
                                 loss weighting (default balanced; boundary adds the U-Net weight on membranes
                                 between close cells, w0 10, σ 5 px)
  --malis <λ>                    add the constrained MALIS loss (Turaga 2009, Funke 2018) with weight λ: the pixels
                                 where the map would merge two cells or split one are weighed by the pixel pairs they
                                 decide (default 0 = off; 1 weighs each of its passes like the per-pixel loss)
  --pixel-size <nm>              the training images' in-plane pixel size, where their metadata lacks it (ISBI 2012:
                                 4); stored with the model, so that emseg segment resizes other stacks to it. With
                                 --init, images more than 10 % off the model's pixel size are resized to it (labels
                                 too), so the fine-tuned model stays at its pixel size
  --no-rescale                   with --init: train at the images' own pixel size instead
  --eval-every <n>               steps between validations and checkpoints (default 200)
  --average <decay>              keep a moving average of the weights (Polyak averaging; e.g. 0.99 averages over about
                                 the last 100 steps) and save it as the model; validation also scores the current
                                 weights, for comparison (default 0 = off)
  --precise-bn <batches>         before each validation, recompute the batch-norm statistics for the weights being
                                 validated from this many training batches (the mean of their moments) instead of the
                                 running averages, and save the model with them (default 0 = off)
  --workers <n>                  training threads (default: number of cores)
  --z-context <k>                read k slices on each side of the one predicted, as extra input channels (default
                                 0: the slice alone). Neighbours come from the same set (training or validation
                                 slices), mirrored at its ends; emseg segment reads them from the stack. With --init
                                 of a model with less context, its first layer is widened with zero weights for the new
                                 slices, so training starts from the model's own predictions
  --section-nm <nm>              with --z-context: the images' section thickness (ISBI 2012: 50), where their metadata
                                 lacks it; stored with the model
  --init <model dir>             fine-tune from an existing membrane model
  --seed <n>                     random seed (default 1)
`,
  options: {
    images: { type: 'string' }, labels: { type: 'string' }, 'label-membrane-value': { type: 'string' }, 'val-slices': { type: 'string' },
    'train-slices': { type: 'string' }, out: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, crop: { type: 'string' },
    lr: { type: 'string' }, 'base-channels': { type: 'string' }, depth: { type: 'string' }, elastic: { type: 'string' }, weighting: { type: 'string' }, 'precise-bn': { type: 'string' },
    malis: { type: 'string' }, 'eval-every': { type: 'string' }, workers: { type: 'string' }, init: { type: 'string' }, seed: { type: 'string' },
    'pixel-size': { type: 'string' }, 'no-rescale': { type: 'boolean' }, average: { type: 'string' },
    'z-context': { type: 'string' }, 'section-nm': { type: 'string' },
  },
  async run(ctx) {
    const out = str(ctx, 'out', true);
    const labelled = await labelledData(ctx);
    const { membraneValue: mv, record: data } = labelled;
    const init = str(ctx, 'init');
    const initModel = init ? await loadModel(init) : undefined;
    const initNm = initModel?.record.pixelSizeNm;
    const imagesNm = await trainingPixelSize(ctx, initNm);
    // Fine-tuning keeps the model at its own pixel size: slices of another one are resized to it, as segment does.
    const f = ctx.values['no-rescale'] === true ? 1 : inferenceScale(imagesNm, initNm);
    const resize = (s: LabelledSlice) => (f === 1 ? s : resizeLabelled(s, f, f, mv));
    const trainSet = labelled.trainSet.map(resize);
    const valSet = labelled.valSet.map(resize);
    const pixelSizeNm = f === 1 ? imagesNm : initNm;
    if (f !== 1 && !ctx.quiet) ctx.err(`notice: pixel size: images ${imagesNm} nm, --init model ${initNm} nm; slices and labels are resized ${Number(f.toFixed(3))}× for training, so the model stays a ${initNm} nm one (--no-rescale trains at ${imagesNm} nm)`);
    const weighting = weightingOption(ctx, 'balanced');
    const initCfg = initModel?.record.config.kind === 'unet' ? initModel.record.config : undefined;
    if (initModel && !initCfg) throw Object.assign(new Error(`${init}: not a membrane model (its config is a ${initModel.record.config.kind})`), { userFacing: true });
    const zContext = num(ctx, 'z-context', initCfg?.zContext ?? 0, { min: 0, max: 4, int: true });
    const depth = initCfg?.depth ?? num(ctx, 'depth', 4, { min: 1, max: 6, int: true });
    // The --init model's architecture (or the options'), with the input for this run's z-context.
    const { zContext: _own, ...base }: UNetConfig = initCfg ?? { kind: 'unet', baseChannels: num(ctx, 'base-channels', 16, { min: 1, int: true }), depth, inChannels: 1 };
    const config: UNetConfig = { ...base, inChannels: contextChannels(zContext), ...(zContext ? { zContext } : {}) };
    const sectionNm = zContext ? ((await trainingSectionNm(ctx)) ?? initModel?.record.sectionNm) : undefined;
    const initWeights = initModel && initCfg ? widenInit(initModel.weights, initCfg, zContext, init as string) : undefined;
    const crop = num(ctx, 'crop', 256, { min: 2 ** depth, int: true });
    const steps = num(ctx, 'steps', 3000, { min: 1, int: true });
    const bar = createProgressBar('train', steps, { quiet: ctx.quiet });
    const gts = valSet.map((s) => asGroundTruth(s.label, mv));
    const result = await train({
      role: 'membrane', config, train: toTrainingSlices(trainSet, mv, zContext), val: toValidationSlices(valSet, zContext), out, steps,
      batchSize: num(ctx, 'batch', 4, { min: 1, int: true }), cropPx: crop, lr: num(ctx, 'lr', 1e-3, { min: 0 }),
      workers: num(ctx, 'workers', os.availableParallelism(), { min: 1, int: true }), seed: num(ctx, 'seed', 1, { int: true }),
      augment: { ...DEFAULT_AUGMENT, elasticPx: num(ctx, 'elastic', 3, { min: 0 }), ...(zContext ? { intensityChannel: 'all', zFlip: true } : {}) }, weighting, malis: num(ctx, 'malis', 0, { min: 0 }),
      evalEvery: num(ctx, 'eval-every', 200, { min: 1, int: true }), average: num(ctx, 'average', 0, { min: 0, max: 0.99999 }),
      preciseBn: num(ctx, 'precise-bn', 0, { min: 0, int: true }),
      score: async (maps) => scoreMembraneStack(maps, gts),
      init: initWeights,
      record: { ...(pixelSizeNm ? { pixelSizeNm } : {}), ...(sectionNm ? { sectionNm } : {}), training: { ...data, ...(init ? { initFrom: init } : {}) } },
      log: (line) => (ctx.quiet ? undefined : ctx.err(line)),
      onProgress: (p) => bar.update(p.step, p.steps, `loss ${p.loss.toFixed(4)}${p.lastVal ? ` val vrand ${p.lastVal.vrand.toFixed(4)}` : ''}`),
    });
    bar.done();
    const { bytes } = await exportModelFolder(out);
    ctx.out(`best validation V_rand ${result.best?.vrand.toFixed(4) ?? 'n/a'} at step ${result.best?.step ?? 'n/a'}; model in ${out} (${join(out, 'model.onnx')}, ${(bytes / 1e6).toFixed(1)} MB)`);
    return 0;
  },
};
