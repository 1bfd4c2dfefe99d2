// Running a batch on a Slurm cluster, with Slurm doing the scheduling (no home-made scheduler): a job array whose
// task i runs `emseg batch … --shard i/N`, and a merge job that depends on the whole array (afterany, so it also runs
// when some tasks failed, and records what is missing) and runs `emseg batch --merge`. This file only writes the
// scripts; submitting is `sbatch` (submit.sh, or `emseg slurm --submit`).
//
//   <out>/slurm/emseg-batch.sbatch   the array (#SBATCH --array=1-N)
//   <out>/slurm/emseg-merge.sbatch   the merge step
//   <out>/slurm/submit.sh            sbatch the array, then the merge with --dependency=afterany:<array job>
//   <out>/slurm/logs/                one log per task (Slurm does not create the folder itself)

export interface SlurmOptions {
  /** `emseg batch` arguments — input, --out and options, with absolute paths — without --shard, --merge, --report. */
  batchArgs: string[];
  /** Folder of the scripts and logs. */
  scriptDir: string;
  array: number;
  cpusPerTask: number;
  partition?: string;
  time?: string;
  mem?: string;
  /** The merge step writes report.html too. */
  report: boolean;
  /** Node and emseg.mjs as absolute paths; EMSEG_NODE in the job's environment overrides the node. */
  node: string;
  emseg: string;
  jobName?: string;
}

/** Quotes one word for bash: plain words stay readable, anything else goes in single quotes. */
export function shellQuote(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function header(o: SlurmOptions, name: string, lines: string[]): string[] {
  return [
    '#!/bin/bash',
    ...lines.map((l) => `# ${l}`),
    `#SBATCH --job-name=${name}`,
    ...(o.partition ? [`#SBATCH --partition=${o.partition}`] : []),
    ...(o.time ? [`#SBATCH --time=${o.time}`] : []),
    ...(o.mem ? [`#SBATCH --mem=${o.mem}`] : []),
  ];
}

export function slurmScripts(o: SlurmOptions): { array: string; merge: string; submit: string } {
  const name = o.jobName ?? 'emseg-batch';
  const logs = `${o.scriptDir}/logs`;
  const node = `"\${EMSEG_NODE:-${o.node}}"`;
  const emseg = shellQuote(o.emseg);
  const args = o.batchArgs.map(shellQuote).join(' ');
  const array = [
    ...header(o, name, [
      `EMSeg batch as a Slurm job array: task i of ${o.array} processes the i-th share of the items (emseg batch --shard i/${o.array}).`,
      'Written by `emseg slurm`; submit with submit.sh (which also queues the merge step).',
    ]),
    `#SBATCH --array=1-${o.array}`,
    `#SBATCH --cpus-per-task=${o.cpusPerTask}`,
    `#SBATCH --output=${logs}/${name}-%A_%a.out`,
    'set -euo pipefail',
    // Exit code 3 (some items failed) fails the task in sacct, which is right; the merge step runs regardless.
    `exec ${node} ${emseg} batch ${args} --shard "\${SLURM_ARRAY_TASK_ID}/${o.array}"`,
    '',
  ].join('\n');
  const merge = [
    ...header(o, `${name}-merge`, [
      'Merges the shard manifests of the EMSeg batch array into manifest.jsonl (emseg batch --merge) once every task has ended.',
    ]),
    '#SBATCH --cpus-per-task=1',
    `#SBATCH --output=${logs}/${name}-merge-%j.out`,
    'set -euo pipefail',
    `exec ${node} ${emseg} batch --merge ${args}${o.report ? ' --report' : ''}`,
    '',
  ].join('\n');
  const submit = [
    '#!/bin/bash',
    '# Queues the EMSeg batch array, then its merge step to run after every array task has ended (afterany).',
    'set -euo pipefail',
    `dir=${shellQuote(o.scriptDir)}`,
    'array=$(sbatch --parsable "$dir/emseg-batch.sbatch")',
    'array=${array%%;*}',
    'merge=$(sbatch --parsable --dependency=afterany:"$array" "$dir/emseg-merge.sbatch")',
    'echo "submitted: array job ${array} (' + String(o.array) + ' tasks), merge job ${merge%%;*}"',
    '',
  ].join('\n');
  return { array, merge, submit };
}
