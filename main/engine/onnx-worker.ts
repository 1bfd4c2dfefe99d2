// ONNX Runtime sessions behind a worker thread (see onnx-worker-entry.ts for why): the same MapModel interface as an
// in-thread session, so tiling, refinement and the pipeline do not know the difference. One worker per process, started
// on first use and not keeping the process alive when idle.
import type { Worker } from 'node:worker_threads';
import type { MapModel } from '../../ml/infer/onnx-session';
import { startWorker } from './workers';
import type { OnnxWorkerReply, OnnxWorkerRequest } from './onnx-worker-entry';

let worker: Worker | null = null;
let nextReq = 1;
const pending = new Map<number, { resolve: (r: OnnxWorkerReply & { ok: true }) => void; reject: (e: Error) => void }>();

function getWorker(): Worker {
  if (worker) return worker;
  const w = startWorker(new URL('./onnx-worker-entry.ts', import.meta.url));
  w.on('message', (r: OnnxWorkerReply) => {
    const p = pending.get(r.req);
    if (!p) return;
    pending.delete(r.req);
    if (pending.size === 0) w.unref();
    if (r.ok) p.resolve(r);
    else p.reject(new Error(r.error));
  });
  const fail = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
    worker = null;
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`inference worker exited with code ${code}`)));
  w.unref();
  worker = w;
  return w;
}

type WithoutReq<T> = T extends unknown ? Omit<T, 'req'> : never;

function call(msg: WithoutReq<OnnxWorkerRequest>, transfer: ArrayBuffer[] = []): Promise<OnnxWorkerReply & { ok: true }> {
  const w = getWorker();
  const req = nextReq++;
  return new Promise((resolve, reject) => {
    pending.set(req, { resolve, reject });
    w.ref();
    w.postMessage({ ...msg, req } as OnnxWorkerRequest, transfer);
  });
}

export async function createWorkerOnnxModel(bytes: Uint8Array, opts: { threads?: number } = {}): Promise<MapModel> {
  const { session } = await call({ type: 'create', bytes, threads: opts.threads });
  return {
    async run(input, channels, height, width) {
      // Copy so the caller keeps its array; the copy's buffer moves to the worker without a second copy.
      const copy = new Float32Array(input);
      const r = await call({ type: 'run', session: session!, input: copy, channels, height, width }, [copy.buffer]);
      return r.output!;
    },
    async release() {
      await call({ type: 'release', session: session! });
    },
  };
}
