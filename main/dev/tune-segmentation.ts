// Grid search of the watershed's seed threshold × agglomeration threshold, maximising the mean V_rand over slices;
// prints one JSON object. Meant for tuning DEFAULT_SEGMENT_PARAMS on our CNN's membrane maps of ISBI slices 0-19
// (slices 20-29 stay held out for `emseg eval`).
//
//   node --import tsx main/dev/tune-segmentation.ts --maps <map stack> [--gt <labels>] [--gt-membrane-value 0]
//        [--slices 0-19] [--seed-thresholds 0.1,0.2,...] [--agglomeration-thresholds 0,0.3,...]
//   node --import tsx main/dev/tune-segmentation.ts --synthetic      (ground-truth-derived maps: checks the plumbing only)
//
// --maps is anything openStack reads (float32 TIFF stack, folder of TIFFs), one map per selected slice or one per
// ground-truth slice. Other sources (raw .bin files, a model run) plug in as a SliceSource passed to tuneSegmentation.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { openStack } from '../io';
import { parseSliceRange } from '../engine/slices';
import { softMembraneMap, ISBI_TRAIN_LABELS } from '../bench/segmentation';
import { agglomerate, removeSmallSegments, watershed, DEFAULT_SEGMENT_PARAMS, type SegmentParams } from '../../ml/segmentation';
import { asGroundTruth, groundTruthSegments, meanScores, scoreLabels, type GroundTruthInput, type SegmentationScores } from '../../ml/metrics';
import type { MembraneMap } from '../../ml/types';

export interface TuningSlice {
  index: number;
  map: MembraneMap;
  gt: GroundTruthInput;
}

/** Where the maps come from: any (async) iterable of slices, read one at a time. */
export type SliceSource = () => Iterable<TuningSlice> | AsyncIterable<TuningSlice>;

export interface TuningGrid {
  seedThreshold: number[];
  /** 0 = no agglomeration. */
  agglomerationThreshold: number[];
}

export const DEFAULT_GRID: TuningGrid = {
  seedThreshold: [0.1, 0.2, 0.3, 0.4, 0.5],
  agglomerationThreshold: [0, 0.3, 0.4, 0.5, 0.6, 0.7],
};

export interface TuningPoint {
  seedThreshold: number;
  agglomerationThreshold: number;
  vrand: number;
  vinfo: number;
  vrandSplit: number;
  vrandMerge: number;
}

export interface TuningResult {
  best: TuningPoint;
  slices: number[];
  base: Partial<SegmentParams>;
  grid: TuningPoint[];
}

/**
 * Scores every grid point on every slice, reusing one watershed per (slice, seed threshold) for all agglomeration
 * thresholds. The pipeline is segment()'s: watershed → agglomerate (if > 0) → remove segments below minSizePx.
 */
export async function tuneSegmentation(source: SliceSource, grid: TuningGrid = DEFAULT_GRID, base: Partial<SegmentParams> = {}): Promise<TuningResult> {
  const params: SegmentParams = { ...DEFAULT_SEGMENT_PARAMS, ...base, method: 'watershed' };
  const scores: SegmentationScores[][] = grid.seedThreshold.flatMap(() => grid.agglomerationThreshold.map(() => []));
  const slices: number[] = [];
  for await (const s of source()) {
    slices.push(s.index);
    const gt = groundTruthSegments(s.gt);
    grid.seedThreshold.forEach((seedThreshold, a) => {
      const basins = watershed(s.map, { ...params, seedThreshold });
      grid.agglomerationThreshold.forEach((threshold, b) => {
        const labels = threshold > 0 ? agglomerate(basins, s.map, { threshold }) : { ...basins, data: basins.data.slice() };
        removeSmallSegments(labels.data, params.minSizePx);
        scores[a * grid.agglomerationThreshold.length + b].push(scoreLabels(labels, gt));
      });
    });
  }
  if (slices.length === 0) throw new Error('tuneSegmentation: no slices');
  const points: TuningPoint[] = [];
  grid.seedThreshold.forEach((seedThreshold, a) => {
    grid.agglomerationThreshold.forEach((agglomerationThreshold, b) => {
      const m = meanScores(scores[a * grid.agglomerationThreshold.length + b]);
      points.push({ seedThreshold, agglomerationThreshold, vrand: m.vrand, vinfo: m.vinfo, vrandSplit: m.vrandSplit, vrandMerge: m.vrandMerge });
    });
  });
  const best = points.reduce((x, y) => (y.vrand > x.vrand ? y : x));
  return { best, slices, base, grid: points };
}

function list(spec: string | undefined, fallback: number[]): number[] {
  if (spec === undefined) return fallback;
  const v = spec.split(',').map(Number);
  if (v.some((x) => !Number.isFinite(x) || x < 0 || x > 1)) throw new Error(`bad list '${spec}' (values in [0, 1], comma-separated)`);
  return v;
}

async function cli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      maps: { type: 'string' },
      gt: { type: 'string', default: ISBI_TRAIN_LABELS },
      'gt-membrane-value': { type: 'string', default: '0' },
      slices: { type: 'string', default: '0-19' },
      synthetic: { type: 'boolean' },
      'seed-thresholds': { type: 'string' },
      'agglomeration-thresholds': { type: 'string' },
    },
  });
  if (!values.maps && !values.synthetic) throw new Error('give --maps <map stack> (or --synthetic to check the plumbing)');
  const membraneValue = Number(values['gt-membrane-value']);
  const gtStack = await openStack(values.gt);
  const selected = parseSliceRange(values.slices, gtStack.info.depth);
  const mapStack = values.maps ? await openStack(values.maps) : undefined;
  if (mapStack && mapStack.info.depth !== gtStack.info.depth && mapStack.info.depth !== selected.length) {
    throw new Error(`--maps has ${mapStack.info.depth} slices: expected ${gtStack.info.depth} or ${selected.length}`);
  }
  async function* slices(): AsyncGenerator<TuningSlice> {
    for (let k = 0; k < selected.length; k++) {
      const z = selected[k];
      const label = await gtStack.readSlice(z);
      let map: MembraneMap;
      if (mapStack) {
        const img = await mapStack.readSlice(mapStack.info.depth === gtStack.info.depth ? z : k);
        if (!(img.data instanceof Float32Array)) throw new Error('--maps must hold float32 P(membrane)');
        map = { width: img.width, height: img.height, data: img.data };
      } else {
        map = softMembraneMap(label, membraneValue, 2, 0.15, z + 1);
      }
      yield { index: z, map, gt: asGroundTruth(label, membraneValue) };
    }
  }
  try {
    const grid = {
      seedThreshold: list(values['seed-thresholds'], DEFAULT_GRID.seedThreshold),
      agglomerationThreshold: list(values['agglomeration-thresholds'], DEFAULT_GRID.agglomerationThreshold),
    };
    const result = await tuneSegmentation(slices, grid);
    process.stdout.write(`${JSON.stringify({ maps: values.maps ?? 'synthetic (ground-truth-derived soft maps)', gt: values.gt, ...result })}\n`);
  } finally {
    await gtStack.close();
    await mapStack?.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await cli(process.argv.slice(2));
}
