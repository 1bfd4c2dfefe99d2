// `emseg segment <stack> --out <dir>`: the main job. Without --membrane the models run (segment-model.ts); with it,
// the given membrane maps → labels (uint32, 0 = boundary) as <dir>/labels.tif, one slice at a time. With --project the
// results also go into that project (segment-project.ts).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openStack, writeTiffStack, type Stack } from '../../io';
import { formatSliceRange, parseSliceRange } from '../../engine/slices';
import type { Project, SliceResults, StoredResults } from '../../project/store';
import { maxLabel, segment, DEFAULT_SEGMENT_PARAMS, type SegmentParams } from '../../../ml/segmentation';
import type { Image2D, Labels, MembraneMap } from '../../../ml/types';
import { UsageError, type Command, type CommandContext } from '../command';
import { createProgressBar } from '../progress';
import { segmentWithModels } from './segment-model';
import { openProjectFor, storedLine } from './segment-project';

/** Reads a stack slice as a membrane map: float32 as P(membrane); 8- and 16-bit scaled from their full range to [0, 1]. */
export function toMembraneMap(img: Image2D, what: string): MembraneMap {
  const { width, height, data } = img;
  if (data instanceof Float32Array) return { width, height, data };
  if (data instanceof Uint32Array) throw new UsageError(`${what}: a uint32 stack holds labels, not a membrane map`);
  const scale = data instanceof Uint8Array ? 255 : 65535;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] / scale;
  return { width, height, data: out };
}

/**
 * Which slice of a second stack goes with each selected slice of the first: the same index when both stacks have the
 * same depth, or the k-th slice when the second stack holds just the selected slices (maps computed for 20-29 only).
 */
export function pairedSlices(selected: number[], depth: number, otherDepth: number, otherName: string): number[] {
  if (otherDepth === depth) return selected;
  if (otherDepth === selected.length) return selected.map((_, k) => k);
  throw new UsageError(`${otherName} has ${otherDepth} slices: expected ${depth} (the whole stack) or ${selected.length} (the selected slices)`);
}

export function selectedSlices(spec: unknown, depth: number): number[] {
  if (typeof spec === 'string') return parseSliceRange(spec, depth);
  return Array.from({ length: depth }, (_, z) => z);
}

/** A number option within [min, max], or undefined when absent. */
export function numberOption(ctx: CommandContext, name: string, min: number, max: number): number | undefined {
  const raw = ctx.values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || v < min || v > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got '${String(raw)}'`);
  }
  return v;
}

export interface MembraneSource {
  /** Slice indices of <stack> that will be segmented, in order. */
  slices: number[];
  width: number;
  height: number;
  pixelSizeNm?: Stack['info']['pixelSizeNm'];
  /** The map of the k-th selected slice. */
  read(k: number): Promise<MembraneMap>;
  close(): Promise<void>;
}

/**
 * The membrane maps of <stack>'s selected slices. With --membrane: read from that map stack (same depth as <stack>, or
 * one map per selected slice). (Without --membrane the command runs the models instead: see segment-model.ts.)
 */
export async function getMembraneMaps(stackPath: string, opts: { membrane?: string; slices?: string; notice: (m: string) => void }): Promise<MembraneSource> {
  if (opts.membrane === undefined) {
    throw new UsageError('getMembraneMaps needs a --membrane map stack');
  }
  const stack = await openStack(stackPath, { cacheBytes: 0, onNotice: opts.notice });
  await stack.close();
  const slices = selectedSlices(opts.slices, stack.info.depth);
  const maps = await openStack(opts.membrane, { cacheBytes: 0, onNotice: opts.notice });
  try {
    if (maps.info.width !== stack.info.width || maps.info.height !== stack.info.height) {
      throw new UsageError(`--membrane is ${maps.info.width}×${maps.info.height}, the stack ${stack.info.width}×${stack.info.height}`);
    }
    if (maps.info.pixelType === 'uint32') throw new UsageError('--membrane: a uint32 stack holds labels, not a membrane map');
    const mapIndex = pairedSlices(slices, stack.info.depth, maps.info.depth, '--membrane');
    return {
      slices,
      width: stack.info.width,
      height: stack.info.height,
      pixelSizeNm: stack.info.pixelSizeNm ?? maps.info.pixelSizeNm,
      read: async (k) => toMembraneMap(await maps.readSlice(mapIndex[k]), '--membrane'),
      close: () => maps.close(),
    };
  } catch (e) {
    await maps.close();
    throw e;
  }
}

/** The segmentation options a user gave (--method, thresholds, --min-size); shared by segment and batch. */
export function paramsFrom(ctx: CommandContext): Partial<SegmentParams> {
  const p: Partial<SegmentParams> = {};
  const method = ctx.values.method;
  if (method !== undefined) {
    if (method !== 'watershed' && method !== 'threshold') throw new UsageError(`--method must be watershed or threshold, got '${String(method)}'`);
    p.method = method;
  }
  const seedThreshold = numberOption(ctx, 'seed-threshold', 0, 1);
  if (seedThreshold !== undefined) p.seedThreshold = seedThreshold;
  const threshold = numberOption(ctx, 'threshold', 0, 1);
  if (threshold !== undefined) p.threshold = threshold;
  const agglomeration = numberOption(ctx, 'agglomeration-threshold', 0, 1);
  if (agglomeration !== undefined) p.agglomerationThreshold = agglomeration;
  const minSize = numberOption(ctx, 'min-size', 0, Number.MAX_SAFE_INTEGER);
  if (minSize !== undefined) p.minSizePx = Math.round(minSize);
  return p;
}

/** --pixel-size and --no-rescale: how the stack's pixel size is matched to the models'; shared by segment and batch. */
export function pixelSizeFrom(ctx: CommandContext): { pixelSizeNm?: number; noRescale?: true } {
  const p: { pixelSizeNm?: number; noRescale?: true } = {};
  const nm = numberOption(ctx, 'pixel-size', 0.01, 1e6);
  if (nm !== undefined) p.pixelSizeNm = nm;
  if (ctx.values['no-rescale'] === true) p.noRescale = true;
  return p;
}

/**
 * The labels just written to labels.tif with the maps they came from, as a project stores them: the given map stands
 * as the slice's one round (it is the map the labels were made from, and the one a split in the app should flood).
 */
async function* writtenResults(source: MembraneSource, labelsPath: string): AsyncGenerator<SliceResults> {
  const labels = await openStack(labelsPath, { cacheBytes: 0 });
  try {
    for (let k = 0; k < source.slices.length; k++) {
      const { data } = await labels.readSlice(k);
      if (!(data instanceof Uint32Array)) throw new Error(`${labelsPath}: slice ${k} is not uint32`);
      yield { z: source.slices[k], maps: [(await source.read(k)).data], labels: data };
    }
  } finally {
    await labels.close();
  }
}

/** --membrane: segments the given maps into <outDir>/labels.tif (and into the project, when there is one). */
async function segmentMaps(ctx: CommandContext, outDir: string, params: Partial<SegmentParams>, project: Project | null, notice: (m: string) => void): Promise<number> {
  const source = await getMembraneMaps(ctx.positionals[0], {
    membrane: typeof ctx.values.membrane === 'string' ? ctx.values.membrane : undefined,
    slices: typeof ctx.values.slices === 'string' ? ctx.values.slices : undefined,
    notice,
  });
  const full: SegmentParams = { ...DEFAULT_SEGMENT_PARAMS, ...params };
  const bar = createProgressBar('segment', source.slices.length, { quiet: ctx.quiet, unit: ' slices' });
  let segments = 0;
  async function* labelSlices(): AsyncGenerator<Labels> {
    for (let k = 0; k < source.slices.length; k++) {
      const labels = segment(await source.read(k), full);
      segments += maxLabel(labels.data);
      // The last update is left to done(): progress.ts would otherwise draw even sub-second runs.
      if (k + 1 < source.slices.length) bar.update(k + 1);
      yield labels;
    }
  }
  const path = join(outDir, 'labels.tif');
  let stored: StoredResults | null = null;
  try {
    await mkdir(outDir, { recursive: true }).catch((e: unknown) => {
      throw new UsageError(`cannot create ${outDir}: ${e instanceof Error ? e.message : String(e)}`);
    });
    await writeTiffStack(path, labelSlices(), {
      pixelSizeNm: source.pixelSizeNm,
      compression: 'deflate',
      description: `EMSeg labels (uint32, 0 = boundary); slices ${formatSliceRange(source.slices)} of ${ctx.positionals[0]}; params ${JSON.stringify(full)}`,
    });
    if (project) stored = await project.storeResults(writtenResults(source, path));
  } finally {
    await source.close();
  }
  bar.done();
  ctx.out(`wrote ${path}: ${source.slices.length} slices, ${segments} segments (${full.method})`);
  if (project && stored) ctx.out(storedLine(project.folder, stored));
  return 0;
}

export const segmentCommand: Command = {
  name: 'segment',
  summary: 'Segment a stack into neurons: membrane CNN, refinement rounds, watershed',
  usage: 'emseg segment <stack> --out <dir> [--model <dir>] [--refine-rounds N] [--membrane <map stack>] [--project <dir>] [options]',
  help: `
Segments an EM stack slice by slice. By default the shipped models run on <stack>: the membrane CNN gives the round-0
map, the refinement CNN (Wu 2015) refines it for the number of rounds stored with it, and the final map is segmented.
Writes into <dir>:
  membrane.tif              final membrane map (float32, 1 = membrane)
  membrane-round-<r>.tif    the map after each round r = 0…N (round 0 = the membrane model's output)
  labels.tif                uint32, one id per neuron profile, 0 = boundary, ids 1..n per slice

With --membrane, no model runs: the given maps (a stack of the same depth, or one map per --slices slice; float32
values are probabilities, 8- and 16-bit values are scaled from their full range to 0..1) are segmented into labels.tif.

Methods:
  watershed (default)  seeds where P < seed threshold, flooding in order of P with 1-px boundaries where basins meet,
                       then merging of neighbours whose shared boundary has a mean P below the agglomeration threshold
  threshold            connected components of P < threshold (the ISBI baseline)

Options:
  --model <dir>                     a membrane model folder, or a folder with membrane/ and refiner/
                                    (default: sample-data/models, trained on ISBI 2012 slices 0-19)
  --refiner <dir>                   refiner model folder (default: the one beside the membrane model)
  --refine-rounds <n>               refinement rounds (default: chosen on validation, stored with the refiner;
                                    0 = no refinement)
  --tta                             8-fold test-time augmentation (flips and rotations; 8× slower)
  --ensemble <K>                    binarized models (emseg compress --method binary): average K networks sampled
                                    from the real-valued weights and write their per-pixel variance to
                                    uncertainty.tif (default 1: the deterministic network)
  --tile <px>                       inference tile edge (default 1536: about 1 GB; any slice size works;
                                    smaller tiles use less memory and recompute more overlap)
  --no-round-maps                   do not write membrane-round-<r>.tif
  --pixel-size <nm>                 the stack's in-plane pixel size, where its metadata (ImageJ, OME, TIFF
                                    resolution) lacks it or is wrong. Slices whose pixel size differs by more than
                                    10 % from the one the membrane model was trained at (model.json pixelSizeNm; the
                                    shipped models: 4 nm) are resized to it for the models, and the maps back
  --no-rescale                      run the models at the stack's own pixel size whatever it is
  --membrane <stack>                segment these membrane maps instead of running the models
  --out <dir>                       output folder (created if missing)
  --project <dir>                   also store the results in this EMSeg project, which must be one of <stack>, as
                                    the app's jobs do: every round's membrane map of each slice (with --membrane:
                                    the given map), and the labels, taken as they are on a slice with no labels
                                    yet, otherwise kept as a proposal to accept or discard in the app. The project
                                    stays locked (the app cannot open it) until the command ends
  --method watershed|threshold      default ${DEFAULT_SEGMENT_PARAMS.method}
  --seed-threshold <p>              watershed seeds: P below this (default: the value stored with the model for the
                                    rounds run, chosen on its training slices, see 'emseg tune-segmentation'; else ${DEFAULT_SEGMENT_PARAMS.seedThreshold})
  --agglomeration-threshold <p>     merge while the mean boundary P is below this; 0 = no merging (default: stored with
                                    the model, as for --seed-threshold; else ${DEFAULT_SEGMENT_PARAMS.agglomerationThreshold})
  --threshold <p>                   threshold method: interior = P below this (default ${DEFAULT_SEGMENT_PARAMS.threshold})
  --min-size <px>                   segments smaller than this become boundary (default ${DEFAULT_SEGMENT_PARAMS.minSizePx})
  --slices <range>                  e.g. 20-29 or 0-9,15 (default: all)
`,
  options: {
    membrane: { type: 'string' },
    out: { type: 'string', short: 'o' },
    method: { type: 'string' },
    'seed-threshold': { type: 'string' },
    threshold: { type: 'string' },
    'agglomeration-threshold': { type: 'string' },
    'min-size': { type: 'string' },
    slices: { type: 'string' },
    model: { type: 'string' },
    refiner: { type: 'string' },
    'refine-rounds': { type: 'string' },
    tta: { type: 'boolean' },
    ensemble: { type: 'string' },
    tile: { type: 'string' },
    'no-round-maps': { type: 'boolean' },
    'pixel-size': { type: 'string' },
    'no-rescale': { type: 'boolean' },
    project: { type: 'string' },
  },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError(`expected one stack path, got ${ctx.positionals.length}`);
    const outDir = ctx.values.out;
    if (typeof outDir !== 'string' || outDir === '') throw new UsageError('--out <dir> is required');
    const projectDir = ctx.values.project;
    if (projectDir !== undefined && (typeof projectDir !== 'string' || projectDir === '')) throw new UsageError('--project needs a project folder');
    const params = paramsFrom(ctx);
    const notice = (m: string): void => {
      if (!ctx.quiet) ctx.err(`notice: ${m}`);
    };
    const project = projectDir === undefined ? null : await openProjectFor(projectDir, ctx.positionals[0], notice);
    try {
      if (ctx.values.membrane === undefined) return await segmentWithModels(ctx, ctx.positionals[0], outDir, params, project);
      return await segmentMaps(ctx, outDir, params, project, notice);
    } finally {
      // Waits for the results to be committed, then releases the lock.
      await project?.close();
    }
  },
};
