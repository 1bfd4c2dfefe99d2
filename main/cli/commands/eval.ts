// `emseg eval`: scores a segmentation or a membrane map stack against ground truth with the ISBI 2012 metrics, per
// slice and as the mean over slices (the challenge's convention). Tables for people, one JSON object with --json.
import { openStack, type Stack } from '../../io';
import { formatSliceRange } from '../../engine/slices';
import { connectedComponents } from '../../../ml/segmentation';
import {
  groundTruthSegments,
  meanScores,
  pickThreshold,
  pairedBootstrap,
  signedDifference as signed,
  scoreLabels,
  thresholdCurve,
  DEFAULT_THRESHOLDS,
  SCORE_KEYS,
  type GroundTruthSegments,
  type PairedDifference,
  type SegmentationScores,
  type ThresholdScores,
} from '../../../ml/metrics';
import type { Image2D, Labels } from '../../../ml/types';
import { UsageError, type Command, type CommandContext } from '../command';
import { createProgressBar } from '../progress';
import { numberOption, pairedSlices, selectedSlices, toMembraneMap } from './segment';

type SliceRecord = { index: number } & SegmentationScores & { threshold?: number };

function membraneValueOption(ctx: CommandContext, name: string): number | undefined {
  const v = numberOption(ctx, name, 0, 65535);
  if (v !== undefined && !Number.isInteger(v)) throw new UsageError(`--${name} must be an integer pixel value (ISBI labels: 0)`);
  return v;
}

function checkSameSize(name: string, stack: Stack, gt: Stack): void {
  if (stack.info.width !== gt.info.width || stack.info.height !== gt.info.height) {
    throw new UsageError(`${name} is ${stack.info.width}×${stack.info.height}, --gt ${gt.info.width}×${gt.info.height}`);
  }
}

function groundTruthOf(img: Image2D, membraneValue: number | undefined): GroundTruthSegments {
  if (img.data instanceof Uint32Array) return groundTruthSegments({ kind: 'instance', labels: img as Labels });
  if (img.data instanceof Float32Array) throw new UsageError('--gt is a float32 stack: expected labels (binary membrane image or uint32 instances)');
  if (membraneValue === undefined) throw new UsageError('--gt-membrane-value is required for an 8- or 16-bit ground truth (ISBI labels: 0)');
  return groundTruthSegments({ kind: 'membrane', image: img, membraneValue });
}

/** Is every pixel 0 or 255? Then a uint8 "segmentation" is a boundary mask (0 = boundary), not 255 ids. */
function isBinary255(data: Uint8Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0 && data[i] !== 255) return false;
  return true;
}

/**
 * A --seg slice as labels (0 = boundary). uint16/uint32 are ids. With --seg-membrane-value, or for a uint8 slice of
 * only 0 and 255, the slice is a boundary mask and its segments are the 4-connected components of the non-boundary
 * pixels — so a ground-truth image can be scored against itself.
 */
function labelsOf(img: Image2D, membraneValue: number | undefined, notice: (m: string) => void): Labels {
  const { width, height, data } = img;
  if (data instanceof Float32Array) throw new UsageError('--seg is a float32 stack: for a membrane map use --membrane');
  let boundary = membraneValue;
  if (boundary === undefined && data instanceof Uint8Array && isBinary255(data)) {
    notice('--seg holds only 0 and 255: read as a boundary mask (0 = boundary); its segments are the 4-connected components');
    boundary = 0;
  }
  if (boundary !== undefined) {
    const interior = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) interior[i] = data[i] === boundary ? 0 : 1;
    return { width, height, data: connectedComponents(interior, width, height, 4).labels };
  }
  return { width, height, data: data instanceof Uint32Array ? data : Uint32Array.from(data) };
}

function parseThresholds(spec: unknown): readonly number[] {
  if (spec === undefined) return DEFAULT_THRESHOLDS;
  const text = String(spec);
  const range = /^([\d.]+):([\d.]+):([\d.]+)$/.exec(text);
  let list: number[];
  if (range) {
    const [a, b, step] = range.slice(1).map(Number);
    if (!(step > 0) || b < a) throw new UsageError(`--thresholds: bad range '${text}' (e.g. 0.05:0.95:0.05)`);
    list = [];
    for (let k = 0; a + k * step <= b + 1e-9; k++) list.push(Math.round((a + k * step) * 1e6) / 1e6);
  } else {
    list = text.split(',').map((s) => Number(s.trim()));
  }
  if (list.length === 0 || list.some((t) => !Number.isFinite(t) || t < 0 || t > 1)) {
    throw new UsageError(`--thresholds: expected values in [0, 1] as a list (0.3,0.5) or a range (0.05:0.95:0.05), got '${text}'`);
  }
  return list;
}

const COLUMNS: Array<[keyof SegmentationScores, string]> = [
  ['vrand', 'V_rand'],
  ['vrandSplit', 'split'],
  ['vrandMerge', 'merge'],
  ['vinfo', 'V_info'],
  ['vinfoSplit', 'split'],
  ['vinfoMerge', 'merge'],
  ['randError', 'RandErr'],
  ['pixelError', 'PixErr'],
];

function table(perSlice: SliceRecord[], mean: SegmentationScores): string[] {
  const fmt = (v: number): string => (Number.isNaN(v) ? '-' : v.toFixed(4)).padStart(8);
  const lines = [`${'slice'.padStart(6)}${COLUMNS.map(([, h]) => h.padStart(8)).join('')}`];
  for (const r of perSlice) lines.push(`${String(r.index).padStart(6)}${COLUMNS.map(([k]) => fmt(r[k])).join('')}`);
  lines.push(`${'mean'.padStart(6)}${COLUMNS.map(([k]) => fmt(mean[k])).join('')}`);
  return lines;
}

function pick(s: SegmentationScores): SegmentationScores {
  const out = {} as SegmentationScores;
  for (const k of SCORE_KEYS) out[k] = s[k];
  return out;
}

/** One line: the mean difference, its interval, and whether the interval leaves 0 out. */
function describeDifference(name: string, d: PairedDifference): string {
  const verdict = d.lo > 0 ? 'better' : d.hi < 0 ? 'worse' : 'not resolved: the interval contains 0';
  return `  ${name} ${signed(d.mean)}, ${Math.round(d.level * 100)} % interval ${signed(d.lo)} … ${signed(d.hi)} (paired bootstrap over ${d.slices} slices): ${verdict}; ` +
    `better on ${d.better}, worse on ${d.worse}`;
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Score a segmentation or membrane maps against ground truth (ISBI 2012 V_rand, V_info)',
  usage: 'emseg eval --gt <stack> --gt-membrane-value <0|255> (--seg <labels> [--baseline <labels>] | --membrane <maps>) [--slices 20-29] [--json]',
  help: `
Scores per slice and as the mean over slices, with the ISBI 2012 definitions (Arganda-Carreras et al. 2015):
V_rand and V_info (higher is better, 1 = perfect) with their split and merge parts, the adapted Rand error
(1 - V_rand) and the pixel error. Only ground-truth interior pixels count; predicted boundary pixels (0) are first
absorbed into the neighbouring segments.

Ground truth (--gt): a binary membrane image stack (give --gt-membrane-value; ISBI labels: 0 = membrane, segments are
the 4-connected interior regions) or a uint32 instance stack (0 = boundary).

Prediction, one of:
  --seg <stack>        labels (uint16/uint32 ids, 0 = boundary). A uint8 stack of only 0 and 255, or any stack with
                       --seg-membrane-value, is a boundary mask whose 4-connected interior regions are the segments.
  --membrane <stack>   membrane maps (float32 P(membrane); 8/16-bit scaled to 0..1). Each slice is cut at every
                       threshold (interior = P < t) and one threshold, the best mean V_rand, is reported for the stack.

The prediction stack has the ground truth's depth, or one slice per --slices slice.

Options:
  --slices <range>            e.g. 20-29 (default: all slices of --gt)
  --seg-membrane-value <v>    read --seg as a boundary mask whose boundary pixels have value v
  --thresholds <list|a:b:s>   --membrane sweep (default 0.05:0.95:0.05)
  --sweep threshold|watershed --membrane: cut by threshold (ISBI convention, default) or run the watershed with
                              each value as its seed threshold
  --baseline <labels>         --seg: also score these labels (same format as --seg) and compare: the mean
                              difference of V_rand and V_info (--seg − --baseline) with its 95 % interval from a
                              paired bootstrap over slices (10,000 resamples), and on how many slices --seg is
                              better or worse. On a few slices a difference of a few thousandths is often inside it
  --json                      one JSON object on stdout: vrand, vinfo (means), slices, per_slice, and the other means
`,
  options: {
    gt: { type: 'string' },
    'gt-membrane-value': { type: 'string' },
    seg: { type: 'string' },
    'seg-membrane-value': { type: 'string' },
    membrane: { type: 'string' },
    slices: { type: 'string' },
    thresholds: { type: 'string' },
    sweep: { type: 'string' },
    baseline: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(ctx) {
    const { gt: gtPath, seg: segPath, membrane: mapPath } = ctx.values;
    if (ctx.positionals.length > 0) throw new UsageError(`unexpected argument '${ctx.positionals[0]}'`);
    if (typeof gtPath !== 'string') throw new UsageError('--gt <stack> is required');
    if ((typeof segPath === 'string') === (typeof mapPath === 'string')) throw new UsageError('give exactly one of --seg <labels> and --membrane <maps>');
    const basePath = ctx.values.baseline;
    if (basePath !== undefined && typeof segPath !== 'string') throw new UsageError('--baseline compares labels: use it with --seg');
    const gtMembrane = membraneValueOption(ctx, 'gt-membrane-value');
    const segMembrane = membraneValueOption(ctx, 'seg-membrane-value');
    const sweep = ctx.values.sweep ?? 'threshold';
    if (sweep !== 'threshold' && sweep !== 'watershed') throw new UsageError(`--sweep must be threshold or watershed, got '${String(sweep)}'`);
    const thresholds = parseThresholds(ctx.values.thresholds);
    const notices = new Set<string>();
    const notice = (m: string): void => {
      if (!ctx.quiet && !notices.has(m)) ctx.err(`notice: ${m}`);
      notices.add(m);
    };

    const stacks: Stack[] = [];
    try {
      const gt = await openStack(gtPath, { cacheBytes: 0, onNotice: notice });
      stacks.push(gt);
      const predPath = (typeof segPath === 'string' ? segPath : mapPath) as string;
      const predName = typeof segPath === 'string' ? '--seg' : '--membrane';
      const pred = await openStack(predPath, { cacheBytes: 0, onNotice: notice });
      stacks.push(pred);
      checkSameSize(predName, pred, gt);
      const slices = selectedSlices(ctx.values.slices, gt.info.depth);
      const predIndex = pairedSlices(slices, gt.info.depth, pred.info.depth, predName);
      const bar = createProgressBar('eval', slices.length, { quiet: ctx.quiet, unit: ' slices' });

      let base: { stack: Stack; index: number[]; perSlice: SegmentationScores[] } | undefined;
      if (typeof basePath === 'string') {
        const stack = await openStack(basePath, { cacheBytes: 0, onNotice: notice });
        stacks.push(stack);
        checkSameSize('--baseline', stack, gt);
        base = { stack, index: pairedSlices(slices, gt.info.depth, stack.info.depth, '--baseline'), perSlice: [] };
      }

      let perSlice: SliceRecord[] = [];
      let extra: Record<string, unknown> = {};
      if (typeof segPath === 'string') {
        for (let k = 0; k < slices.length; k++) {
          const g = groundTruthOf(await gt.readSlice(slices[k]), gtMembrane);
          const labels = labelsOf(await pred.readSlice(predIndex[k]), segMembrane, notice);
          perSlice.push({ index: slices[k], ...scoreLabels(labels, g) });
          if (base) base.perSlice.push(scoreLabels(labelsOf(await base.stack.readSlice(base.index[k]), segMembrane, notice), g));
          // The last update is left to done(): progress.ts would otherwise draw even sub-second runs.
          if (k + 1 < slices.length) bar.update(k + 1);
        }
      } else {
        const curves: ThresholdScores[][] = [];
        for (let k = 0; k < slices.length; k++) {
          const g = groundTruthOf(await gt.readSlice(slices[k]), gtMembrane);
          const map = toMembraneMap(await pred.readSlice(predIndex[k]), '--membrane');
          curves.push(thresholdCurve(map, g, { thresholds, segment: sweep }));
          // The last update is left to done(): progress.ts would otherwise draw even sub-second runs.
          if (k + 1 < slices.length) bar.update(k + 1);
        }
        const choice = pickThreshold(curves);
        perSlice = choice.perSlice.map((s, k) => ({ index: slices[k], ...s }));
        extra = {
          threshold: choice.threshold,
          sweep,
          bestVinfo: choice.bestVinfo,
          curve: choice.curve.map((c) => ({ threshold: c.threshold, vrand: c.vrand, vinfo: c.vinfo })),
        };
      }
      bar.done();
      const mean = meanScores(perSlice);
      const comparison = base && {
        baseline: basePath as string,
        vrand: pairedBootstrap(base.perSlice.map((s) => s.vrand), perSlice.map((s) => s.vrand)),
        vinfo: pairedBootstrap(base.perSlice.map((s) => s.vinfo), perSlice.map((s) => s.vinfo)),
      };

      if (ctx.values.json === true) {
        const { vrand, vinfo, ...otherMeans } = pick(mean);
        const result = {
          vrand,
          vinfo,
          slices: perSlice.length,
          ...otherMeans,
          ...extra,
          ...(comparison ? { comparison } : {}),
          gt: gtPath,
          [typeof segPath === 'string' ? 'seg' : 'membrane']: predPath,
          sliceRange: formatSliceRange(slices),
          per_slice: perSlice,
        };
        ctx.out(JSON.stringify(result));
        return 0;
      }
      ctx.out(`${predName} ${predPath} against --gt ${gtPath}, slices ${formatSliceRange(slices)}`);
      if (extra.threshold !== undefined) {
        const best = extra.bestVinfo as { threshold: number; vinfo: number };
        ctx.out(`threshold ${extra.threshold} (best mean V_rand of ${thresholds.length} thresholds, ${sweep}); best mean V_info ${best.vinfo.toFixed(4)} at ${best.threshold}`);
      }
      for (const line of table(perSlice, mean)) ctx.out(line);
      if (base && comparison) {
        ctx.out(`against --baseline ${comparison.baseline} (mean ${meanScores(base.perSlice).vrand.toFixed(4)} V_rand):`);
        ctx.out(describeDifference('V_rand', comparison.vrand));
        ctx.out(describeDifference('V_info', comparison.vinfo));
      }
      return 0;
    } finally {
      for (const s of stacks) await s.close();
    }
  },
};
