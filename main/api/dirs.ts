// Where EMSeg keeps its own files outside Electron (browser mode, tests): the recent list in the config folder,
// job results in a per-session folder of the cache. EMSEG_CONFIG_DIR and EMSEG_CACHE_DIR override both (tests use
// them so they never touch the user's files).
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function configDir(): string {
  return process.env.EMSEG_CONFIG_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'emseg');
}

export function cacheDir(): string {
  return process.env.EMSEG_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'emseg');
}

// Sessions end by deleting their results; a crashed session's folder is removed by a later one after this long
// (long enough that a second EMSeg running at the same time is never touched).
const STALE_SESSION_MS = 24 * 3600 * 1000;

/** A fresh results folder for this session, removing stale ones beside it. */
export async function sessionResultsDir(cache = cacheDir()): Promise<string> {
  const parent = join(cache, 'results');
  await mkdir(parent, { recursive: true });
  for (const name of await readdir(parent)) {
    const p = join(parent, name);
    const s = await stat(p).catch(() => null);
    if (s && Date.now() - s.mtimeMs > STALE_SESSION_MS) await rm(p, { recursive: true, force: true });
  }
  return join(parent, `${Date.now()}-${process.pid}`);
}
