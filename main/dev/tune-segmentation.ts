// Grid search of the watershed's seed threshold × agglomeration threshold (ml/segmentation/tune.ts) over a given stack
// of membrane maps, maximising the mean V_rand over slices; prints every point as one JSON object. For a model,
// `emseg tune-segmentation` does this on maps it makes itself and stores the result; this script is for looking at
// the whole grid, or at maps from elsewhere (slices 20-29 stay held out for `emseg eval`).
//
//   node --import tsx main/dev/tune-segmentation.ts --maps <map stack> [--gt <labels>] [--gt-membrane-value 0]
//        [--slices 0-19] [--seed-thresholds 0.1,0.2,...] [--agglomeration-thresholds 0,0.3,...]
//   node --import tsx main/dev/tune-segmentation.ts --synthetic      (ground-truth-derived maps: checks the plumbing only)
//
// --maps is anything openStack reads (float32 TIFF stack, folder of TIFFs), one map per selected slice or one per
// ground-truth slice. Other sources (raw .bin files, a model run) plug in as a SliceSource passed to tuneFromSource.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { openStack } from '../io';
import { parseSliceRange } from '../engine/slices';
import { softMembraneMap, ISBI_TRAIN_LABELS } from '../bench/segmentation';
import { DEFAULT_TUNING_GRID, tuneSegmentation, type TuningGrid, type TuningResult, type TuningSlice } from '../../ml/segmentation/tune';
import { asGroundTruth } from '../../ml/metrics';
import type { MembraneMap } from '../../ml/types';

export interface SourceSlice extends TuningSlice {
  index: number;
}

/** Where the maps come from: any (async) iterable of slices, read one at a time. */
export type SliceSource = () => Iterable<SourceSlice> | AsyncIterable<SourceSlice>;

/** tuneSegmentation (ml/segmentation/tune.ts) over a source read in full first; `slices` lists the indices scored. */
export async function tuneFromSource(source: SliceSource, grid: TuningGrid = DEFAULT_TUNING_GRID): Promise<TuningResult & { slices: number[] }> {
  const all: SourceSlice[] = [];
  for await (const s of source()) all.push(s);
  return { ...tuneSegmentation(all, grid), slices: all.map((s) => s.index) };
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
  async function* slices(): AsyncGenerator<SourceSlice> {
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
      seedThreshold: list(values['seed-thresholds'], DEFAULT_TUNING_GRID.seedThreshold),
      agglomerationThreshold: list(values['agglomeration-thresholds'], DEFAULT_TUNING_GRID.agglomerationThreshold),
    };
    const result = await tuneFromSource(slices, grid);
    process.stdout.write(`${JSON.stringify({ maps: values.maps ?? 'synthetic (ground-truth-derived soft maps)', gt: values.gt, ...result })}\n`);
  } finally {
    await gtStack.close();
    await mapStack?.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await cli(process.argv.slice(2));
}
