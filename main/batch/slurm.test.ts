// `emseg slurm` against a real Slurm (Debian's slurm-wlm and munge): the test starts munged, slurmctld and slurmd on
// this machine as a one-node cluster in a temporary folder (root, proctrack/linuxproc, no cgroups), submits a 2-task
// array over the sample data plus its merge step, and checks that the merged manifest and the outputs equal a local
// run's. Where Slurm cannot be started (not installed, not root, a daemon that does not come up) the test is skipped
// with the reason printed. The daemons are stopped at the end, whatever happened.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAMPLE_STACK } from '../engine/models';
import { hashFile } from './hash';
import { readManifestFile, type ManifestRecord } from './manifest';
import { writeTinyModels } from './fixtures';

const EMSEG = fileURLToPath(new URL('../cli/emseg.mjs', import.meta.url));
const SAMPLE_LABELS = join(SAMPLE_STACK, '..', 'label');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir = '';
let skipReason: string | null = null;
const env: NodeJS.ProcessEnv = { ...process.env };
const daemons: Array<{ name: string; pidFile: string }> = [];

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0 || spawnSync('test', ['-x', `/usr/sbin/${cmd}`]).status === 0;
}

function run(cmd: string, args: string[], timeoutMs = 30_000): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function tail(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-3).join(' | ');
}

async function startSlurm(): Promise<string | null> {
  const missing = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'scontrol', 'sinfo'].filter((c) => !which(c));
  if (missing.length) return `Slurm is not installed (missing ${missing.join(', ')}; apt-get install slurm-wlm munge)`;
  if (process.getuid?.() !== 0) return 'slurmd must run as root to start jobs, and this test is not root';
  const host = hostname();
  const munge = join(dir, 'munge');
  await mkdir(munge, { recursive: true });
  await mkdir(join(dir, 'state'), { recursive: true });
  await mkdir(join(dir, 'spool'), { recursive: true });
  await mkdir(join(dir, 'log'), { recursive: true });
  // munged insists on a private key file; 1 KiB of random bytes is a valid key.
  const key = join(munge, 'munge.key');
  await writeFile(key, (await import('node:crypto')).randomBytes(1024));
  await chmod(key, 0o600);
  const socket = join(munge, 'munge.socket');
  const mungePid = join(munge, 'munged.pid');
  const m = run('munged', ['--force', `--socket=${socket}`, `--key-file=${key}`, `--log-file=${join(munge, 'munged.log')}`, `--pid-file=${mungePid}`, `--seed-file=${join(munge, 'seed')}`]);
  if (m.status !== 0) return `munged did not start: ${m.out.trim().split('\n').pop()}`;
  daemons.push({ name: 'munged', pidFile: mungePid });
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'slurm.conf');
  await writeFile(
    conf,
    [
      'ClusterName=emsegtest',
      `SlurmctldHost=${host}`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'SchedulerType=sched/backfill',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'ReturnToService=2',
      'MpiDefault=none',
      `NodeName=${host} CPUs=2 State=UNKNOWN`,
      `PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  env.SLURM_CONF = conf;
  const ctld = run('slurmctld', ['-f', conf]);
  if (ctld.status !== 0) return `slurmctld did not start: ${ctld.out.trim() || (await tail(join(dir, 'log', 'slurmctld.log')))}`;
  daemons.push({ name: 'slurmctld', pidFile: join(dir, 'slurmctld.pid') });
  const d = run('slurmd', ['-f', conf]);
  if (d.status !== 0) return `slurmd did not start: ${d.out.trim() || (await tail(join(dir, 'log', 'slurmd.log')))}`;
  daemons.push({ name: 'slurmd', pidFile: join(dir, 'slurmd.pid') });
  for (let i = 0; i < 60; i++) {
    const state = run('sinfo', ['-h', '-o', '%T']).out.trim();
    if (state === 'idle') return null;
    await sleep(500);
  }
  return `the Slurm node did not become idle within 30 s (${run('sinfo', ['-h', '-o', '%T']).out.trim()}; slurmd log: ${await tail(join(dir, 'log', 'slurmd.log'))})`;
}

async function stopSlurm(): Promise<void> {
  if (env.SLURM_CONF) run('scancel', ['--full', '--user=root'], 10_000);
  for (const { pidFile } of [...daemons].reverse()) {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (!(pid > 0)) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await sleep(100);
    }
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'emseg-slurm-'));
  try {
    skipReason = await startSlurm();
  } catch (e) {
    skipReason = `Slurm could not be set up: ${(e as Error).message}`;
  }
  if (skipReason) console.log(`# slurm test skipped: ${skipReason}`);
});

after(async () => {
  await stopSlurm();
  await rm(dir, { recursive: true, force: true });
});

function cli(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [EMSEG, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function waitForJob(id: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = /JobState=(\w+)/.exec(run('scontrol', ['show', 'job', id]).out)?.[1] ?? 'UNKNOWN';
    if (['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY'].includes(state)) return state;
    if (Date.now() > deadline) return `still ${state} after ${timeoutMs / 1000} s`;
    await sleep(1000);
  }
}

test('emseg slurm: a 2-task job array and its merge step give the manifest and outputs of a local run', { timeout: 420_000 }, async (t) => {
  if (skipReason) {
    t.skip(skipReason);
    return;
  }
  const models = await writeTinyModels(join(dir, 'models'));
  const common = [SAMPLE_STACK, '--model', models, '--gt', SAMPLE_LABELS, '--workers', '1', '--threads', '1', '--quiet'];
  const slurmOut = join(dir, 'out-slurm');
  const sub = await cli(['slurm', ...common, '--out', slurmOut, '--array', '2', '--cpus-per-task', '1', '--time', '10:00', '--report', '--submit'], 60_000);
  assert.equal(sub.code, 0, sub.out);
  const ids = /submitted: array job (\d+) \(2 tasks\), merge job (\d+)/.exec(sub.out);
  assert.ok(ids, sub.out);
  const state = await waitForJob(ids[2], 300_000);
  const logs = join(slurmOut, 'slurm', 'logs');
  const logText = async () => (await Promise.all((await readdir(logs)).map(async (f) => `${f}: ${await readFile(join(logs, f), 'utf8')}`))).join('\n');
  assert.equal(state, 'COMPLETED', await logText());
  assert.equal((await readdir(logs)).length, 3, 'one log per array task and one for the merge');

  const local = join(dir, 'out-local');
  const loc = await cli(['batch', ...common, '--out', local], 300_000);
  assert.equal(loc.code, 0, loc.out);

  const shards = [1, 2].map((i) => readManifestFile(join(slurmOut, `manifest.shard-${i}-of-2.jsonl`)));
  const [s1, s2] = await Promise.all(shards);
  assert.deepEqual([s1.records.length, s2.records.length], [5, 5], 'each task did its half');
  assert.deepEqual(new Set(s1.records.map((r) => r.shard)), new Set(['1/2']));

  const merged = (await readManifestFile(join(slurmOut, 'manifest.jsonl'))).records;
  const mine = (await readManifestFile(join(local, 'manifest.jsonl'))).records;
  const comparable = (r: ManifestRecord) => ({ key: r.key, status: r.status, input: r.input, inputHash: r.inputHash, paramsHash: r.paramsHash, model: r.model, outputs: r.outputs, metrics: r.metrics });
  assert.equal(merged.length, 10);
  assert.ok(merged.every((r) => r.status === 'done' && r.metrics && typeof r.metrics.vrand === 'number'));
  assert.deepEqual(merged.map(comparable), [...mine].sort((a, b) => Number(a.key) - Number(b.key)).map(comparable));
  // The outputs on disk are the recorded ones, byte for byte, in both places.
  for (const r of merged) {
    for (const o of r.outputs!) {
      assert.equal((await hashFile(join(slurmOut, r.key, o.file))).sha256, o.sha256);
      assert.equal((await hashFile(join(local, r.key, o.file))).sha256, o.sha256);
    }
  }
  const html = await readFile(join(slurmOut, 'report.html'), 'utf8');
  assert.equal((html.match(/class="card[^"]*" id="item-/g) ?? []).length, 10, 'the merge step wrote the report');
});
