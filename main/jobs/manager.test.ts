// The job manager's bookkeeping with a scripted stand-in for the job process (the real process and engine are
// exercised end to end in e2e/): one job at a time, progress and ETA, ready slices, failures, and cancel killing
// the process whether the job is queued or running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiEvent } from '../api/contract';
import { JobManager } from './manager';
import type { FromJob, JobProcess, ToJob } from './protocol';

class ScriptedProcess implements JobProcess {
  received: ToJob[] = [];
  killed = false;
  private onMsg: (m: FromJob) => void = () => undefined;
  private onEnd: (code: number | null) => void = () => undefined;
  send(m: ToJob) {
    this.received.push(m);
  }
  onMessage(l: (m: FromJob) => void) {
    this.onMsg = l;
  }
  onExit(l: (code: number | null) => void) {
    this.onEnd = l;
  }
  kill() {
    this.killed = true;
    this.onEnd(null);
  }
  emit(m: FromJob) {
    this.onMsg(m);
  }
  exit(code: number) {
    this.onEnd(code);
  }
}

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-jobs-test-'));
  const procs: ScriptedProcess[] = [];
  const events: ApiEvent[] = [];
  const ended: { jobId: string; state: string }[] = [];
  let now = 1000;
  const m = new JobManager({
    spawn: () => {
      const p = new ScriptedProcess();
      procs.push(p);
      return p;
    },
    resultsDir: dir,
    emit: (e) => events.push(e),
    now: () => now,
    // What the job's state is when onEnd runs: it must already be final (open projects read the ready slices then).
    onEnd: (jobId) => ended.push({ jobId, state: m.list().find((j) => j.jobId === jobId)?.state ?? '?' }),
  });
  const tick = (ms: number) => {
    now += ms;
  };
  const settle = () => new Promise((r) => setTimeout(r, 20));
  return { m, procs, events, ended, tick, settle, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const stack = { stackId: 's1', name: 'stack', path: '/data/stack' };

test('jobs run one at a time, report progress, ETA and ready slices, then finish', async () => {
  const { m, procs, events, ended, tick, settle, cleanup } = await setup();
  const a = m.start('segment', stack, { slices: [0, 1] });
  const b = m.start('predict', stack, {});
  await settle();
  assert.equal(procs.length, 1, 'the second job waits');
  assert.equal(m.list().find((j) => j.jobId === b.jobId)?.state, 'queued');
  assert.deepEqual(procs[0].received[0], { type: 'start', kind: 'segment', stackPath: '/data/stack', params: { slices: [0, 1] }, outDir: join(procs[0].received[0].outDir, '..', a.jobId) });
  tick(5000); // model loading
  procs[0].emit({ type: 'progress', done: 1, total: 8, stage: 'predict', slice: 0 });
  tick(2000);
  procs[0].emit({ type: 'progress', done: 3, total: 8, stage: 'refine', slice: 0 });
  const eta = m.list()[0].etaSeconds;
  assert.equal(eta, 5, '1 s per unit since the first report, 5 units left');
  procs[0].emit({ type: 'slice', z: 0, rounds: 3, hasLabels: true });
  assert.deepEqual(m.list()[0].readySlices, [0]);
  // The engine's one-line notices are kept with the job, each once, and pushed with it.
  const said = 'pixel size: stack 8 nm, model 4 nm; slices are resized 2× for the models and the maps back';
  procs[0].emit({ type: 'notice', message: said });
  procs[0].emit({ type: 'notice', message: said });
  assert.deepEqual(m.list()[0].notices, [said]);
  assert.equal(events.filter((e) => e.type === 'job' && e.job.notices.includes(said)).length, 1, 'a repeated notice is not pushed again');
  assert.ok(events.some((e) => e.type === 'job' && e.job.jobId === a.jobId && e.job.notices.includes(said)));
  assert.ok(events.some((e) => e.type === 'slice' && e.z === 0 && e.jobId === a.jobId));
  procs[0].emit({ type: 'done' });
  procs[0].exit(0);
  await settle();
  const done = m.list().find((j) => j.jobId === a.jobId);
  assert.equal(done?.state, 'done');
  assert.equal(done?.rounds, 3);
  assert.equal(done?.hasLabels, true);
  assert.deepEqual(ended, [{ jobId: a.jobId, state: 'done' }]);
  assert.equal(procs.length, 2, 'the queued job starts');
  assert.equal(m.list().find((j) => j.jobId === b.jobId)?.state, 'running');
  await m.close();
  assert.equal(procs[1].killed, true, 'close ends running jobs');
  await cleanup();
});

test('cancel: a running job is killed at once, a queued one never starts', async () => {
  const { m, procs, ended, settle, cleanup } = await setup();
  const a = m.start('segment', stack, {});
  const b = m.start('refine', stack, {});
  await settle();
  assert.equal(m.cancel(b.jobId), true);
  assert.equal(m.cancel(a.jobId), true);
  assert.equal(procs[0].killed, true);
  await settle();
  assert.equal(procs.length, 1, 'the cancelled queued job never spawned');
  assert.deepEqual(
    m.list().map((j) => j.state),
    ['cancelled', 'cancelled'],
  );
  assert.equal(m.cancel(a.jobId), false, 'cancelling twice is a no-op');
  assert.deepEqual(ended, [
    { jobId: b.jobId, state: 'cancelled' },
    { jobId: a.jobId, state: 'cancelled' },
  ]);
  // Messages from a process after its job was cancelled change nothing.
  procs[0].emit({ type: 'slice', z: 4, rounds: 1, hasLabels: false });
  assert.deepEqual(m.list()[0].readySlices, []);
  await cleanup();
});

test('a job process that fails or dies makes the job failed with one line, and the queue goes on', async () => {
  const { m, procs, ended, settle, cleanup } = await setup();
  m.start('predict', stack, {});
  m.start('predict', stack, {});
  await settle();
  procs[0].emit({ type: 'error', message: '/data/stack/3.png: truncated' });
  procs[0].exit(1);
  await settle();
  procs[1].exit(137);
  await settle();
  const [first, second] = m.list();
  assert.equal(first.state, 'failed');
  assert.equal(first.error, '/data/stack/3.png: truncated');
  assert.equal(second.state, 'failed');
  assert.match(second.error ?? '', /ended unexpectedly \(exit code 137\)/);
  assert.deepEqual(
    ended.map((e) => e.state),
    ['failed', 'failed'],
    'onEnd once per job, after its final state',
  );
  await cleanup();
});
