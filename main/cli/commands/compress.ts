// `emseg compress`: makes a compressed model folder from a trained one (int8, structured pruning, CCI sparsity), or
// with --report measures model folders side by side: file size, inference speed in EMSeg, V_rand / V_info.
import os from 'node:os';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, type Command, type CommandContext } from '../command';
import { num, str } from '../options';
import { parseSliceRange } from '../../engine/slices';
import { loadLabelledSlices, type LabelledSlice } from '../../engine/datasets';
import { loadModel, saveModel } from '../../engine/model-store';
import { DEFAULT_MEMBRANE_MODEL, SAMPLE_DATA, SAMPLE_STACK } from '../../engine/models';
import { COMPRESSION_METHODS, compressModel, measureModelFolder, reportMarkdown, type CompressionMethod, type ReportRow } from '../../engine/compress';

/** Where `emseg compress` puts models by default, and where --report looks for them. */
export const COMPRESSED_MODELS = join(SAMPLE_DATA, 'models', 'compressed');

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
  const images = str(ctx, 'images') ?? SAMPLE_STACK;
  const labels = str(ctx, 'labels') ?? join(SAMPLE_STACK, '..', 'label');
  const all = await loadLabelledSlices(images, labels, 'all');
  const spec = str(ctx, 'val-slices');
  const val = spec ? all.filter((s) => parseSliceRange(spec, all.length).includes(s.index)) : all;
  const mv = str(ctx, 'label-membrane-value') === undefined ? 0 : labelValue(ctx, undefined);
  const threads = num(ctx, 'threads', os.availableParallelism(), { min: 1, int: true });
  const rows: ReportRow[] = [];
  for (const dir of models) {
    if (!ctx.quiet) ctx.err(`compress --report: ${dir}`);
    const row = await measureModelFolder(dir, val, mv, { threads });
    rows.push(row);
    // The app's model picker shows a compressed model's row: keep it in its record.
    const loaded = await loadModel(dir);
    if (loaded.record.compression) await saveModel(dir, { ...loaded.record, compression: { ...loaded.record.compression, report: { ...row, threads, slices: val.length } } }, loaded.weights);
  }
  const note = `${val.length} validation slice(s) of ${images}; speed = tiled ONNX Runtime inference on ${threads} thread(s) of ${os.cpus()[0]?.model ?? 'cpu'}; V_rand/V_info at each model's best threshold; × and ΔV_rand against the first row.`;
  ctx.out(ctx.values.json ? JSON.stringify({ rows, note }, null, 2) : reportMarkdown(rows, note));
  return 0;
}

export const compressCommand: Command = {
  name: 'compress',
  summary: 'Compress a model (int8, structured pruning, CCI sparsity) or report on compressed models',
  usage: 'emseg compress --method <int8|structured|cci> [--model <dir>] --out <dir> [data options] [method options]\n       emseg compress --report [--models <dir,…>] [--images <stack> --labels <stack> --val-slices <range>] [--json]',
  help: `
Makes a compressed copy of a membrane model as an ordinary model folder (usable by 'emseg segment --model', the app's
model picker, refinement): model.json records the method in its 'compression' field.

Methods:
  int8        static quantisation: int8 weights (per output channel), uint8 activations calibrated on training
              slices, written as an ONNX QDQ graph that ONNX Runtime runs with integer kernels. No training.
  structured  removes the least important filters of every layer (L1 norm of the batch-norm-folded filter) and
              rebuilds a smaller dense U-Net, then fine-tunes it with the regular trainer.
  cci         cross-channel intragroup sparsity: in every group of G input channels, at every kernel tap, only the
              N largest weights are kept; fine-tuned with the mask recomputed from dense shadow weights.

Data (training slices for calibration and fine-tuning, validation slices for scores); defaults from the source model's
training record when it has one:
  --images <stack> --labels <stack> --label-membrane-value <0|255> --val-slices <range> [--train-slices <range>]

Options:
  --model <dir>             source model (default: the shipped membrane model)
  --out <dir>               folder to write (default: sample-data/models/compressed/<method>)
  --steps <n>               fine-tuning steps (structured default 600, cci default 300; 0 = none)
  --batch <n> (4)  --crop <px> (256)  --lr <x> (0.0005)  --workers <n>  --seed <n> (1)  --eval-every <n> (100)
  --keep <fraction>         structured: fraction of filters kept per layer (default 0.5)
  --group <G> --nonzeros <N>  cci: group size and non-zeros per group (default 4 and 1)
  --calibration-slices <n>  int8: training slices used for calibration (default 8)
  --calibration <minmax|mean>  int8: overall extremes, or the mean of per-slice extremes (default minmax)
  --reduce-range            int8: 7-bit weights, for CPUs without VNNI (avoids u8×s8 saturation)

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
    'calibration-slices': { type: 'string' }, calibration: { type: 'string' }, 'reduce-range': { type: 'boolean' }, report: { type: 'boolean' },
    models: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' },
  },
  async run(ctx) {
    if (ctx.values.report) return runReport(ctx);
    const method = str(ctx, 'method', true) as CompressionMethod;
    if (!COMPRESSION_METHODS.includes(method)) throw new UsageError(`--method must be one of ${COMPRESSION_METHODS.join(', ')}, got '${method}'`);
    const cci = { group: num(ctx, 'group', 4, { min: 2, int: true }), keep: num(ctx, 'nonzeros', 1, { min: 1, int: true }) };
    if (cci.keep >= cci.group) throw new UsageError(`--nonzeros (${cci.keep}) must be smaller than --group (${cci.group})`);
    const calibration = str(ctx, 'calibration') ?? 'minmax';
    if (calibration !== 'minmax' && calibration !== 'mean') throw new UsageError(`--calibration must be minmax or mean, got '${calibration}'`);
    const src = str(ctx, 'model') ?? DEFAULT_MEMBRANE_MODEL;
    const record = (await loadModel(src)).record;
    const trained = (record.training ?? {}) as Record<string, unknown>;
    const images = str(ctx, 'images') ?? (trained.images as string | undefined);
    const labels = str(ctx, 'labels') ?? (trained.labels as string | undefined);
    if (!images || !labels) throw new UsageError(`--images and --labels are required (${src} does not record its training data)`);
    const mv = labelValue(ctx, trained.labelMembraneValue);
    const all = await loadLabelledSlices(images, labels, 'all');
    const val = parseSliceRange(str(ctx, 'val-slices') ?? (trained.valSlices as string | undefined) ?? '20-29', all.length);
    const trainSpec = str(ctx, 'train-slices');
    const trainIdx = trainSpec ? parseSliceRange(trainSpec, all.length) : all.map((s) => s.index).filter((i) => !val.includes(i));
    const pick = (idx: number[]): LabelledSlice[] => all.filter((s) => idx.includes(s.index));
    const out = str(ctx, 'out') ?? join(COMPRESSED_MODELS, method);
    const result = await compressModel({
      method, src, out, data: { train: pick(trainIdx), val: pick(val), membraneValue: mv },
      fineTune: {
        steps: num(ctx, 'steps', method === 'structured' ? 600 : 300, { min: 0, int: true }), batchSize: num(ctx, 'batch', 4, { min: 1, int: true }),
        cropPx: num(ctx, 'crop', 256, { min: 16, int: true }), lr: num(ctx, 'lr', 5e-4, { min: 0 }), workers: num(ctx, 'workers', os.availableParallelism(), { min: 1, int: true }),
        seed: num(ctx, 'seed', 1, { int: true }), evalEvery: num(ctx, 'eval-every', 100, { min: 1, int: true }),
      },
      int8: {
        calibrationSlices: num(ctx, 'calibration-slices', 8, { min: 1, int: true }), reduceRange: ctx.values['reduce-range'] === true,
        calibration,
      },
      structured: { keepFraction: num(ctx, 'keep', 0.5, { min: 0.01, max: 1 }) },
      cci,
      log: (line) => (ctx.quiet ? undefined : ctx.err(line)),
    });
    const v = result.validation as Record<string, number> | undefined;
    ctx.out(`wrote ${out} (${method})${v?.vrand !== undefined ? `: validation V_rand ${v.vrand.toFixed(4)}, V_info ${v.vinfo.toFixed(4)}` : ''}`);
    return 0;
  },
};
