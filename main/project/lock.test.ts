// One process per project: a second open — from another process or this one — fails with one line naming the project
// folder and the holder; a lock left by a process that is gone (killed, or an earlier process with the same pid) is
// taken over; a lock from another host is taken over only once its holder has stopped touching it for ten minutes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURE } from './fixtures';
import { LOCK_FILE, ProjectLock, ProjectLockedError, type LockOwner } from './lock';
import { Project } from './store';

const store = fileURLToPath(new URL('./store.ts', import.meta.url));
const quiet = { syncIntervalMs: 3_600_000, compactIntervalMs: 3_600_000 };

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'emseg-lock-test-'));
}

function oneLine(e: unknown, ...parts: (string | RegExp)[]): boolean {
  assert.ok(e instanceof ProjectLockedError, `expected ProjectLockedError, got ${String(e)}`);
  assert.ok(!e.message.includes('\n'), 'one line');
  for (const p of parts) assert.match(e.message, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
  return true;
}

async function writeLock(folder: string, owner: Partial<LockOwner>): Promise<void> {
  await writeFile(join(folder, LOCK_FILE), JSON.stringify({ pid: 1, host: hostname(), token: 'abcdef', since: '2020-01-01T00:00:00.000Z', ...owner }));
}

async function lockOwner(folder: string): Promise<LockOwner> {
  return JSON.parse(await readFile(join(folder, LOCK_FILE), 'utf8')) as LockOwner;
}

/** A child process that opens the project and keeps it open until killed; resolves once it has the project. */
function holder(folder: string): Promise<ChildProcess> {
  const code = `import(${JSON.stringify(store)}).then(async ({ Project }) => { await Project.open(${JSON.stringify(folder)}); console.log('open'); setInterval(() => {}, 1000); })`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => b.toString().includes('open') && resolve(child));
    child.on('exit', (c) => reject(new Error(`holder exited with ${c}`)));
  });
}

test('a project open in another process cannot be opened; once that process is killed, it can', async () => {
  const dir = await scratch();
  try {
    const p = await Project.create(dir, { stackPath: '/data/stack.tif', ...FIXTURE }, quiet);
    await p.close();
    const child = await holder(dir);
    try {
      await assert.rejects(Project.open(dir, quiet), (e) => oneLine(e, dir, `pid ${child.pid}`, 'another EMSeg process', join(dir, LOCK_FILE)));
      assert.equal((await lockOwner(dir)).pid, child.pid, 'the holder keeps its lock');
    } finally {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    // kill -9 left the lock behind; its process is gone, so the lock is stale and taken over.
    const q = await Project.open(dir, quiet);
    assert.equal((await lockOwner(dir)).pid, process.pid);
    await q.close();
    await assert.rejects(readFile(join(dir, LOCK_FILE)), /ENOENT/, 'close releases the lock');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the same process cannot open a project twice; closing releases it', async () => {
  const dir = await scratch();
  try {
    const p = await Project.create(dir, { stackPath: '/data/stack.tif', ...FIXTURE }, quiet);
    await assert.rejects(Project.open(dir, quiet), (e) => oneLine(e, dir, 'this EMSeg process already'));
    // The same folder reached through a symbolic link is the same project.
    await symlink(dir, `${dir}-link`);
    await assert.rejects(Project.open(`${dir}-link`, quiet), ProjectLockedError);
    await p.close();
    const q = await Project.open(dir, quiet);
    await q.close();
  } finally {
    await rm(`${dir}-link`, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
});

test('stale locks are taken over; a lock from another host is reported until its heartbeat has been quiet for ten minutes', async () => {
  const dir = await scratch();
  try {
    // A process that has exited (its pid is free until reused): stale.
    const exited = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => exited.once('exit', r));
    await writeLock(dir, { pid: exited.pid });
    const a = await ProjectLock.acquire(dir);
    assert.equal((await lockOwner(dir)).token, a.owner.token);
    await a.release();
    // This very pid but a token this process never held: an earlier process that had the same pid (containers).
    await writeLock(dir, { pid: process.pid });
    const b = await ProjectLock.acquire(dir);
    await b.release();
    // Not an EMSeg lock at all (our writes are atomic, so never a torn one of ours).
    await writeFile(join(dir, LOCK_FILE), '{"pid":');
    const c = await ProjectLock.acquire(dir);
    await c.release();
    // Another host: its pids mean nothing here; its heartbeat (the lock file's mtime) does.
    await writeLock(dir, { pid: process.pid, host: 'cluster-node-7' });
    await assert.rejects(ProjectLock.acquire(dir), (e) => oneLine(e, dir, 'pid', 'host cluster-node-7', 'last heartbeat less than a minute ago', 'delete', 'quiet for 10 min'));
    assert.equal((await lockOwner(dir)).host, 'cluster-node-7');
    // Quiet for 9 minutes: still held. Quiet for 11: its process is gone, the lock is taken over.
    const ago = (min: number) => new Date(Date.now() - min * 60_000);
    await utimes(join(dir, LOCK_FILE), ago(9), ago(9));
    await assert.rejects(ProjectLock.acquire(dir), (e) => oneLine(e, 'host cluster-node-7', 'last heartbeat 9 min ago'));
    await utimes(join(dir, LOCK_FILE), ago(11), ago(11));
    const remote = await ProjectLock.acquire(dir);
    assert.equal((await lockOwner(dir)).token, remote.owner.token);
    await remote.release();
    // release() never removes a lock that is not its own.
    const d = await ProjectLock.acquire(dir);
    await writeLock(dir, { pid: process.pid, token: 'someone-else' });
    await d.release();
    assert.equal((await lockOwner(dir)).token, 'someone-else');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the holder touches its lock file every heartbeat, and stops once released', async () => {
  const dir = await scratch();
  try {
    const lock = await ProjectLock.acquire(dir, { heartbeatMs: 50 });
    const old = new Date(Date.now() - 3_600_000);
    await utimes(lock.path, old, old);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(Date.now() - (await stat(lock.path)).mtimeMs < 60_000, 'the heartbeat refreshed the mtime');
    await lock.release();
    await writeLock(dir, { host: 'cluster-node-7' });
    await utimes(join(dir, LOCK_FILE), old, old);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(Date.now() - (await stat(join(dir, LOCK_FILE))).mtimeMs > 3_000_000, 'a released lock no longer beats');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
