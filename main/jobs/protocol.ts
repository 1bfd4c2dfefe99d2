// Messages between the job manager (server or Electron main process) and one job process. Small JSON messages only:
// pixels never travel this way; the job process writes them to result files (results.ts) and says which slice is done.
import type { JobKind, JobParams } from '../api/contract';

export interface StartJob {
  type: 'start';
  kind: JobKind;
  stackPath: string;
  params: JobParams;
  /** Folder the job writes its result files into (created by the manager). */
  outDir: string;
}

export type ToJob = StartJob;

export type FromJob =
  | { type: 'progress'; done: number; total: number; stage: string; slice?: number }
  /** Results of slice z are on disk: `rounds` membrane maps, and labels when hasLabels. */
  | { type: 'slice'; z: number; rounds: number; hasLabels: boolean }
  /** One line the engine said about the run (shown with the job). */
  | { type: 'notice'; message: string }
  | { type: 'done' }
  | { type: 'error'; message: string };

/** The parts of a child process or Electron utility process the manager uses. */
export interface JobProcess {
  send(message: ToJob): void;
  onMessage(listener: (message: FromJob) => void): void;
  onExit(listener: (code: number | null) => void): void;
  /** Ends the process now: how a running job is cancelled (it frees the model's memory at once). */
  kill(): void;
}

export type SpawnJobProcess = () => JobProcess;
