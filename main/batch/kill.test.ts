// kill -9 for real: the `emseg batch` CLI is killed mid-item, its worker must go away by itself, nothing under --out
// may look finished without being so, and the rerun must finish the batch without redoing any item the killed run
// recorded as done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStack } from '../io';
import { readManifestFile } from './manifest';
import { writePngs, writeTinyModels } from './fixtures';

const EMSEG = fileURLToPath(new URL('../cli/emseg.mjs', import.meta.url));
const ITEMS = 12;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function doneKeys(out: string): Promise<string[]> {
  const m = await readManifestFile(join(out, 'manifest.jsonl'));
  assert.equal(m.badLines, 0, 'no torn manifest line');
  return m.records.filter((r) => r.status === 'done').map((r) => r.key);
}

/** An item folder must hold every output, each a readable stack of the item's one slice. */
async function assertComplete(out: string, key: string): Promise<void> {
  const files = (await readdir(join(out, key))).sort();
  assert.deepEqual(files, ['labels.tif', 'membrane-round-0.tif', 'membrane.tif'], `${key}: outputs complete`);
  for (const f of files) {
    const s = await openStack(join(out, key, f));
    assert.equal(s.info.depth, 1);
    await s.readSlice(0);
    await s.close();
  }
}

test('a batch killed with kill -9 resumes without redoing finished items and leaves nothing half-done in place', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-batch-kill-'));
  try {
    const models = await writeTinyModels(join(dir, 'models'), { refiner: false });
    const input = join(dir, 'in');
    await writePngs(input, ITEMS, 64, 64, 3);
    const out = join(dir, 'out');
    const args = [EMSEG, 'batch', input, '--out', out, '--model', models, '--workers', '1', '--threads', '1', '--quiet'];

    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
    const partial = join(out, '.emseg', 'partial', 'all');
    // Kill once two items are recorded and the next one is being written (its folder exists under .emseg/partial).
    let workerPid = 0;
    const deadline = Date.now() + 90_000;
    for (;;) {
      assert.ok(Date.now() < deadline, `the batch did not get going: ${stderr}`);
      assert.equal(child.exitCode, null, `the batch ended before it could be killed: ${stderr}`);
      const done = await doneKeys(out).catch(() => []);
      const inProgress = (await readdir(partial).catch(() => [] as string[])).filter((n) => n.startsWith('item-'));
      if (done.length >= 2 && inProgress.length > 0) {
        workerPid = Number(/^item-[0-9a-f]+-(\d+)-/.exec(inProgress[0])?.[1]);
        break;
      }
      await sleep(15);
    }
    child.kill('SIGKILL');
    assert.equal((await exited).signal, 'SIGKILL');

    // The worker notices that its coordinator is gone and stops by itself.
    assert.ok(workerPid > 0);
    for (let i = 0; i < 100 && alive(workerPid); i++) await sleep(50);
    assert.ok(!alive(workerPid), 'the worker process exited after its coordinator was killed');

    const firstDone = await doneKeys(out);
    assert.ok(firstDone.length >= 2 && firstDone.length < ITEMS, `killed mid-batch (${firstDone.length} done)`);
    // Whatever is in place under --out is complete; the interrupted item is only under .emseg/partial.
    const placed = (await readdir(out)).filter((n) => !n.startsWith('.') && !n.endsWith('.jsonl'));
    for (const key of placed) await assertComplete(out, key);
    for (const key of firstDone) assert.ok(placed.includes(key));
    const firstMtimes = await Promise.all(firstDone.map(async (k) => (await stat(join(out, k, 'labels.tif'))).mtimeMs));

    const rerun = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const code = await new Promise<number | null>((res) => rerun.on('exit', (c) => res(c)));
    assert.equal(code, 0);
    const all = await doneKeys(out);
    const second = all.slice(firstDone.length);
    assert.deepEqual(second.filter((k) => firstDone.includes(k)), [], 'no finished item was redone');
    assert.deepEqual([...all].sort(), Array.from({ length: ITEMS }, (_, i) => String(i)).sort(), 'every item done exactly once');
    for (let i = 0; i < ITEMS; i++) await assertComplete(out, String(i));
    assert.deepEqual(await Promise.all(firstDone.map(async (k) => (await stat(join(out, k, 'labels.tif'))).mtimeMs)), firstMtimes);
    assert.deepEqual(await readdir(partial).catch(() => []), [], 'the interrupted item’s leftovers were cleared');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
