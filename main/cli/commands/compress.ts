// `emseg compress`: makes a compressed model folder from a trained one (int8, structured pruning, CCI sparsity,
// relief / magnitude pruning, Lp-sphere sparse training, a binarized network), or with --report measures model folders
// side by side: file size, inference speed in EMSeg, V_rand / V_info, sparsity, and a binarized model's ensembles.
import os from 'node:os';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, type Command, type CommandContext } from '../command';
import { num, splitLabelled, str } from '../options';
import { parseSliceRange } from '../../engine/slices';
import { loadLabelledSlices } from '../../engine/datasets';
import { loadModelRecord, saveModelRecord } from '../../engine/model-store';
import { writeModelCard } from '../../engine/model-card';
import { COMPRESSED_MODELS, DEFAULT_MEMBRANE_MODEL, SAMPLE_STACK, modelLabel } from '../../engine/models';
import {
  COMPRESSION_METHODS, DEFAULT_BINARY, DEFAULT_LPSPHERE, DEFAULT_RELIEF, compressModel, measureEnsemble, measureModelFolder, reportMarkdown, type CompressionMethod, type ReportRow,
} from '../../engine/compress';

/** A comma-separated list of ensemble sizes (whole numbers 1–64). */
function sizesOption(ctx: CommandContext, name: string, def: number[]): number[] {
  const raw = str(ctx, name);
  if (raw === undefined) return def;
  const out = raw.split(',').map((t) => Number(t.trim()));
  if (out.length === 0 || out.some((k) => !Number.isInteger(k) || k < 1 || k > 64)) throw new UsageError(`--${name} must be a list of whole numbers from 1 to 64, like 1,2,4,8,16; got '${raw}'`);
  return [...new Set(out)].sort((a, b) => a - b);
}

function labelValue(ctx: CommandContext, fallback: unknown): 0 | 255 {
  const v = str(ctx, 'label-membrane-value') ?? (fallback === undefined ? undefined : String(fallback));
  if (v !== '0' && v !== '255') throw new UsageError(`--label-membrane-value must be 0 or 255 (ISBI: 0)${v === undefined ? '' : `, got '${v}'`}`);
  return Number(v) as 0 | 255;
}

async function isModelFolder(dir: string): Promise<boolean> {
  return stat(join(dir, 'model.json')).then(() => true, () => false);
}

async function runReport(ctx: CommandContext): Promise<number> {
  const listed = str(ctx, 'models')?.split(',').map((s) => s.trim()).filter(Boolean);
  let models = listed ?? [str(ctx, 'model') ?? DEFAULT_MEMBRANE_MODEL];
  if (!listed) {
    const names = await readdir(COMPRESSED_MODELS).catch(() => [] as string[]);
    for (const n of names.sort()) if (await isModelFolder(join(COMPRESSED_MODELS, n))) models.push(join(COMPRESSED_MODELS, n));
  }
  models = [...new Set(models)];
  // Binarized folders go last (after the reference): measuring their ensembles leaves later ONNX Runtime sessions of
  // this process 2-3× slower (seen on the shipped models: lpsphere 1.10 Mpx/s after the binary ensemble, 3.13 without;
  // cause not found), which would make every row after them look slow.
  const binary = new Set<string>();
  for (const dir of models) {
    const cfg = (await loadModelRecord(dir)).config;
    if (cfg.kind === 'unet' && cfg.binary !== undefined) binary.add(dir);
  }
  const [first, ...rest] = models;
  models = [first, ...rest.filter((d) => !binary.has(d)), ...rest.filter((d) => binary.has(d))];
  const images = str(ctx, 'images') ?? SAMPLE_STACK;
  const labels = str(ctx, 'labels') ?? join(SAMPLE_STACK, '..', 'label');
  const all = await loadLabelledSlices(images, labels, 'all');
  const spec = str(ctx, 'val-slices');
  const val = spec ? all.filter((s) => parseSliceRange(spec, all.length).includes(s.index)) : all;
  const mv = str(ctx, 'label-membrane-value') === undefined ? 0 : labelValue(ctx, undefined);
  const threads = num(ctx, 'threads', os.availableParallelism(), { min: 1, int: true });
  const ensembleSizes = sizesOption(ctx, 'ensemble-sizes', DEFAULT_BINARY.ensembleSizes);
  const rows: ReportRow[] = [];
  // The first row is what × and ΔV_rand compare with; each compressed folder keeps it beside its own row.
  let reference: { path: string; model: string; mpxPerS: number; vrand: number; vinfo: number } | null = null;
  for (const dir of models) {
    if (!ctx.quiet) ctx.err(`compress --report: ${dir}`);
    const row = await measureModelFolder(dir, val, mv, { threads });
    rows.push(row);
    const isReference = reference === null;
    reference ??= { path: modelLabel(await realpath(dir)), model: row.model, mpxPerS: row.mpxPerS, vrand: row.vrand, vinfo: row.vinfo };
    const record = await loadModelRecord(dir);
    const ensemble = binary.has(dir) ? await measureEnsemble(dir, val, mv, ensembleSizes, { threads }) : undefined;
    for (const e of ensemble ?? []) {
      rows.push({ ...row, model: `${row.model} K=${e.k}`, method: 'binary ensemble', mpxPerS: e.mpxPerS, vrand: e.vrand, vinfo: e.vinfo, threshold: e.threshold });
    }
    // The app's model picker shows a compressed model's row: keep it in its record.
    if (record.compression) {
      const report = { ...row, threads, slices: val.length, ...(isReference ? {} : { reference }) };
      const compression = { ...record.compression, report, ...(ensemble ? { ensemble } : {}) };
      await saveModelRecord(dir, { ...record, compression });
      await writeModelCard(dir);
    }
  }
  const note = `${val.length} validation slice(s) of ${images}; speed = tiled ONNX Runtime inference on ${threads} thread(s) of ${os.cpus()[0]?.model ?? 'cpu'}; V_rand/V_info at each model's best threshold; × and ΔV_rand against the first row; sparsity = exact zeros in the pruned kernels (the ONNX graphs stay dense: no speed-up in ONNX Runtime); binary ensemble rows: K sampled ±1 networks averaged, speed of all K.`;
  ctx.out(ctx.values.json ? JSON.stringify({ rows, note }, null, 2) : reportMarkdown(rows, note));
  return 0;
}

export const compressCommand: Command = {
  name: 'compress',
  summary: 'Compress a model (int8, structured/CCI/relief/magnitude pruning, Lp-sphere, binary) or report on compressed models',
  usage: 'emseg compress --method <int8|structured|cci|relief|magnitude|lpsphere|binary> [--model <dir>] --out <dir> [data options] [method options]\n       emseg compress --report [--models <dir,…>] [--images <stack> --labels <stack> --val-slices <range>] [--json]',
  help: `
Makes a compressed copy of a membrane model as an ordinary model folder (usable by 'emseg segment --model', the app's
model picker, refinement): model.json records the method in its 'compression' field.

Methods:
  int8        static quantisation: int8 weights (per output channel), uint8 activations calibrated on training
              slices, written as an ONNX QDQ graph that ONNX Runtime runs with integer kernels. No training.
  structured  removes the filters of every layer that the others explain best on training crops, rebuilds a
              smaller dense U-Net, refits its convolutions to the source model's, then fine-tunes it with the
              regular trainer.
  cci         cross-channel intragroup sparsity: in every group of G input channels, at every kernel tap, only the
              N largest weights are kept; fine-tuned with the mask recomputed from dense shadow weights.
  relief      activity-based pruning ("neural network relief", Dekhovich et al.): per filter, keep the connections
              carrying a share α of its input signal on training crops; --rounds prune → fine-tune rounds. Also
              writes the global magnitude-pruning baseline at equal sparsity to <out>-magnitude (--no-baseline: not).
  magnitude   global magnitude pruning of the batch-norm-folded weights to --sparsity, over --rounds rounds.
  lpsphere    Lp-sphere sparse training (Li et al.): each filter kept on ‖w‖_p = 1, LpSGD updates, weights below
              h · mean|w| set to zero (they regrow on large gradients).
  binary      binarized U-Net (±1 weights and activations, first and last layers in float), trained with the
              straight-through estimator from the model's weights, optionally distilled from its maps; scores
              stochastic ensembles of K sampled networks ('emseg segment --ensemble K' runs them).

Data (training slices for calibration and fine-tuning, validation slices for scores); defaults from the source model's
training record when it has one:
  --images <stack> --labels <stack> --label-membrane-value <0|255> --val-slices <range> [--train-slices <range>]

Options:
  --model <dir>             source model (default: the shipped membrane model)
  --out <dir>               folder to write (default: sample-data/models/compressed/<method>)
  --steps <n>               fine-tuning steps (structured default 600, binary 600, others 300; 0 = none)
  --batch <n> (4)  --crop <px> (256)  --lr <x> (0.0005)  --workers <n>  --seed <n> (1)  --eval-every <n> (100)
  --keep <fraction>         structured: fraction of filters kept per layer (default 0.5)
  --group <G> --nonzeros <N>  cci: group size and non-zeros per group (default 4 and 1)
  --calibration-slices <n>  int8: training slices used for calibration (default 8)
  --calibration <minmax|mean>  int8: overall extremes, or the mean of per-slice extremes (default minmax)
  --full-range              int8: 8-bit weights instead of 7 (a little more accurate, but only for CPUs with VNNI:
                            without it ONNX Runtime's u8×s8 products saturate and the map is wrong)
  --alpha <x>               relief: share of each filter's score kept (default ${DEFAULT_RELIEF.alpha})
  --rounds <n>              relief, magnitude: prune → fine-tune rounds (default ${DEFAULT_RELIEF.rounds})
  --pruning-crops <n>       relief: 128-px training crops the scores are averaged over (default ${DEFAULT_RELIEF.pruningCrops})
  --no-baseline             relief: do not write <out>-magnitude
  --sparsity <x>            magnitude: fraction of the pruned kernels' weights set to zero (required)
  --p <x>                   lpsphere: the norm's exponent, 1 < p ≤ 2 (default ${DEFAULT_LPSPHERE.p})
  --h <x>                   lpsphere: semi-pruning threshold, fraction of the filter's mean |w| (default ${DEFAULT_LPSPHERE.h})
  --eta <x>                 lpsphere: LpSGD step size at the peak of the schedule, relative per layer
                            (η · rms(v)/rms(g); default ${DEFAULT_LPSPHERE.eta})
  --global-eta              lpsphere: one absolute η for every layer (the paper's form) instead
  --distill <x>             binary: weight of the float model's maps in the targets, 0-1 (default ${DEFAULT_BINARY.distill})
  --deterministic-training  binary: sign(w) in training instead of sampled ±1 weights
  --kernel-lr-scale <x>     binary: learning-rate multiplier of the real-valued binary kernels (default ${DEFAULT_BINARY.kernelLrScale})
  --ensemble-sizes <K,…>    binary (and --report): ensemble sizes scored (default ${DEFAULT_BINARY.ensembleSizes.join(',')})

Report:
  --report                  measure models instead: file size, speed (Mpx/s), V_rand, V_info
  --models <dir,…>          folders to compare, first = the reference (default: --model, then every folder in
                            sample-data/models/compressed)
  --images/--labels         validation stack (default: the sample stack sample-data/isbi2012-val, all slices, labels 0)
  --threads <n>             inference threads (default: all cores)
  --json                    print JSON instead of a Markdown table
`,
  options: {
    method: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, images: { type: 'string' }, labels: { type: 'string' },
    'label-membrane-value': { type: 'string' }, 'val-slices': { type: 'string' }, 'train-slices': { type: 'string' }, steps: { type: 'string' },
    batch: { type: 'string' }, crop: { type: 'string' }, lr: { type: 'string' }, workers: { type: 'string' }, seed: { type: 'string' },
    'eval-every': { type: 'string' }, keep: { type: 'string' }, group: { type: 'string' }, nonzeros: { type: 'string' },
    'calibration-slices': { type: 'string' }, calibration: { type: 'string' }, 'full-range': { type: 'boolean' }, report: { type: 'boolean' },
    models: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' },
    alpha: { type: 'string' }, rounds: { type: 'string' }, 'pruning-crops': { type: 'string' }, 'no-baseline': { type: 'boolean' }, sparsity: { type: 'string' },
    p: { type: 'string' }, h: { type: 'string' }, eta: { type: 'string' }, distill: { type: 'string' }, 'deterministic-training': { type: 'boolean' }, 'global-eta': { type: 'boolean' }, 'kernel-lr-scale': { type: 'string' },
    'ensemble-sizes': { type: 'string' },
  },
  async run(ctx) {
    if (ctx.values.report) return runReport(ctx);
    const method = str(ctx, 'method', true) as CompressionMethod;
    if (!COMPRESSION_METHODS.includes(method)) throw new UsageError(`--method must be one of ${COMPRESSION_METHODS.join(', ')}, got '${method}'`);
    const cci = { group: num(ctx, 'group', 4, { min: 2, int: true }), keep: num(ctx, 'nonzeros', 1, { min: 1, int: true }) };
    if (cci.keep >= cci.group) throw new UsageError(`--nonzeros (${cci.keep}) must be smaller than --group (${cci.group})`);
    const sparsityArg = str(ctx, 'sparsity');
    if (method === 'magnitude' && sparsityArg === undefined) throw new UsageError('--method magnitude needs --sparsity <fraction in (0, 1)>');
    const relief = {
      alpha: num(ctx, 'alpha', DEFAULT_RELIEF.alpha, { min: 0.01, max: 1 }), rounds: num(ctx, 'rounds', DEFAULT_RELIEF.rounds, { min: 1, max: 20, int: true }),
      pruningCrops: num(ctx, 'pruning-crops', DEFAULT_RELIEF.pruningCrops, { min: 1, int: true }), baseline: ctx.values['no-baseline'] !== true,
    };
    const magnitude = { sparsity: num(ctx, 'sparsity', 0.5, { min: 0.001, max: 0.999 }), rounds: relief.rounds };
    const p = num(ctx, 'p', DEFAULT_LPSPHERE.p, { max: 2 });
    if (!(p > 1)) throw new UsageError(`--p must be above 1 (and at most 2), got ${p}`);
    const lpsphere = { p, h: num(ctx, 'h', DEFAULT_LPSPHERE.h, { min: 0, max: 1 }), eta: num(ctx, 'eta', DEFAULT_LPSPHERE.eta, { min: 0 }), layerwise: ctx.values['global-eta'] !== true };
    const binary = {
      distill: num(ctx, 'distill', DEFAULT_BINARY.distill, { min: 0, max: 1 }), stochasticTraining: ctx.values['deterministic-training'] !== true,
      ensembleSizes: sizesOption(ctx, 'ensemble-sizes', DEFAULT_BINARY.ensembleSizes), memberSeed: num(ctx, 'seed', 1, { int: true }),
      kernelLrScale: num(ctx, 'kernel-lr-scale', DEFAULT_BINARY.kernelLrScale, { min: 0 }),
    };
    const calibration = str(ctx, 'calibration') ?? 'minmax';
    if (calibration !== 'minmax' && calibration !== 'mean') throw new UsageError(`--calibration must be minmax or mean, got '${calibration}'`);
    const src = str(ctx, 'model') ?? DEFAULT_MEMBRANE_MODEL;
    const record = await loadModelRecord(src);
    const trained = (record.training ?? {}) as Record<string, unknown>;
    const images = str(ctx, 'images') ?? (trained.images as string | undefined);
    const labels = str(ctx, 'labels') ?? (trained.labels as string | undefined);
    if (!images || !labels) throw new UsageError(`--images and --labels are required (${src} does not record its training data)`);
    const mv = labelValue(ctx, trained.labelMembraneValue);
    const all = await loadLabelledSlices(images, labels, 'all');
    const val = parseSliceRange(str(ctx, 'val-slices') ?? (trained.valSlices as string | undefined) ?? '20-29', all.length);
    const { trainSet, valSet } = splitLabelled(ctx, all, val);
    const out = str(ctx, 'out') ?? join(COMPRESSED_MODELS, method);
    const result = await compressModel({
      method, src, out, data: { train: trainSet, val: valSet, membraneValue: mv },
      fineTune: {
        steps: num(ctx, 'steps', method === 'structured' || method === 'binary' ? 600 : 300, { min: 0, int: true }), batchSize: num(ctx, 'batch', 4, { min: 1, int: true }),
        cropPx: num(ctx, 'crop', 256, { min: 16, int: true }), lr: num(ctx, 'lr', 5e-4, { min: 0 }), workers: num(ctx, 'workers', os.availableParallelism(), { min: 1, int: true }),
        seed: num(ctx, 'seed', 1, { int: true }), evalEvery: num(ctx, 'eval-every', 100, { min: 1, int: true }),
      },
      int8: {
        calibrationSlices: num(ctx, 'calibration-slices', 8, { min: 1, int: true }), reduceRange: ctx.values['full-range'] !== true,
        calibration,
      },
      structured: { keepFraction: num(ctx, 'keep', 0.5, { min: 0.01, max: 1 }) },
      cci, relief, magnitude, lpsphere, binary,
      log: (line) => (ctx.quiet ? undefined : ctx.err(line)),
    });
    const v = result.validation as Record<string, number> | undefined;
    const c = result.compression ?? {};
    const extra = [
      typeof c.sparsity === 'number' ? `sparsity ${(100 * c.sparsity).toFixed(1)} %` : '',
      Array.isArray(c.ensemble) ? `ensembles ${(c.ensemble as Array<{ k: number; vrand: number }>).map((e) => `K=${e.k} ${e.vrand.toFixed(4)}`).join(', ')}` : '',
      typeof c.baseline === 'string' ? `magnitude baseline in ${c.baseline}` : '',
    ].filter(Boolean);
    ctx.out(`wrote ${out} (${method})${v?.vrand !== undefined ? `: validation V_rand ${v.vrand.toFixed(4)}, V_info ${v.vinfo.toFixed(4)}` : ''}${extra.length ? `; ${extra.join('; ')}` : ''}`);
    return 0;
  },
};
