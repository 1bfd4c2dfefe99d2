// Browser mode refuses what it must: any request without the token (401), any path outside the folders the user
// opened (403), '..' tricks included, and foreign origins; its pages carry a strict Content-Security-Policy.
import { request as httpRequest } from 'node:http';
import { expect, test } from '@playwright/test';
import { serverUrl } from './helpers';

/** A raw request, so the path reaches the server exactly as written (browsers and fetch normalise '..'). */
function raw(path: string, headers: Record<string, string> = {}): Promise<number> {
  const { origin } = serverUrl();
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${origin}/`, { method: 'GET', headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.path = path;
    req.on('error', reject);
    req.end();
  });
}

test('without the token: 401 for the page, its assets and every API call', async ({ browser, request }) => {
  const { origin, token } = serverUrl();
  const page = await browser.newPage();
  const res = await page.goto(`${origin}/`);
  expect(res?.status()).toBe(401);
  await page.close();
  expect((await request.get(`${origin}/?token=not-the-token`)).status()).toBe(401);
  expect((await request.post(`${origin}/api/listJobs`, { data: {} })).status()).toBe(401);
  expect((await request.post(`${origin}/api/openStack`, { data: { path: '/etc/passwd' } })).status()).toBe(401);
  expect((await request.get(`${origin}/api/readSlice?a=${encodeURIComponent('{"stackId":"s1","z":0,"level":0,"tx":0,"ty":0}')}`)).status()).toBe(401);
  expect(await raw('/assets/')).toBe(401);
  // With it (as the page's header or cookie would carry it) the same call works.
  expect((await request.post(`${origin}/api/listJobs`, { data: {}, headers: { Authorization: `Bearer ${token}` } })).status()).toBe(200);
});

test('paths outside the opened folders get 403, ".." and encodings included', async ({ request }) => {
  const { origin, token } = serverUrl();
  const auth = { Authorization: `Bearer ${token}` };
  const home = process.env.HOME ?? '/root';
  for (const path of ['/etc/passwd', `${home}/../etc/passwd`, `${home}/./../../etc/shadow`, '/proc/self/environ', '../../etc/passwd']) {
    const r = await request.post(`${origin}/api/openStack`, { data: { path }, headers: auth });
    expect(r.status(), path).toBe(403);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('forbidden');
  }
  expect((await request.post(`${origin}/api/browseFolder`, { data: { path: '/etc' }, headers: auth })).status()).toBe(403);
  for (const p of ['/../package.json', '/assets/../../package.json', '/%2e%2e/package.json', '/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd']) {
    expect(await raw(p, auth), p).toBe(403);
  }
});

test('pages carry a strict CSP; other origins and hosts are refused', async ({ request }) => {
  const { origin, url, token } = serverUrl();
  const r = await request.get(url);
  expect(r.status()).toBe(200);
  const csp = r.headers()['content-security-policy'];
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
  const auth = { Authorization: `Bearer ${token}` };
  expect((await request.post(`${origin}/api/listJobs`, { data: {}, headers: { ...auth, Origin: 'https://evil.example' } })).status()).toBe(403);
  expect(await raw('/', { ...auth, Host: 'evil.example' })).toBe(403);
});
