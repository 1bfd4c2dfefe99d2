// Starting worker threads that run TypeScript modules (through worker-boot.mjs), and a small typed request/response
// helper over their message port.
import { Worker } from 'node:worker_threads';

export function startWorker(entry: URL, data: Record<string, unknown> = {}, resourceLimits?: Worker['resourceLimits']): Worker {
  return new Worker(new URL('./worker-boot.mjs', import.meta.url), {
    workerData: { ...data, entry: entry.href },
    resourceLimits,
  });
}

/** Wait for the next message from a worker, failing if it errors or exits first. */
export function nextMessage<T>(w: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: T) => {
      cleanup();
      resolve(m);
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`worker exited with code ${code}`));
    };
    function cleanup() {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
    }
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
  });
}
