// `emseg slurm <batch arguments> --array N`: writes the sbatch scripts that run an `emseg batch` on a Slurm cluster as
// a job array of N shards plus a dependent merge step (main/batch/slurm.ts), and with --submit queues them.
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { slurmScripts } from '../../batch/slurm';
import { UsageError, type Command, type CommandContext } from '../command';
import { num, str } from '../options';
import { batchOptions, batchParams } from './batch';
import { resolveModels } from './segment-model';

const EMSEG = fileURLToPath(new URL('../emseg.mjs', import.meta.url));
/** Options that name files: made absolute, since a job may start in another folder or on another node. */
const PATH_OPTIONS = new Set(['out', 'model', 'refiner', 'gt']);
/** Options the generated scripts set themselves. */
const OWN_OPTIONS = new Set(['merge', 'shard', 'report', 'json']);

/** The batch arguments of this command line, for the scripts: input and paths absolute, slurm options left out. */
function batchArgs(ctx: CommandContext): string[] {
  const args = [resolve(ctx.positionals[0])];
  for (const name of Object.keys(batchOptions)) {
    if (OWN_OPTIONS.has(name)) continue;
    const v = ctx.values[name];
    if (v === undefined || v === false) continue;
    if (v === true) args.push(`--${name}`);
    else args.push(`--${name}`, PATH_OPTIONS.has(name) ? resolve(String(v)) : String(v));
  }
  return args;
}

function sbatch(args: string[]): string {
  const r = spawnSync('sbatch', ['--parsable', ...args], { encoding: 'utf8' });
  if (r.error) throw new UsageError(`cannot run sbatch (${r.error.message}): is Slurm installed on this machine?`);
  if (r.status !== 0) throw new UsageError(`sbatch failed: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? `exit code ${r.status}`}`);
  // --parsable prints "<job id>" or "<job id>;<cluster>".
  return r.stdout.trim().split(';')[0];
}

const { merge: _merge, shard: _shard, json: _json, ...forwarded } = batchOptions;

export const slurmCommand: Command = {
  name: 'slurm',
  summary: 'Write (and with --submit queue) a Slurm job array running a batch in shards, then merging',
  usage: 'emseg slurm <input> --out <dir> [batch options] --array N [--partition P] [--time T] [--mem M] [--cpus-per-task C] [--submit]',
  help: `
Writes sbatch scripts that run \`emseg batch <input> --out <dir> [batch options]\` on a Slurm cluster:
  <out>/slurm/emseg-batch.sbatch   a job array of N tasks; task i runs \`emseg batch … --shard i/N\` (its own
                                   deterministic share of the items, its own manifest.shard-i-of-N.jsonl)
  <out>/slurm/emseg-merge.sbatch   runs after every task has ended (afterany): \`emseg batch --merge\` joins the
                                   shard manifests into manifest.jsonl (and writes report.html with --report)
  <out>/slurm/submit.sh            queues both: bash <out>/slurm/submit.sh
Task logs go to <out>/slurm/logs/. Each task is resumable like any batch: resubmitting redoes only what is missing.
The scripts run node from this machine's path; set EMSEG_NODE in the job environment to use another.

Options (besides every \`emseg batch\` option):
  --array <N>             number of shards (array tasks)
  --partition <P>         Slurm partition
  --time <T>              time limit per task, e.g. 2:00:00
  --mem <M>               memory per task, e.g. 8G
  --cpus-per-task <C>     CPUs per task (default: --workers × --threads, or 2); the batch uses them all
  --job-name <name>       default emseg-batch
  --script-dir <dir>      where to write the scripts (default <out>/slurm)
  --submit                queue the array and the merge step now (sbatch) and print their job ids
`,
  options: {
    ...forwarded,
    array: { type: 'string' },
    partition: { type: 'string' },
    time: { type: 'string' },
    mem: { type: 'string' },
    'cpus-per-task': { type: 'string' },
    'job-name': { type: 'string' },
    'script-dir': { type: 'string' },
    submit: { type: 'boolean' },
  },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError(`expected one input (a folder, a list file or an image), got ${ctx.positionals.length}`);
    const outDir = str(ctx, 'out');
    if (!outDir) throw new UsageError('--out <dir> is required');
    if (ctx.values.array === undefined) throw new UsageError('--array <N> is required (the number of shards)');
    const array = num(ctx, 'array', 1, { min: 1, max: 100000, int: true });
    // Fail here, on the login node, rather than in N array tasks.
    batchParams(ctx);
    await resolveModels(str(ctx, 'model'), str(ctx, 'refiner'));
    for (const [name, v] of [['partition', str(ctx, 'partition')], ['time', str(ctx, 'time')], ['mem', str(ctx, 'mem')], ['job-name', str(ctx, 'job-name')]] as const) {
      if (v !== undefined && !/^[\w:.,+-]+$/.test(v)) throw new UsageError(`--${name} '${v}': unexpected characters for an sbatch option`);
    }
    const workers = ctx.values.workers === undefined ? undefined : num(ctx, 'workers', 1, { min: 1, int: true });
    const threads = ctx.values.threads === undefined ? undefined : num(ctx, 'threads', 1, { min: 1, int: true });
    const cpusPerTask = num(ctx, 'cpus-per-task', workers ? workers * (threads ?? 1) : 2, { min: 1, max: 4096, int: true });
    const scriptDir = resolve(str(ctx, 'script-dir') ?? join(outDir, 'slurm'));
    await mkdir(join(scriptDir, 'logs'), { recursive: true });
    const scripts = slurmScripts({
      batchArgs: batchArgs(ctx),
      scriptDir,
      array,
      cpusPerTask,
      partition: str(ctx, 'partition'),
      time: str(ctx, 'time'),
      mem: str(ctx, 'mem'),
      report: ctx.values.report === true,
      node: process.execPath,
      emseg: EMSEG,
      jobName: str(ctx, 'job-name'),
    });
    const arrayPath = join(scriptDir, 'emseg-batch.sbatch');
    const mergePath = join(scriptDir, 'emseg-merge.sbatch');
    const submitPath = join(scriptDir, 'submit.sh');
    await writeFile(arrayPath, scripts.array);
    await writeFile(mergePath, scripts.merge);
    await writeFile(submitPath, scripts.submit);
    await chmod(submitPath, 0o755);
    ctx.out(`wrote ${arrayPath} (${array} task(s), ${cpusPerTask} CPU(s) each), ${mergePath}, ${submitPath}`);
    if (ctx.values.submit !== true) {
      ctx.out(`submit with: bash ${submitPath}`);
      return 0;
    }
    const arrayJob = sbatch([arrayPath]);
    const mergeJob = sbatch([`--dependency=afterany:${arrayJob}`, mergePath]);
    ctx.out(`submitted: array job ${arrayJob} (${array} tasks), merge job ${mergeJob}`);
    return 0;
  },
};
