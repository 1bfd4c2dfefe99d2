// The job manager: a queue of predict/refine/segment jobs, one running at a time (a job already uses every core),
// each in its own process (a Node child process in browser mode, an Electron utility process in the app) so the
// event loop that serves the viewer never runs model code. It keeps each job's progress, ETA and ready slices, pushes
// them as events, and cancels by ending the process. Results stay in the session's cache folder until close().
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiEvent, JobInfo, JobKind, JobParams } from '../api/contract';
import type { FromJob, JobProcess, SpawnJobProcess } from './protocol';

export interface JobStack {
  stackId: string;
  name: string;
  path: string;
}

interface Job {
  info: JobInfo;
  stackPath: string;
  params: JobParams;
  outDir: string;
  process: JobProcess | null;
  ready: Set<number>;
  /** First progress report with work done: the ETA's rate is measured from here, after model loading. */
  rateStart: { t: number; done: number } | null;
  lastEventAt: number;
}

// Progress events at most this often per job: a bar needs no more, and a 1000-slice job would flood the socket.
const PROGRESS_EVENT_INTERVAL_MS = 200;
/** A job keeps at most this many distinct notices (the engine says each once per run). */
const MAX_NOTICES = 20;

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running: Job | null = null;
  private counter = 0;

  constructor(
    private readonly opts: {
      spawn: SpawnJobProcess;
      resultsDir: string;
      emit: (e: ApiEvent) => void;
      now?: () => number;
      /** Called once when a job ends (done, failed or cancelled), after its final event: open projects save then. */
      onEnd?: (jobId: string) => void;
    },
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  start(kind: JobKind, stack: JobStack, params: JobParams): JobInfo {
    const jobId = `j${++this.counter}`;
    const job: Job = {
      info: {
        jobId,
        kind,
        stackId: stack.stackId,
        stackName: stack.name,
        state: 'queued',
        done: 0,
        total: 0,
        stage: 'queued',
        etaSeconds: null,
        createdAt: this.now(),
        startedAt: null,
        finishedAt: null,
        error: null,
        notices: [],
        readySlices: [],
        rounds: 0,
        hasLabels: false,
        ...(params.membraneModel !== undefined ? { membraneModel: params.membraneModel } : {}),
      },
      stackPath: stack.path,
      params,
      outDir: join(this.opts.resultsDir, jobId),
      process: null,
      ready: new Set(),
      rateStart: null,
      lastEventAt: 0,
    };
    this.jobs.set(jobId, job);
    this.queue.push(job);
    this.emit(job);
    void this.pump();
    return this.snapshot(job);
  }

  /**
   * Registers results made outside this manager (a batch item's maps and labels, already written into `outDir` in
   * the job result layout) as a finished job, so the viewer shows them like any job's. The folder is not deleted by
   * close() unless it lies in the results folder.
   */
  adopt(kind: JobKind, stack: JobStack, outDir: string, result: { rounds: number; hasLabels: boolean; slices: number[]; stage: string }): JobInfo {
    const jobId = `j${++this.counter}`;
    const t = this.now();
    const job: Job = {
      info: {
        jobId, kind, stackId: stack.stackId, stackName: stack.name, state: 'done', done: result.slices.length, total: result.slices.length,
        stage: result.stage, etaSeconds: 0, createdAt: t, startedAt: t, finishedAt: t, error: null, notices: [], readySlices: [],
        rounds: result.rounds, hasLabels: result.hasLabels,
      },
      stackPath: stack.path,
      params: {},
      outDir,
      process: null,
      ready: new Set(result.slices),
      rateStart: null,
      lastEventAt: 0,
    };
    this.jobs.set(jobId, job);
    this.emit(job);
    return this.snapshot(job);
  }

  /** A fresh folder inside the session's results folder (for adopted results). */
  resultFolder(name: string): string {
    return join(this.opts.resultsDir, name);
  }

  cancel(jobId: string): boolean {
    const job = this.jobs.get(jobId);
    if (!job || (job.info.state !== 'queued' && job.info.state !== 'running')) return false;
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    this.finish(job, 'cancelled', null);
    job.process?.kill();
    return true;
  }

  list(): JobInfo[] {
    return [...this.jobs.values()].map((j) => this.snapshot(j));
  }

  get(jobId: string): { info: JobInfo; outDir: string; ready: ReadonlySet<number> } | undefined {
    const j = this.jobs.get(jobId);
    return j && { info: this.snapshot(j), outDir: j.outDir, ready: j.ready };
  }

  /** Ends every job process and deletes the session's results. */
  async close(): Promise<void> {
    this.queue.length = 0;
    for (const j of this.jobs.values()) if (j.info.state === 'running' || j.info.state === 'queued') this.cancel(j.info.jobId);
    await rm(this.opts.resultsDir, { recursive: true, force: true });
  }

  private snapshot(j: Job): JobInfo {
    return { ...j.info, notices: [...j.info.notices], readySlices: [...j.ready].sort((a, b) => a - b) };
  }

  private emit(j: Job): void {
    j.lastEventAt = this.now();
    this.opts.emit({ type: 'job', job: this.snapshot(j) });
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    try {
      await mkdir(job.outDir, { recursive: true });
      if (job.info.state !== 'queued') {
        // Cancelled while the folder was being made: go on with the next job.
        this.running = null;
        void this.pump();
        return;
      }
      job.info.state = 'running';
      job.info.stage = 'starting';
      job.info.startedAt = this.now();
      this.emit(job);
      const p = this.opts.spawn();
      job.process = p;
      p.onMessage((m) => this.onMessage(job, m));
      p.onExit((code) => {
        job.process = null;
        if (job.info.state === 'running') this.finish(job, 'failed', `the job process ended unexpectedly (exit code ${code ?? 'signal'})`);
        if (this.running === job) {
          this.running = null;
          void this.pump();
        }
      });
      p.send({ type: 'start', kind: job.info.kind, stackPath: job.stackPath, params: job.params, outDir: job.outDir });
    } catch (e) {
      this.finish(job, 'failed', e instanceof Error ? e.message : String(e));
      this.running = null;
      void this.pump();
    }
  }

  private onMessage(job: Job, m: FromJob): void {
    if (job.info.state !== 'running') return;
    switch (m.type) {
      case 'progress': {
        const t = this.now();
        job.info.done = m.done;
        job.info.total = m.total;
        job.info.stage = m.stage;
        if (m.done > 0 && !job.rateStart) job.rateStart = { t, done: m.done };
        const rs = job.rateStart;
        if (rs && m.done > rs.done) {
          const perUnitMs = (t - rs.t) / (m.done - rs.done);
          job.info.etaSeconds = Math.max(0, ((m.total - m.done) * perUnitMs) / 1000);
        } else if (rs && job.info.startedAt !== null && m.done > 0) {
          // One data point so far: estimate from the start of the job (slightly pessimistic: includes model loading).
          job.info.etaSeconds = (((t - job.info.startedAt) / m.done) * (m.total - m.done)) / 1000;
        }
        if (t - job.lastEventAt >= PROGRESS_EVENT_INTERVAL_MS) this.emit(job);
        break;
      }
      case 'slice':
        job.ready.add(m.z);
        job.info.rounds = Math.max(job.info.rounds, m.rounds);
        job.info.hasLabels ||= m.hasLabels;
        this.opts.emit({ type: 'slice', jobId: job.info.jobId, z: m.z });
        this.emit(job);
        break;
      case 'notice':
        if (!job.info.notices.includes(m.message) && job.info.notices.length < MAX_NOTICES) {
          job.info.notices.push(m.message);
          this.emit(job);
        }
        break;
      case 'done':
        job.info.done = job.info.total;
        job.info.etaSeconds = 0;
        this.finish(job, 'done', null);
        break;
      case 'error':
        this.finish(job, 'failed', m.message);
        break;
    }
  }

  private finish(job: Job, state: 'done' | 'failed' | 'cancelled', error: string | null): void {
    job.info.state = state;
    job.info.error = error;
    job.info.stage = state;
    job.info.finishedAt = this.now();
    if (state !== 'done') job.info.etaSeconds = null;
    this.emit(job);
    this.opts.onEnd?.(job.info.jobId);
  }
}
