// The renderer's one way to reach the main side: the contract's EmsegApi over whichever transport this page has.
// In Electron the preload put `window.emseg` here (one function per call, over IPC); in browser mode calls go over
// HTTP (POST with JSON, or GET with a binary body for pixels) and events arrive on a WebSocket. Either way, a failed
// call rejects with ApiCallError carrying the contract's error code.
import type { ApiEvent, Args, CallName, EmsegApi, ErrorCode, PreloadApi, Result } from '../main/api/contract';

export class ApiCallError extends Error {
  override name = 'ApiCallError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Which calls answer with pixels. Mirrors the contract's BINARY_CALLS (values may not be imported here); the
 * Record type makes the compiler check that every call is listed. */
const BINARY: Record<CallName, boolean> = {
  appInfo: false,
  openStack: false,
  sampleStack: false,
  listRecent: false,
  pickPath: false,
  browseFolder: false,
  readSlice: true,
  readResult: true,
  uploadFile: false,
  startJob: false,
  cancelJob: false,
  listJobs: false,
  startBatch: false,
  stopBatch: false,
  listBatches: false,
  openBatchResult: false,
  listModels: false,
  openModel: false,
  chooseModel: false,
  createProject: false,
  openProject: false,
  closeProject: false,
  readProject: true,
  resolveProposal: false,
  editProject: false,
  undoEdit: false,
  redoEdit: false,
  newLabel: false,
  lockSegment: false,
  setSliceStatus: false,
  sliceQuality: false,
  exportProject: false,
};

function errorFrom(status: number, body: unknown): ApiCallError {
  const e = (body as { error?: { code?: ErrorCode; message?: string } } | null)?.error;
  return new ApiCallError(e?.code ?? 'internal', e?.message ?? `HTTP ${status}`);
}

function createHttpApi(): EmsegApi {
  const listeners = new Set<(e: ApiEvent) => void>();
  let socket: WebSocket | null = null;
  let retryMs = 500;

  function connect(): void {
    // Same origin: the token cookie set with the page travels with the upgrade request.
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/events`);
    socket = ws;
    ws.onmessage = (m) => {
      const e = JSON.parse(String(m.data)) as ApiEvent;
      for (const l of listeners) l(e);
    };
    ws.onopen = () => {
      retryMs = 500;
    };
    ws.onclose = () => {
      socket = null;
      // The server restarted or the laptop slept: reconnect, backing off to 10 s.
      setTimeout(connect, retryMs);
      retryMs = Math.min(10_000, retryMs * 2);
    };
  }

  async function call<K extends CallName>(name: K, args: Args<K>): Promise<Result<K>> {
    if (name === 'uploadFile') {
      // The one call that sends bytes: PUT with the file as the body, the rest of the arguments in the query.
      const { data, ...rest } = args as Args<'uploadFile'>;
      const res = await fetch(`/api/${name}?a=${encodeURIComponent(JSON.stringify(rest))}`, { method: 'PUT', credentials: 'same-origin', body: data });
      const body = (await res.json().catch(() => null)) as unknown;
      if (!res.ok) throw errorFrom(res.status, body);
      return body as Result<K>;
    }
    if (BINARY[name]) {
      const res = await fetch(`/api/${name}?a=${encodeURIComponent(JSON.stringify(args))}`, { credentials: 'same-origin' });
      if (!res.ok) throw errorFrom(res.status, await res.json().catch(() => null));
      return (await res.arrayBuffer()) as Result<K>;
    }
    const res = await fetch(`/api/${name}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(args),
    });
    const body = (await res.json().catch(() => null)) as unknown;
    if (!res.ok) throw errorFrom(res.status, body);
    return body as Result<K>;
  }

  const api = Object.fromEntries((Object.keys(BINARY) as CallName[]).map((name) => [name, (args: never) => call(name, args)])) as unknown as EmsegApi;
  api.onEvent = (listener) => {
    listeners.add(listener);
    if (!socket) connect();
    return () => listeners.delete(listener);
  };
  return api;
}

/** In Electron, wrap the preload's functions so failures become ApiCallError like in browser mode. */
function wrapPreload(p: PreloadApi): EmsegApi {
  const api = Object.fromEntries(
    (Object.keys(BINARY) as CallName[]).map((name) => [
      name,
      async (args: never) => {
        try {
          return await (p[name] as (a: never) => Promise<unknown>)(args);
        } catch (e) {
          const m = /^\[([a-z-]+)\] (.*)$/s.exec(e instanceof Error ? e.message : String(e));
          throw m ? new ApiCallError(m[1] as ErrorCode, m[2]) : e;
        }
      },
    ]),
  ) as unknown as EmsegApi;
  api.onEvent = (l) => p.onEvent(l);
  return api;
}

const preload = (window as unknown as { emseg?: PreloadApi }).emseg;

export const api: EmsegApi = preload ? wrapPreload(preload) : createHttpApi();

/** The file-system path of a dropped file: known in Electron, never in a browser. */
export function pathOfDroppedFile(file: File): string | null {
  return preload ? preload.pathForFile(file) || null : null;
}
