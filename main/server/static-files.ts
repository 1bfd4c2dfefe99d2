// Finding a file of the built renderer for a URL path, for browser mode's HTTP server and the Electron window's
// app:// protocol alike: only regular files inside the renderer folder, with '..' (however encoded) and symlinks out
// of it refused.
import { realpath, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, sep } from 'node:path';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

/** Does a URL path, percent-decoded, contain a '..' segment (or NUL, or undecodable escapes)? */
export function hasDotDot(rawPath: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath.split('?')[0]);
  } catch {
    return true;
  }
  return decoded.includes('\0') || decoded.split(/[\\/]/).includes('..');
}

export type StaticLookup = { file: string; type: string; isIndex: boolean } | { error: 'forbidden' | 'not-found' };

/** The file for `pathname` under `rootReal` (a folder with symlinks already resolved). */
export async function resolveStatic(rootReal: string, pathname: string): Promise<StaticLookup> {
  if (hasDotDot(pathname)) return { error: 'forbidden' };
  const rel = decodeURIComponent(pathname).replace(/^\/+/, '') || 'index.html';
  let file: string;
  try {
    file = await realpath(join(rootReal, rel));
  } catch {
    return { error: 'not-found' };
  }
  const r = relative(rootReal, file);
  if (r.startsWith('..') || isAbsolute(r) || r.split(sep).includes('..')) return { error: 'forbidden' };
  if (!(await stat(file)).isFile()) return { error: 'not-found' };
  return { file, type: CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream', isIndex: rel === 'index.html' };
}
