// One writer per project: `project.lock` in the project folder names the process that has the project open (pid,
// host, a random token, since when). Two processes appending to one journal and renaming project.json over each other
// would lose edits, so a second open fails with one line naming the folder and the holder.
//
// The lock file appears whole or not at all: its content is written to a temporary file which is then hard-linked to
// project.lock (link fails if the name exists, atomically, on local file systems and NFS alike), so a reader never
// sees a half-written lock (on file systems without hard links — FAT, some network shares — an exclusive create
// followed by the write stands in, with an instant in which the file is empty). A lock whose process is gone is stale and taken over: same host and the pid no longer
// runs, or the pid is this very process but no project of this process holds it (a previous process that had the
// same pid, as happens in containers). A lock from another host (a project on a shared file system) cannot be checked
// by pid: its holder touches the lock file every HEARTBEAT_MS instead, and a lock from another host untouched for
// STALE_AFTER_MS — ten heartbeats, which absorbs clock skew between hosts and a busy file server — belongs to a process
// that is gone (the machine crashed, or lost the share) and is taken over. A fresh one is reported, and the message
// says how long it has been quiet and which file to delete if that process is known to be gone.
import { randomBytes } from 'node:crypto';
import { link, readFile, realpath, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'project.lock';
/** How often the holder touches its lock file. */
export const HEARTBEAT_MS = 60_000;
/** A lock from another host untouched this long is stale. */
export const STALE_AFTER_MS = 10 * HEARTBEAT_MS;

export interface LockOwner {
  pid: number;
  host: string;
  token: string;
  since: string;
}

/** Another process has the project open. */
export class ProjectLockedError extends Error {
  override name = 'ProjectLockedError';
  readonly userFacing = true;
}

/** Tokens of the locks this process holds, by lock file path. */
const held = new Map<string, string>();

function parseOwner(text: string): LockOwner | null {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isInteger(v.pid) && typeof v.host === 'string' && typeof v.token === 'string' && typeof v.since === 'string') return v as LockOwner;
  } catch {
    // not ours: handled by the caller
  }
  return null;
}

// link() fails with these where the file system has no hard links.
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Creates `path` holding `text` unless it exists (false then). */
async function createExclusive(path: string, text: string, tmp: string): Promise<boolean> {
  await writeFile(tmp, text);
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code)) throw e;
    try {
      await writeFile(path, text, { flag: 'wx' });
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Whether process `pid` runs on this host (EPERM: it runs, as another user). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function minutes(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m < 1 ? 'less than a minute' : `${m} min`;
}

/** Why `owner` still holds the lock, or null when it is stale; `quietMs` is the time since the lock file was touched. */
function holder(owner: LockOwner | null, path: string, quietMs: number, staleAfterMs: number): string | null {
  // Our own writes are atomic, so an unreadable lock file is not a live EMSeg lock.
  if (!owner) return null;
  if (owner.host !== hostname()) return quietMs >= staleAfterMs ? null : `pid ${owner.pid} on host ${owner.host}, last heartbeat ${minutes(quietMs)} ago`;
  if (owner.pid === process.pid) return held.get(path) === owner.token ? 'this process' : null;
  return running(owner.pid) ? `pid ${owner.pid}` : null;
}

export interface LockOptions {
  /** Touch the lock file this often (default HEARTBEAT_MS). */
  heartbeatMs?: number;
  /** Take over a lock from another host untouched this long (default STALE_AFTER_MS). */
  staleAfterMs?: number;
}

export class ProjectLock {
  private released = false;
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(
    readonly path: string,
    readonly owner: LockOwner,
    heartbeatMs: number,
  ) {
    // Best effort: a missed beat only matters after ten of them, and a failing share fails the journal writes too.
    this.heartbeat = setInterval(() => {
      const now = new Date();
      utimes(this.path, now, now).catch(() => undefined);
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  /** Takes the lock of the project in `folder`, or throws ProjectLockedError naming the folder and the holder. */
  static async acquire(folder: string, opts: LockOptions = {}): Promise<ProjectLock> {
    const staleAfterMs = opts.staleAfterMs ?? STALE_AFTER_MS;
    // The real path: this process's own locks are recognised however the folder was spelt.
    const path = join(await realpath(folder), LOCK_FILE);
    const owner: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex'), since: new Date().toISOString() };
    const text = JSON.stringify(owner);
    // A few tries: after taking over a stale lock, or when the lock changed hands while we looked at it.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await createExclusive(path, text, `${path}.new-${process.pid}-${owner.token}`)) {
        held.set(path, owner.token);
        return new ProjectLock(path, owner, opts.heartbeatMs ?? HEARTBEAT_MS);
      }
      const found = await readFile(path, 'utf8').catch(() => null);
      const touched = await stat(path).then((s) => s.mtimeMs).catch(() => null);
      if (found === null || touched === null) continue; // released meanwhile
      const current = parseOwner(found);
      const who = holder(current, path, Date.now() - touched, staleAfterMs);
      if (who === 'this process') throw new ProjectLockedError(`${folder}: the project is open in this EMSeg process already`);
      if (who !== null) {
        const remote = current && current.host !== hostname() ? `, or wait: a lock quiet for ${minutes(staleAfterMs)} is taken over` : '';
        throw new ProjectLockedError(`${folder}: the project is open in another EMSeg process (${who}, since ${current?.since}); close it there first (if that process is gone, delete ${path}${remote})`);
      }
      // Stale: move it aside and check that what moved is the lock judged stale, not one another process just took.
      const aside = `${path}.stale-${process.pid}-${owner.token}`;
      try {
        await rename(path, aside);
      } catch {
        continue; // someone else moved it first; try again
      }
      const moved = await readFile(aside, 'utf8').catch(() => null);
      if (moved !== found) {
        // A fresh lock of another process: put it back and report it.
        await link(aside, path).catch(() => undefined);
        await rm(aside, { force: true });
        throw new ProjectLockedError(`${folder}: the project was just opened by another EMSeg process; close it there first`);
      }
      await rm(aside, { force: true });
    }
    throw new ProjectLockedError(`${folder}: could not take the project's lock ${path}; another EMSeg process keeps taking it`);
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    if (held.get(this.path) === this.owner.token) held.delete(this.path);
    const found = await readFile(this.path, 'utf8').catch(() => null);
    if (found !== null && parseOwner(found)?.token === this.owner.token) await rm(this.path, { force: true });
  }
}
