// Option parsing helpers shared by the commands: numbers with ranges, required values, one-line errors.
import { UsageError, type CommandContext } from './command';
import { LOSS_WEIGHTINGS, type LossWeighting } from '../../ml/train/trainer';
import { formatSliceRange, parseSliceRange } from '../engine/slices';
import { loadLabelledSlices, type LabelledSlice, type TrainingDataRecord } from '../engine/datasets';
import { openStack } from '../io';

export function str(ctx: CommandContext, name: string, required: true): string;
export function str(ctx: CommandContext, name: string, required?: false): string | undefined;
export function str(ctx: CommandContext, name: string, required = false): string | undefined {
  const v = ctx.values[name];
  if (v === undefined) {
    if (required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  return String(v);
}

export function num(ctx: CommandContext, name: string, def: number, range: { min?: number; max?: number; int?: boolean } = {}): number {
  const v = ctx.values[name];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${String(v)}'`);
  if (range.int && !Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number, got ${n}`);
  if (range.min !== undefined && n < range.min) throw new UsageError(`--${name} must be at least ${range.min}, got ${n}`);
  if (range.max !== undefined && n > range.max) throw new UsageError(`--${name} must be at most ${range.max}, got ${n}`);
  return n;
}

export function membraneValue(ctx: CommandContext, name: string): 0 | 255 {
  const v = str(ctx, name, true);
  if (v !== '0' && v !== '255') throw new UsageError(`--${name} must be 0 or 255 (the label value that marks membrane), got '${v}'`);
  return Number(v) as 0 | 255;
}

/** --weighting: the training loss weighting, plain, balanced or boundary. */
export function weightingOption(ctx: CommandContext, def: LossWeighting): LossWeighting {
  const v = str(ctx, 'weighting') ?? def;
  if (!(LOSS_WEIGHTINGS as readonly string[]).includes(v)) throw new UsageError(`--weighting must be ${LOSS_WEIGHTINGS.join(', ')}, got '${v}'`);
  return v as LossWeighting;
}

/**
 * The labelled data of a training command: --images and --labels read in full, split into --val-slices and the
 * training slices (--train-slices, default all the others), and --label-membrane-value; `record` describes them.
 */
export async function labelledData(ctx: CommandContext): Promise<{ membraneValue: 0 | 255; trainSet: LabelledSlice[]; valSet: LabelledSlice[]; record: TrainingDataRecord }> {
  const mv = membraneValue(ctx, 'label-membrane-value');
  const val = parseSliceRange(str(ctx, 'val-slices', true));
  const images = str(ctx, 'images', true);
  const labels = str(ctx, 'labels', true);
  const { trainSet, valSet } = splitLabelled(ctx, await loadLabelledSlices(images, labels, 'all'), val);
  const record: TrainingDataRecord = {
    images, labels, trainSlices: formatSliceRange(trainSet.map((s) => s.index)), valSlices: formatSliceRange(val), labelMembraneValue: mv,
  };
  return { membraneValue: mv, trainSet, valSet, record };
}

/**
 * The training images' in-plane pixel size in nm: --pixel-size, else the stack's metadata, else that of the model
 * training starts from (`initNm`, --init), else unknown; the last two said in one line (unknown: `emseg segment` can
 * then not match other stacks to the model).
 */
export async function trainingPixelSize(ctx: CommandContext, initNm?: number): Promise<number | undefined> {
  const given = ctx.values['pixel-size'];
  if (given !== undefined) return num(ctx, 'pixel-size', 0, { min: 0.01 });
  const images = str(ctx, 'images', true);
  const stack = await openStack(images, { cacheBytes: 0 });
  const px = stack.info.pixelSizeNm;
  await stack.close();
  if (px) return (px.x + px.y) / 2;
  const say = (m: string) => (ctx.quiet ? undefined : ctx.err(`notice: ${images} does not say its pixel size; ${m}`));
  if (initNm) {
    say(`taken to be the --init model's ${initNm} nm (--pixel-size <nm> to say it)`);
    return initNm;
  }
  say('the model will not know it (--pixel-size <nm> records it; emseg segment then resizes stacks of other pixel sizes to it)');
  return undefined;
}

/** The training images' section thickness in nm: --section-nm, else the stack's metadata (z spacing), else unknown. */
export async function trainingSectionNm(ctx: CommandContext): Promise<number | undefined> {
  if (ctx.values['section-nm'] !== undefined) return num(ctx, 'section-nm', 0, { min: 0.01 });
  const stack = await openStack(str(ctx, 'images', true), { cacheBytes: 0 });
  const z = stack.info.pixelSizeNm?.z;
  await stack.close();
  return z;
}

/** The validation slices `val` of `all`, and the training slices: --train-slices, default all the others. */
export function splitLabelled(ctx: CommandContext, all: LabelledSlice[], val: number[]): { trainSet: LabelledSlice[]; valSet: LabelledSlice[] } {
  const trainSpec = str(ctx, 'train-slices');
  const trainIdx = trainSpec ? parseSliceRange(trainSpec, all.length) : all.map((s) => s.index).filter((i) => !val.includes(i));
  return { trainSet: all.filter((s) => trainIdx.includes(s.index)), valSet: all.filter((s) => val.includes(s.index)) };
}
