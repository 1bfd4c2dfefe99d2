// `emseg batch <input folder | list file> --out <dir>`: segments every image and stack of a folder tree (or a list)
// with worker processes, resumably, recording each item in a manifest; `--merge` joins the manifests of a sharded run
// (see `emseg slurm`), `--report` writes the QC page. The work itself lives in main/batch/.
import { resolve } from 'node:path';
import { latestRecords, mergeManifests, type BatchParams, type ManifestRecord } from '../../batch/manifest';
import { parseShard } from '../../batch/items';
import { listBatch, runBatch, type BatchSummary } from '../../batch/run';
import { writeReport, type ReportEntry } from '../../batch/report';
import { EXIT_OK, EXIT_PARTIAL, UsageError, type Command, type CommandContext } from '../command';
import { num, str } from '../options';
import { DEFAULT_TILE_PX } from '../../../ml/infer/tiled';
import { createProgressBar, formatDuration } from '../progress';
import { paramsFrom, pixelSizeFrom } from './segment';
import { resolveModels } from './segment-model';

export function batchParams(ctx: CommandContext): BatchParams {
  return {
    refineRounds: ctx.values['refine-rounds'] === undefined ? null : num(ctx, 'refine-rounds', 0, { min: 0, max: 20, int: true }),
    segment: paramsFrom(ctx),
    tta: ctx.values.tta === true,
    tilePx: num(ctx, 'tile', DEFAULT_TILE_PX, { min: 64, int: true }),
    writeRounds: ctx.values['no-round-maps'] !== true,
    ...pixelSizeFrom(ctx),
  };
}

function gtMembraneValue(ctx: CommandContext): number {
  const v = str(ctx, 'gt-membrane-value') ?? '0';
  if (v !== '0' && v !== '255') throw new UsageError(`--gt-membrane-value must be 0 or 255 (the value that marks membrane), got '${v}'`);
  return Number(v);
}

function summaryLines(s: BatchSummary): string[] {
  const processed = s.done + s.failed;
  const lines = [
    `batch: ${s.items} item(s)${s.shard ? ` (shard ${s.shard} of ${s.totalItems})` : ''}: ${s.done} done, ${s.unchanged} unchanged, ${s.failed} failed ` +
      `in ${formatDuration(s.seconds)}` +
      (processed > 0 ? ` — ${s.itemsPerSecond} items/s, ${s.mpxPerSecond} Mpx/s on ${s.workers} worker(s)` : ''),
  ];
  for (const f of s.failures) lines.push(`  failed ${f.key}: ${f.error}`);
  lines.push(`manifest: ${s.manifest}`);
  return lines;
}

/** Report entries: every current item (when the input is known) with its latest record, in key order. */
async function reportEntries(ctx: CommandContext, outDir: string, records: Map<string, ManifestRecord>): Promise<ReportEntry[]> {
  const input = ctx.positionals[0];
  if (input === undefined) return [...records.values()].map((r) => ({ key: r.key, input: r.input, record: r }));
  const { items } = await listBatch(input, { outDir, folderStacks: ctx.values['folder-stacks'] === true, gt: str(ctx, 'gt') });
  return items.map((item) => ({ key: item.key, input: item.input, record: records.get(item.key) }));
}

async function report(ctx: CommandContext, outDir: string, entries: ReportEntry[]): Promise<void> {
  const notice = (m: string): void => (ctx.quiet ? undefined : ctx.err(`notice: ${m}`));
  const path = await writeReport(outDir, entries, { onNotice: notice });
  ctx.err(`report: ${path}`);
}

async function merge(ctx: CommandContext, outDir: string): Promise<number> {
  if (ctx.positionals.length > 1) throw new UsageError(`--merge takes at most one input (to check that every item has a record), got ${ctx.positionals.length}`);
  const { records, badLines, files } = await mergeManifests(outDir);
  if (files.length === 0) throw new UsageError(`${outDir}: no manifest to merge (manifest.jsonl or manifest.shard-<i>-of-<N>.jsonl)`);
  if (badLines > 0 && !ctx.quiet) ctx.err(`notice: ${badLines} unreadable manifest line(s) ignored`);
  const byKey = new Map(records.map((r) => [r.key, r]));
  const entries = await reportEntries(ctx, outDir, byKey);
  const failed = entries.filter((e) => e.record?.status === 'failed');
  const missing = entries.filter((e) => !e.record);
  const done = entries.length - failed.length - missing.length;
  ctx.out(`merge: ${files.length} manifest(s) → ${entries.length} item(s): ${done} done, ${failed.length} failed${missing.length ? `, ${missing.length} missing` : ''}`);
  for (const e of failed) ctx.out(`  failed ${e.key}: ${e.record?.error ?? ''}`);
  for (const e of missing) ctx.out(`  missing ${e.key}: no record (its shard did not finish)`);
  ctx.out(`manifest: ${resolve(outDir, 'manifest.jsonl')}`);
  if (ctx.values.report === true) await report(ctx, outDir, entries);
  return failed.length + missing.length > 0 ? EXIT_PARTIAL : EXIT_OK;
}

export const batchOptions = {
  out: { type: 'string', short: 'o' },
  model: { type: 'string' },
  refiner: { type: 'string' },
  'refine-rounds': { type: 'string' },
  workers: { type: 'string' },
  threads: { type: 'string' },
  gt: { type: 'string' },
  'gt-membrane-value': { type: 'string' },
  'folder-stacks': { type: 'boolean' },
  shard: { type: 'string' },
  merge: { type: 'boolean' },
  report: { type: 'boolean' },
  verify: { type: 'boolean' },
  json: { type: 'boolean' },
  tta: { type: 'boolean' },
  tile: { type: 'string' },
  'no-round-maps': { type: 'boolean' },
  'pixel-size': { type: 'string' },
  'no-rescale': { type: 'boolean' },
  method: { type: 'string' },
  'seed-threshold': { type: 'string' },
  threshold: { type: 'string' },
  'agglomeration-threshold': { type: 'string' },
  'min-size': { type: 'string' },
} as const;

export const batchCommand: Command = {
  name: 'batch',
  summary: 'Segment a folder tree or list of stacks: resumable, parallel, with a manifest and a QC report',
  usage: 'emseg batch <input folder | list file> --out <dir> [--model <dir>] [--refine-rounds N] [--workers N] [--gt <folder>] [--report] [--shard i/N]\n       emseg batch --merge --out <dir> [<input>] [--report]',
  help: `
Every input becomes an item: each image file of the folder tree (a 2D image or a multi-page TIFF stack), or with
--folder-stacks each leaf folder of images (a folder of slices). A list file names the items one per line (relative
to the list file; a folder there is a stack; # starts a comment). Each item's outputs go to --out mirroring the input
tree, in a folder named like the input without its extension (a/20.png → <out>/a/20/):
  membrane.tif, membrane-round-<r>.tif (unless --no-round-maps), labels.tif   (as \`emseg segment\` writes them)

The manifest <out>/manifest.jsonl gets one JSON line per finished or failed item: input path and content hash,
parameters and their hash, model hash, status and one-line error, timings, output files with sizes and hashes, and
ISBI scores when --gt has ground truth for the item.

Running the same command again skips every item whose outputs are complete and whose input, parameters and model are
unchanged, and redoes the rest; a killed run (even kill -9) resumes the same way. An item's outputs are built in
<out>/.emseg/partial and renamed into place when complete, so nothing half-written looks finished.
A corrupt or unreadable input is recorded as failed and the batch goes on. Exit code 0 = all done, 3 = some failed.

Options:
  --out <dir>                   output folder (created if missing)
  --model <dir>                 a membrane model folder, or a folder with membrane/ and refiner/ (default sample-data/models)
  --refiner <dir>               refiner model folder (default: the one beside the membrane model)
  --refine-rounds <n>           refinement rounds (default: stored with the refiner; 0 = none)
  --workers <n>                 worker processes (default: the CPUs available, or SLURM_CPUS_PER_TASK)
  --threads <n>                 inference threads per worker (default: CPUs / workers)
  --gt <folder>                 ground truth mirroring the input (gt/a/20.png for a/20.png; any image extension)
  --gt-membrane-value <0|255>   membrane value of 8/16-bit ground truth (default 0, ISBI); uint32 ground truth = instances
  --folder-stacks               leaf folders of images are stacks (one item each), not one item per image
  --report                      write <out>/report.html: thumbnails, timings, scores and plots per item, self-contained
  --verify                      re-hash inputs and outputs instead of trusting sizes and modification times
  --json                        print the summary as one JSON object on stdout
  --tta, --tile <px>, --no-round-maps, --pixel-size <nm>, --no-rescale, --method, --seed-threshold, --threshold,
  --agglomeration-threshold, --min-size
                                as for \`emseg segment\`

On a cluster (see \`emseg slurm\`):
  --shard i/N                   process only the i-th of N deterministic shares of the items (1 ≤ i ≤ N); records
                                go to <out>/manifest.shard-i-of-N.jsonl
  --merge                       merge every manifest in --out into manifest.jsonl (latest record per item); with the
                                input given, items without any record are reported missing (exit code 3)
`,
  options: batchOptions,
  async run(ctx) {
    const outDir = str(ctx, 'out');
    if (!outDir) throw new UsageError('--out <dir> is required');
    if (ctx.values.merge === true) return merge(ctx, outDir);
    if (ctx.positionals.length !== 1) throw new UsageError(`expected one input (a folder, a list file or an image), got ${ctx.positionals.length}`);
    const params = batchParams(ctx);
    const models = await resolveModels(str(ctx, 'model'), str(ctx, 'refiner'));
    const shardSpec = str(ctx, 'shard');
    const shard = shardSpec === undefined ? undefined : parseShard(shardSpec);
    const workersArg = ctx.values.workers === undefined ? undefined : num(ctx, 'workers', 1, { min: 1, max: 256, int: true });
    const threads = ctx.values.threads === undefined ? undefined : num(ctx, 'threads', 1, { min: 1, max: 256, int: true });
    const json = ctx.values.json === true;
    const line = (l: string): void => (json ? ctx.err(l) : ctx.out(l));

    let bar: ReturnType<typeof createProgressBar> | null = null;
    const summary = await runBatch({
      input: ctx.positionals[0],
      outDir,
      models,
      params,
      gt: str(ctx, 'gt'),
      gtMembraneValue: gtMembraneValue(ctx),
      folderStacks: ctx.values['folder-stacks'] === true,
      workers: workersArg,
      threads,
      shard,
      verify: ctx.values.verify === true,
      onNotice: (m) => (ctx.quiet ? undefined : ctx.err(`notice: ${m}`)),
      onPlan: (p) => {
        if (!ctx.quiet) {
          const parts = [`${p.items} item(s)`, p.shard ? `shard ${p.shard} of ${p.totalItems}` : '', p.unchanged ? `${p.unchanged} unchanged (skipped)` : ''];
          parts.push(p.todo ? `${p.todo} to do on ${p.workers} worker(s) × ${p.threads} thread(s)` : 'nothing to do');
          ctx.err(`batch: ${parts.filter(Boolean).join(', ')}`);
        }
        bar = createProgressBar('batch', p.todo, { quiet: ctx.quiet, unit: ' items' });
      },
      onProgress: (p) => {
        if (p.record.status === 'failed' && !ctx.quiet) ctx.err(`failed: ${p.record.key}: ${p.record.error}`);
        const mpxs = p.elapsedSeconds > 0 ? p.processedMpx / p.elapsedSeconds : 0;
        bar?.update(p.finished, p.total, `${p.done} done, ${p.failed} failed, ${mpxs.toFixed(2)} Mpx/s`);
      },
    });
    (bar as ReturnType<typeof createProgressBar> | null)?.done(`${summary.done} done, ${summary.failed} failed`);
    for (const l of summaryLines(summary)) line(l);
    if (json) ctx.out(JSON.stringify(summary));
    if (ctx.values.report === true) {
      if (shard && shard.count > 1) ctx.err('notice: --report with --shard: the report is written by the merge step (emseg batch --merge --report)');
      else {
        const { records } = await latestRecords(outDir);
        await report(ctx, outDir, await reportEntries(ctx, resolve(outDir), records));
      }
    }
    return summary.failed > 0 ? EXIT_PARTIAL : EXIT_OK;
  },
};
