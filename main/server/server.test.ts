// Browser mode's security and transport, against a real server, backend and door (job processes are not started
// here; the e2e tests run real jobs): the token on every request, Host/Origin checks, 403 for paths outside the
// opened folders however they are spelt, the CSP header, GET-with-binary-body tiles, and the event socket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import type { Backend } from '../api/backend';
import { createTestBackend } from '../api/test-backend';
import { createDoor } from '../api/door';
import { writeTiffStack } from '../io';
import { cookieName } from './security';
import { startServer, type RunningServer } from './server';

let dir = '';
let home = '';
let server: RunningServer;
let backend: Backend;
const token = 'test-token-0123456789abcdefghij';
let base = '';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Raw HTTP, so tests control every header and the path exactly as sent (no URL normalisation by a client). */
function http(method: string, path: string, opts: { headers?: Record<string, string>; body?: string; auth?: boolean } = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.auth === false ? {} : { Authorization: `Bearer ${token}` }), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.path = path; // keep '..' and odd encodings as written
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

const post = (name: string, args: unknown, opts: { headers?: Record<string, string>; auth?: boolean } = {}) =>
  http('POST', `/api/${name}`, { ...opts, body: JSON.stringify(args), headers: { 'Content-Type': 'application/json', ...opts.headers } });
const json = (r: Reply) => JSON.parse(r.body.toString('utf8')) as Record<string, unknown> & { error?: { code: string } };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'emseg-server-test-'));
  home = join(dir, 'home');
  const rendererDir = join(dir, 'renderer');
  await mkdir(join(home, 'stacks'), { recursive: true });
  await mkdir(join(rendererDir, 'assets'), { recursive: true });
  await writeFile(join(rendererDir, 'index.html'), '<!doctype html><title>EMSeg</title>');
  await writeFile(join(rendererDir, 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(dir, 'secret.txt'), 'not for you');
  // A 600×300×2 stack: two tiles wide at level 0, so edge tiles and a second pyramid level are exercised.
  const slices = [0, 1].map((z) => {
    const data = new Uint8Array(600 * 300);
    for (let i = 0; i < data.length; i++) data[i] = ((i % 600) + z * 7) & 0xff;
    return { width: 600, height: 300, data };
  });
  await writeTiffStack(join(home, 'stacks', 'small.tif'), slices);
  await symlink(dir, join(home, 'escape')); // a link inside home pointing out of it
  backend = await createTestBackend(dir, {
    onEvent: (e) => server.broadcast(e),
    home,
    samplePath: join(dir, 'no-sample'),
  });
  server = await startServer({ door: createDoor(backend.handlers, { logInternal: () => undefined }), rendererDir, token });
  base = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  await server.close();
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

test('the URL line names loopback, the port and the token', () => {
  assert.equal(server.url, `http://127.0.0.1:${server.port}/?token=${token}`);
});

test('every request without the token gets 401: page, assets, API calls, tiles', async () => {
  for (const [method, path] of [
    ['GET', '/'],
    ['GET', '/index.html'],
    ['GET', '/assets/app.js'],
    ['POST', '/api/listJobs'],
    ['GET', '/api/readSlice?a=%7B%7D'],
    ['GET', '/nonexistent'],
  ]) {
    const r = await http(method, path, { auth: false });
    assert.equal(r.status, 401, `${method} ${path}`);
  }
  assert.equal((await http('GET', '/?token=wrong', { auth: false })).status, 401);
  assert.equal((await http('GET', '/', { auth: false, headers: { Authorization: 'Bearer wrong' } })).status, 401);
  assert.equal((await http('GET', '/', { auth: false, headers: { Cookie: `${cookieName(server.port)}=wrong` } })).status, 401);
});

test('the page with ?token sets an HttpOnly SameSite cookie that then authorises the page own requests', async () => {
  const r = await http('GET', `/?token=${token}`, { auth: false });
  assert.equal(r.status, 200);
  const cookie = String(r.headers['set-cookie']);
  assert.match(cookie, new RegExp(`^${cookieName(server.port)}=${token};`));
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  const asset = await http('GET', '/assets/app.js', { auth: false, headers: { Cookie: `${cookieName(server.port)}=${token}` } });
  assert.equal(asset.status, 200);
  assert.equal(asset.body.toString(), 'console.log(1)');
});

test('responses carry a strict Content-Security-Policy', async () => {
  const r = await http('GET', '/');
  const csp = String(r.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  const e = await http('GET', '/', { auth: false });
  assert.ok(String(e.headers['content-security-policy']).includes("default-src 'none'"), 'error responses too');
});

test('a foreign Host header (DNS rebinding) or Origin (another site) gets 403', async () => {
  assert.equal((await http('GET', '/', { headers: { Host: `evil.example:${server.port}` } })).status, 403);
  assert.equal((await post('listJobs', {}, { headers: { Origin: 'http://evil.example' } })).status, 403);
  assert.equal((await post('listJobs', {}, { headers: { Origin: `http://127.0.0.1:${server.port}` } })).status, 200);
  assert.equal((await http('GET', '/', { headers: { Host: `localhost:${server.port}` } })).status, 200);
});

test('static files: ".." in any spelling is 403, nothing outside the renderer folder is served', async () => {
  for (const p of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/assets/%2E%2E%2F%2E%2E%2Fsecret.txt', '/..%5csecret.txt']) {
    const r = await http('GET', p);
    assert.equal(r.status, 403, p);
    assert.doesNotMatch(r.body.toString(), /not for you/);
  }
  assert.equal((await http('GET', '/secret.txt')).status, 404);
});

test('openStack: outside home and the opened folders is 403, ".." and symlink tricks included', async () => {
  for (const path of ['/etc/hostname', '/etc/passwd', `${home}/../secret.txt`, `${home}/stacks/../../secret.txt`, `${home}/escape/secret.txt`, 'relative/path.tif', join(dir, 'secret.txt')]) {
    const r = await post('openStack', { path });
    assert.equal(r.status, 403, path);
    assert.equal(json(r).error?.code, 'forbidden');
  }
  // Outside paths get 403 whether or not they exist: probing learns nothing.
  assert.equal((await post('openStack', { path: '/no/such/file.tif' })).status, 403);
  // Inside home, a missing file is an honest 404.
  assert.equal((await post('openStack', { path: `${home}/stacks/missing.tif` })).status, 404);
});

test('browseFolder lists home, refuses the rest', async () => {
  const r = await post('browseFolder', {});
  assert.equal(r.status, 200);
  const listing = json(r) as { path: string; parent: string | null; entries: { name: string; kind: string }[] };
  assert.ok(listing.entries.some((e) => e.name === 'stacks' && e.kind === 'folder'));
  assert.equal(listing.parent, null, 'the parent of home is not browsable');
  assert.equal((await post('browseFolder', { path: '/' })).status, 403);
  assert.equal((await post('browseFolder', { path: `${home}/..` })).status, 403);
  assert.equal((await post('browseFolder', { path: `${home}/escape` })).status, 403);
});

test('malformed calls: 400 for bad JSON and bad arguments, 404 for unknown calls, binary calls only by GET', async () => {
  assert.equal((await http('POST', '/api/openStack', { body: '{not json' })).status, 400);
  assert.equal((await post('openStack', { path: 3 })).status, 400);
  assert.equal((await post('noSuchCall', {})).status, 404);
  assert.equal((await post('readSlice', { stackId: 's1', z: 0, level: 0, tx: 0, ty: 0 })).status, 400);
  assert.equal((await http('GET', '/api/listJobs')).status, 400);
  // A body past 1 MiB is cut off: the request fails (connection closed or 400), it is never handled.
  const big = await http('POST', '/api/listJobs', { body: 'x'.repeat(2 << 20) }).catch(() => ({ status: 0 }));
  assert.notEqual(big.status, 200);
});

test('tiles travel as binary GET bodies with exactly the tile pixels, level 1 halves', async () => {
  const opened = await post('openStack', { path: `${home}/stacks/small.tif` });
  assert.equal(opened.status, 200);
  const s = json(opened) as { stackId: string; width: number; height: number; levels: number; tileSizePx: number };
  assert.deepEqual([s.width, s.height, s.levels, s.tileSizePx], [600, 300, 2, 512]);
  const tile = (args: object) => http('GET', `/api/readSlice?a=${encodeURIComponent(JSON.stringify(args))}`);
  const edge = await tile({ stackId: s.stackId, z: 1, level: 0, tx: 1, ty: 0 });
  assert.equal(edge.status, 200);
  assert.equal(edge.headers['content-type'], 'application/octet-stream');
  assert.equal(edge.body.length, 88 * 300);
  assert.equal(edge.body[0], (512 + 7) & 0xff);
  const half = await tile({ stackId: s.stackId, z: 0, level: 1, tx: 0, ty: 0 });
  assert.equal(half.body.length, 300 * 150);
  assert.equal(half.body[1], 3); // mean of 2, 3, 2, 3 = 2.5, rounded half up
  assert.equal((await tile({ stackId: s.stackId, z: 2, level: 0, tx: 0, ty: 0 })).status, 404);
  assert.equal((await tile({ stackId: s.stackId, z: 0, level: 0, tx: 2, ty: 0 })).status, 404);
  assert.equal((await tile({ stackId: 's99', z: 0, level: 0, tx: 0, ty: 0 })).status, 404);
  // Once the stack is opened its folder counts as opened; the secret beside home still does not.
  assert.equal((await post('openStack', { path: join(dir, 'secret.txt') })).status, 403);
});

test('the event socket needs the token and delivers pushed events', async () => {
  const wsUrl = `ws://127.0.0.1:${server.port}/events`;
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(wsUrl);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(200));
  });
  assert.equal(refused, 401);
  const foreign = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${wsUrl}?token=${token}`, { origin: 'http://evil.example' });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(200));
  });
  assert.equal(foreign, 403);
  const ws = new WebSocket(wsUrl, { headers: { Cookie: `${cookieName(server.port)}=${token}` } });
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve());
    ws.on('error', reject);
  });
  const got = new Promise<string>((resolve) => ws.on('message', (m: Buffer) => resolve(m.toString())));
  server.broadcast({ type: 'slice', jobId: 'j1', z: 3 });
  assert.deepEqual(JSON.parse(await got), { type: 'slice', jobId: 'j1', z: 3 });
  ws.close();
});

test('drag-and-drop uploads: PUT with the bytes, a safe name, then the file opens like any stack', async () => {
  const { readFile } = await import('node:fs/promises');
  const bytes = await readFile(join(home, 'stacks', 'small.tif'));
  const put = (args: object, body: Buffer | string) =>
    new Promise<Reply>((resolve, reject) => {
      const req = request(`${base}/api/uploadFile?a=${encodeURIComponent(JSON.stringify(args))}`, { method: 'PUT', headers: { Authorization: `Bearer ${token}` } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  for (const name of ['../evil.tif', '.hidden.tif', 'a/b.tif', 'notes.txt', 'x\\..\\y.png']) {
    assert.equal((await put({ uploadId: 'u1', name }, bytes)).status, 400, name);
  }
  assert.equal((await put({ uploadId: '../u1', name: 'a.tif' }, bytes)).status, 400);
  assert.equal((await put({ uploadId: 'u1', name: 'a.tif' }, '')).status, 400, 'empty body');
  assert.equal((await post('uploadFile', { uploadId: 'u1', name: 'a.tif' })).status, 400, 'not a PUT');
  const r = await put({ uploadId: 'u1', name: 'dropped.tif' }, bytes);
  assert.equal(r.status, 200);
  const { file } = json(r) as { folder: string; file: string };
  const opened = await post('openStack', { path: file });
  assert.equal(opened.status, 200);
  assert.equal((json(opened) as { depth: number }).depth, 2);
});
