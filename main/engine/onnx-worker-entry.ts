// Worker thread hosting ONNX Runtime sessions. onnxruntime-node's run() blocks the calling thread for the whole
// inference (measured: a 1024² U-Net pass let no 10 ms timer fire), so EMSeg never runs a session on an event loop
// that also serves a UI, a server or a CLI progress bar: sessions live here and are driven by messages.
import { parentPort } from 'node:worker_threads';
import { createOnnxModel, type MapModel } from '../../ml/infer/onnx-session';

export type OnnxWorkerRequest =
  | { type: 'create'; req: number; bytes: Uint8Array; threads?: number }
  | { type: 'run'; req: number; session: number; input: Float32Array; channels: number; height: number; width: number }
  | { type: 'release'; req: number; session: number };

export type OnnxWorkerReply = { req: number; ok: true; session?: number; output?: Float32Array } | { req: number; ok: false; error: string };

const sessions = new Map<number, MapModel>();
let next = 1;
const port = parentPort!;

port.on('message', (m: OnnxWorkerRequest) => {
  void (async () => {
    try {
      if (m.type === 'create') {
        const id = next++;
        sessions.set(id, await createOnnxModel(m.bytes, { threads: m.threads }));
        port.postMessage({ req: m.req, ok: true, session: id } satisfies OnnxWorkerReply);
      } else if (m.type === 'run') {
        const s = sessions.get(m.session);
        if (!s) throw new Error(`no session ${m.session}`);
        const out = await s.run(m.input, m.channels, m.height, m.width);
        const copy = new Float32Array(out);
        port.postMessage({ req: m.req, ok: true, output: copy } satisfies OnnxWorkerReply, [copy.buffer]);
      } else {
        await sessions.get(m.session)?.release();
        sessions.delete(m.session);
        port.postMessage({ req: m.req, ok: true } satisfies OnnxWorkerReply);
      }
    } catch (e) {
      port.postMessage({ req: m.req, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies OnnxWorkerReply);
    }
  })();
});
