// Entry of one job process: receives one StartJob, runs the engine's pipeline over the stack, writes each slice's
// results to the job's folder and reports progress, then exits. It runs as a Node child process (browser mode, via
// job-boot.mjs) or as an Electron utility process (the app, built to out/main/job-process.mjs), so the model's
// minutes of compute never touch the event loop that serves the viewer. Cancelling is killing this process.
import { mkdir } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { writeFileAtomic } from '../engine/atomic';
import { runPipeline, type PipelineOptions } from '../engine/pipeline';
import type { SegmentParams } from '../../ml/segmentation';
import type { FromJob, StartJob, ToJob } from './protocol';
import { resultFile } from './results';

/** Electron's utility-process port (process.parentPort), typed narrowly: the two members we use. */
interface ParentPort {
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
  postMessage(message: unknown): void;
}

const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;

function post(m: FromJob): void {
  if (parentPort) parentPort.postMessage(m);
  else process.send?.(m);
}

function bytesOf(a: Float32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

async function run(job: StartJob): Promise<void> {
  await mkdir(job.outDir, { recursive: true });
  const { kind, params } = job;
  const opts: PipelineOptions = {
    stack: job.stackPath,
    slices: params.slices,
    membraneModel: params.membraneModel,
    // Predict is the membrane model alone; the other kinds refine (with the refiner's own round count by default).
    refiner: kind === 'predict' ? null : params.refiner,
    rounds: kind === 'predict' ? 0 : params.rounds,
    skipSegmentation: kind === 'predict' || kind === 'refine',
    segment: params.segment as Partial<SegmentParams> | undefined,
    tta: params.tta,
    pixelSizeNm: params.pixelSizeNm,
    onProgress: (p) => post({ type: 'progress', ...p }),
    onNotice: (message) => post({ type: 'notice', message }),
  };
  for await (const r of runPipeline(opts)) {
    // Predict keeps round 0 only; refine and segment keep every round, so the viewer can show what each round changed.
    const rounds = kind === 'predict' ? r.rounds.slice(0, 1) : r.rounds;
    for (let i = 0; i < rounds.length; i++) await writeFileAtomic(resultFile(job.outDir, r.index, `round-${i}`), bytesOf(rounds[i].data));
    if (r.labels) await writeFileAtomic(resultFile(job.outDir, r.index, 'labels'), bytesOf(r.labels.data));
    post({ type: 'slice', z: r.index, rounds: rounds.length, hasLabels: r.labels !== null });
  }
}

function onMessage(m: ToJob): void {
  if (m.type !== 'start') return;
  run(m).then(
    () => {
      post({ type: 'done' });
      // Let the message flush before exiting; the manager also treats a clean exit after 'done' as success.
      setTimeout(() => process.exit(0), 50);
    },
    (e: unknown) => {
      post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
      setTimeout(() => process.exit(1), 50);
    },
  );
}

// Below normal priority: on a 2-core laptop the viewer's server must still answer tile requests while the model runs.
try {
  setPriority(5);
} catch {
  // Not permitted on some systems; the job then runs at normal priority.
}

if (parentPort) parentPort.on('message', (e) => onMessage(e.data as ToJob));
else process.on('message', (m) => onMessage(m as ToJob));
