// The model half of `emseg segment`: with no --membrane map given, run the membrane CNN and its refinement rounds on
// the stack and write membrane.tif, membrane-round-<r>.tif (r = 0…N) and labels.tif (and uncertainty.tif with
// --ensemble K on a binarized model), and with --project every round's map and the labels into that project too.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, type CommandContext } from '../command';
import { createProgressBar } from '../progress';
import { num, str } from '../options';
import { DEFAULT_TILE_PX } from '../../../ml/infer/tiled';
import { parseSliceRange } from '../../engine/slices';
import { segmentStack } from '../../engine/segment-stack';
import { SAMPLE_DATA } from '../../engine/models';
import type { Project, StoredResults } from '../../project/store';
import type { SegmentParams } from '../../../ml/segmentation';
import { pipelineResults, storedLine } from './segment-project';
import { pixelSizeFrom } from './segment';

async function hasModel(dir: string): Promise<boolean> {
  return access(join(dir, 'model.json')).then(() => true, () => false);
}

/**
 * --model names a membrane model folder, or a folder holding membrane/ and refiner/ (like sample-data/models, the
 * default). --refiner overrides the refiner; --refine-rounds 0 turns refinement off.
 */
export async function resolveModels(model: string | undefined, refiner: string | undefined): Promise<{ membrane: string; refiner: string | null }> {
  const base = model ?? join(SAMPLE_DATA, 'models');
  if (await hasModel(base)) return { membrane: base, refiner: refiner ?? null };
  if (await hasModel(join(base, 'membrane'))) {
    const ref = refiner ?? ((await hasModel(join(base, 'refiner'))) ? join(base, 'refiner') : null);
    return { membrane: join(base, 'membrane'), refiner: ref };
  }
  throw new UsageError(`${base}: no EMSeg model here (expected model.json, or membrane/model.json)`);
}

/** Runs the models; with a project (opened by openProjectFor), stores the results in it as they come. */
export async function segmentWithModels(ctx: CommandContext, stack: string, outDir: string, params: Partial<SegmentParams>, project: Project | null = null): Promise<number> {
  const models = await resolveModels(str(ctx, 'model'), str(ctx, 'refiner'));
  const roundsArg = ctx.values['refine-rounds'];
  const rounds = roundsArg === undefined ? undefined : num(ctx, 'refine-rounds', 0, { min: 0, max: 20, int: true });
  const slicesSpec = str(ctx, 'slices');
  const bar = createProgressBar('segment', 1, { quiet: ctx.quiet });
  let stored: Promise<StoredResults | null> = Promise.resolve(null);
  const result = await segmentStack({
    stack,
    out: outDir,
    slices: slicesSpec ? parseSliceRange(slicesSpec) : undefined,
    membraneModel: models.membrane,
    // With --refine-rounds 0 the refiner is not run, but its model.json still holds the round-0 thresholds.
    refiner: models.refiner,
    rounds,
    segment: params,
    tta: ctx.values.tta === true,
    ensemble: num(ctx, 'ensemble', 1, { min: 1, max: 64, int: true }),
    tilePx: num(ctx, 'tile', DEFAULT_TILE_PX, { min: 64, int: true }),
    writeRounds: ctx.values['no-round-maps'] !== true,
    ...pixelSizeFrom(ctx),
    results: project ? (slices) => (stored = project.storeResults(pipelineResults(slices))) : undefined,
    onProgress: (p) => bar.update(p.done, p.total, `${p.stage} slice ${p.slice ?? ''}`),
    onNotice: (m) => (ctx.quiet ? undefined : ctx.err(`notice: ${m}`)),
  });
  bar.done();
  ctx.out(`wrote ${result.files.join(', ')}: ${result.slices} slices, ${result.rounds} refinement round(s)`);
  const inProject = await stored;
  if (project && inProject) ctx.out(storedLine(project.folder, inProject));
  return 0;
}
