// Option parsing helpers shared by the commands: numbers with ranges, required values, one-line errors.
import { UsageError, type CommandContext } from './command';
import type { LossWeighting } from '../../ml/train/trainer';

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

/** --weighting: the training loss weighting, plain or balanced. */
export function weightingOption(ctx: CommandContext, def: LossWeighting): LossWeighting {
  const v = str(ctx, 'weighting') ?? def;
  if (v !== 'plain' && v !== 'balanced') throw new UsageError(`--weighting must be plain or balanced, got '${v}'`);
  return v;
}
