// The batch's worker processes: N long-lived Node processes (worker-boot.mjs → worker-process.ts), each taking the next
// item as soon as it is free. Each item streams its slices, so a worker's memory does not grow with the number of
// items it has done or the length of a stack. A worker that dies mid-item (a native decoder crash, the kernel's OOM
// killer) costs that item only: it is recorded as failed and a fresh worker takes the next one.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ItemOutcome, ItemTask, ToWorker } from './task';
import { failedRecord } from './task';

const BOOT = fileURLToPath(new URL('./worker-boot.mjs', import.meta.url));

export interface PoolHooks {
  /** Called in completion order, one at a time (the next outcome waits for the previous call). */
  onOutcome(outcome: ItemOutcome): Promise<void>;
  onStart?(task: ItemTask): void;
  onNotice?(key: string, message: string): void;
  /**
   * Stops the pool: no further items start, running workers are killed (SIGKILL, as a user's kill -9 would: the
   * batch is built to survive exactly that), and their items are not recorded, so the next run redoes them.
   */
  signal?: AbortSignal;
}

export interface PoolStats {
  workersStarted: number;
  /** Peak resident memory of any one worker process, as the workers reported it. */
  maxWorkerRssKiB: number;
}

class WorkerProcess {
  private pending: { resolve: (r: { outcome: ItemOutcome; maxRssKiB: number }) => void; reject: (e: Error) => void } | null = null;
  private exitReason: string | null = null;

  private constructor(
    private readonly child: ChildProcess,
    private readonly onNotice?: (key: string, message: string) => void,
  ) {
    child.on('message', (m: FromWorker) => {
      if (m.type === 'notice') this.onNotice?.(m.key, m.message);
      else if (m.type === 'result' && this.pending) {
        const p = this.pending;
        this.pending = null;
        p.resolve({ outcome: m.outcome, maxRssKiB: m.maxRssKiB });
      }
    });
    child.on('exit', (code, signal) => {
      this.exitReason = signal
        ? `worker process was killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}`
        : `worker process exited with code ${code ?? '?'}`;
      const p = this.pending;
      this.pending = null;
      p?.reject(new Error(this.exitReason));
    });
  }

  static start(boot: string, onNotice?: (key: string, message: string) => void): Promise<WorkerProcess> {
    // execArgv [] so a worker does not inherit the parent's --test or --inspect flags; the boot file registers tsx.
    const child = fork(boot, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.type !== 'ready') return;
        cleanup();
        resolve(new WorkerProcess(child, onNotice));
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        reject(new Error(`batch worker process failed to start (${signal ?? `exit code ${code}`})`));
      };
      const onError = (e: Error) => {
        cleanup();
        reject(e);
      };
      function cleanup() {
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      }
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.on('error', onError);
    });
  }

  get alive(): boolean {
    return this.exitReason === null;
  }

  run(task: ItemTask): Promise<{ outcome: ItemOutcome; maxRssKiB: number }> {
    if (!this.alive) return Promise.reject(new Error(this.exitReason ?? 'worker process is gone'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.child.send({ type: 'item', task } satisfies ToWorker);
    });
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  /** Closing the channel is the worker's signal to exit (see worker-process.ts). */
  stop(): void {
    if (this.child.connected) this.child.disconnect();
  }
}

/**
 * Runs every task on up to `size` worker processes; resolves when all are recorded. `boot` is the worker's entry
 * file (tests give a stand-in that crashes on cue).
 */
export async function runPool(tasks: readonly ItemTask[], size: number, hooks: PoolHooks, boot = BOOT): Promise<PoolStats> {
  const stats: PoolStats = { workersStarted: 0, maxWorkerRssKiB: 0 };
  let next = 0;
  // Outcomes are handed to onOutcome one at a time, so the manifest is appended by one writer in a defined order.
  let recording: Promise<void> = Promise.resolve();
  const record = (o: ItemOutcome): Promise<void> => (recording = recording.then(() => hooks.onOutcome(o)));

  // A worker that cannot even start (a broken install) would fail every item the same way: stop the batch instead.
  let fatal: unknown = null;

  const workers = new Set<WorkerProcess>();
  const onAbort = (): void => {
    for (const w of workers) w.kill();
  };
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  const stopped = (): boolean => hooks.signal?.aborted === true;

  async function lane(): Promise<void> {
    let worker: WorkerProcess | null = null;
    try {
      while (next < tasks.length && fatal === null && !stopped()) {
        if (!worker || !worker.alive) {
          try {
            worker = await WorkerProcess.start(boot, hooks.onNotice);
            workers.add(worker);
            if (stopped()) break;
          } catch (e) {
            fatal ??= e;
            return;
          }
          stats.workersStarted++;
        }
        if (next >= tasks.length) break;
        const task = tasks[next++];
        hooks.onStart?.(task);
        const start = new Date();
        try {
          const r = await worker.run(task);
          stats.maxWorkerRssKiB = Math.max(stats.maxWorkerRssKiB, r.maxRssKiB);
          await record(r.outcome);
        } catch (e) {
          // A worker killed by stop() did not fail its item: leave it unrecorded, to be redone by the next run.
          if (!stopped()) await record({ record: failedRecord(task, e, start), unchanged: false });
          worker = null;
        }
      }
    } finally {
      worker?.stop();
      if (worker) workers.delete(worker);
    }
  }

  await Promise.all(Array.from({ length: Math.max(1, Math.min(size, tasks.length)) }, () => lane()));
  await recording;
  hooks.signal?.removeEventListener('abort', onAbort);
  if (fatal !== null) throw fatal;
  return stats;
}
