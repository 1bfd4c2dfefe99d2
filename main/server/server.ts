// Browser mode's transport: the same renderer and the same API as the Electron app, over HTTP and a WebSocket.
//
//   GET  /?token=T            index.html; sets the token cookie for the page's own requests
//   GET  /assets/…            the built renderer (static files under out/renderer only)
//   POST /api/<call>          JSON arguments in, JSON result out              (calls with JSON results)
//   GET  /api/<call>?a=<json> arguments in the query, application/octet-stream  (calls with binary results: pixels)
//   PUT  /api/<call>?a=<json> the bytes as the body, the other arguments in the query (drag-and-drop uploads)
//   WS   /events              pushed ApiEvents (job progress, slices ready)
//
// Every request needs the token (query `token`, `Authorization: Bearer`, or the cookie set by the first page load):
// without it, 401. The Host header must name the address we listen on and an Origin, when sent, must be ours: 403.
// Every call then goes through the same validating door as Electron's IPC.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, realpath } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { BINARY_CALLS, HTTP_STATUS, MAX_UPLOAD_BYTES, UPLOAD_CALLS, type ApiEvent, type ErrorCode } from '../api/contract';
import type { Door } from '../api/door';
import { cookieName, hostAllowed, originAllowed, readCookie, SECURITY_HEADERS, tokensEqual } from './security';
import { hasDotDot, resolveStatic } from './static-files';

export interface ServerOptions {
  door: Door;
  /** Folder of the built renderer (index.html and assets). */
  rendererDir: string;
  token: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  /** Sends an event to every connected page. */
  broadcast(e: ApiEvent): void;
  close(): Promise<void>;
}

// JSON arguments are a few hundred bytes; a megabyte leaves room for a long slice list and stops memory abuse.
const MAX_BODY_BYTES = 1 << 20;


function send(res: ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

function sendError(res: ServerResponse, code: ErrorCode, message: string): void {
  send(res, HTTP_STATUS[code], JSON.stringify({ error: { code, message } }), 'application/json', { 'Cache-Control': 'no-store' });
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      reject(new Error('body too large'));
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7).trim() : null;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const rendererReal = await realpath(opts.rendererDir);
  const sockets = new Set<WebSocket>();
  let port = 0;

  /** The token from any of its three places; which one does not matter, only that it matches. */
  function authorized(req: IncomingMessage, url: URL): { ok: boolean; viaQuery: boolean } {
    const q = url.searchParams.get('token');
    if (q !== null) return { ok: tokensEqual(q, opts.token), viaQuery: true };
    const b = bearer(req);
    if (b !== null) return { ok: tokensEqual(b, opts.token), viaQuery: false };
    return { ok: tokensEqual(readCookie(req.headers.cookie, cookieName(port)), opts.token), viaQuery: false };
  }

  async function serveStatic(res: ServerResponse, pathname: string, setCookie: boolean): Promise<void> {
    const found = await resolveStatic(rendererReal, pathname);
    if ('error' in found) return sendError(res, found.error, found.error === 'forbidden' ? 'path outside the app' : 'no such file');
    const headers: Record<string, string> = {
      // index.html names hashed assets: it must never be cached; the hashed assets may be, for the session.
      'Cache-Control': found.isIndex ? 'no-store' : 'private, max-age=3600',
    };
    if (setCookie) headers['Set-Cookie'] = `${cookieName(port)}=${opts.token}; Path=/; HttpOnly; SameSite=Strict`;
    send(res, 200, await readFile(found.file), found.type, headers);
  }

  async function serveApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const name = url.pathname.slice('/api/'.length);
    const binary = Object.prototype.hasOwnProperty.call(BINARY_CALLS, name);
    const upload = Object.prototype.hasOwnProperty.call(UPLOAD_CALLS, name);
    let args: unknown;
    try {
      if (upload) {
        if (req.method !== 'PUT') return sendError(res, 'bad-request', `${name} is a PUT call`);
        const a = url.searchParams.get('a');
        const meta = (a === null ? {} : JSON.parse(a)) as unknown;
        const body = await readBody(req, MAX_UPLOAD_BYTES);
        // The door's validator checks the bytes like any argument; a fresh ArrayBuffer holds exactly the body.
        const data = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
        args = typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? { ...meta, data } : meta;
      } else if (binary) {
        if (req.method !== 'GET') return sendError(res, 'bad-request', `${name} is a GET call`);
        const a = url.searchParams.get('a');
        args = a === null ? {} : JSON.parse(a);
      } else {
        if (req.method !== 'POST') return sendError(res, 'bad-request', `${name} is a POST call`);
        const body = (await readBody(req, MAX_BODY_BYTES)).toString('utf8');
        args = body === '' ? {} : JSON.parse(body);
      }
    } catch (e) {
      return sendError(res, 'bad-request', e instanceof Error ? e.message : 'unreadable arguments');
    }
    const r = await opts.door.call(name, args, { transport: 'browser' });
    if (!r.ok) return sendError(res, r.error.code, r.error.message);
    if (binary) {
      const buf = Buffer.from(r.value as ArrayBuffer);
      send(res, 200, buf, 'application/octet-stream', { 'Cache-Control': 'no-store' });
    } else {
      send(res, 200, JSON.stringify(r.value ?? null), 'application/json', { 'Cache-Control': 'no-store' });
    }
  }

  const server = createHttpServer((req, res) => {
    const handle = async () => {
      if (!hostAllowed(req.headers.host, host, port)) return sendError(res, 'forbidden', 'unexpected Host header');
      if (!originAllowed(req.headers.origin, req.headers.host)) return sendError(res, 'forbidden', 'cross-origin request');
      const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
      const auth = authorized(req, url);
      if (!auth.ok) return sendError(res, 'unauthorized', 'missing or wrong token: open the URL `emseg serve` printed');
      // Look for '..' in the path as sent: the URL parser above quietly resolved it away.
      if (hasDotDot(req.url ?? '/')) return sendError(res, 'forbidden', 'path outside the app');
      if (url.pathname.startsWith('/api/')) return serveApi(req, res, url);
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 'bad-request', 'only GET here');
      return serveStatic(res, url.pathname, auth.viaQuery);
    };
    handle().catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 'internal', e instanceof Error ? e.message : String(e));
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'invalid'}`);
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!hostAllowed(req.headers.host, host, port) || !originAllowed(req.headers.origin, req.headers.host)) return refuse(403, 'Forbidden');
    if (url.pathname !== '/events') return refuse(404, 'Not Found');
    if (!authorized(req, url).ok) return refuse(401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      // The page never needs to send anything on this socket; calls go through /api.
      ws.on('message', () => ws.close(1008, 'events only'));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}/?token=${opts.token}`,
    port,
    broadcast(e) {
      const text = JSON.stringify(e);
      for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(text);
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
