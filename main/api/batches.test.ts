// The app's batch calls through the one door, with real batch worker processes and tiny random-weight models: a
// batch runs to done with every item listed, a run stopped mid-way resumes without redoing finished items, a
// finished item opens in the viewer as its input stack plus a done job whose maps and labels read back exactly
// what the batch wrote, and paths outside the opened folders are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from './backend';
import { createTestBackend } from './test-backend';
import { createDoor, type Door } from './door';
import type { ApiEvent, BatchInfo, JobInfo, StackSummary } from './contract';
import { writePngs, writeTinyModels } from '../batch/fixtures';
import { openStack } from '../io';
import { readManifestFile } from '../batch/manifest';

let dir = '';
let backend: Backend;
let door: Door;
const events: ApiEvent[] = [];

async function call<T>(name: string, args: unknown): Promise<T> {
  const r = await door.call(name, args, { transport: 'browser' });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as T;
}

async function until(batchId: string, pred: (b: BatchInfo) => boolean, timeoutMs = 120_000): Promise<BatchInfo> {
  const t0 = Date.now();
  for (;;) {
    const b = (await call<BatchInfo[]>('listBatches', {})).find((x) => x.batchId === batchId)!;
    if (pred(b)) return b;
    if (Date.now() - t0 > timeoutMs) throw new Error(`batch ${batchId} stuck in ${JSON.stringify({ ...b, itemList: b.itemList.length })}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'emseg-batches-'));
  const models = await writeTinyModels(join(dir, 'models'));
  await mkdir(join(dir, 'home', 'in'), { recursive: true });
  await writePngs(join(dir, 'home', 'in'), 6, 48, 40);
  backend = await createTestBackend(dir, {
    onEvent: (e) => events.push(e),
    home: join(dir, 'home'),
    samplePath: join(dir, 'no-sample'),
    batchModels: { membrane: join(models, 'membrane'), refiner: join(models, 'refiner') },
  });
  door = createDoor(backend.handlers, { logInternal: () => undefined });
});

after(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

test('a batch from the app: done, every item listed, events pushed, a stopped run resumes', async () => {
  const input = join(dir, 'home', 'in');
  const outDir = join(dir, 'home', 'out');
  const { batchId } = await call<{ batchId: string }>('startBatch', { input, outDir, refineRounds: 1 });
  // Stop as soon as the first items are recorded: the rest must be left for the next run, not marked failed.
  await until(batchId, (b) => b.finished >= 1 || b.state !== 'running');
  const stop = await call<{ stopped: boolean }>('stopBatch', { batchId });
  const first = await until(batchId, (b) => b.state !== 'running');
  assert.equal(first.failed, 0, 'a stop fails nothing');
  if (stop.stopped) assert.equal(first.state, 'stopped');
  const { records: afterStop } = await readManifestFile(join(outDir, 'manifest.jsonl'));
  assert.ok(afterStop.every((r) => r.status === 'done'));
  assert.ok(afterStop.length < 6 || !stop.stopped, 'stopped before the end');

  const again = await call<{ batchId: string }>('startBatch', { input, outDir, refineRounds: 1 });
  const second = await until(again.batchId, (b) => b.state !== 'running');
  assert.equal(second.state, 'done', second.error ?? '');
  assert.equal(second.items, 6);
  assert.equal(second.unchanged, afterStop.length, 'finished items are not redone');
  assert.equal(second.done, 6 - afterStop.length);
  assert.deepEqual(second.itemList.map((i) => i.key), ['0', '1', '2', '3', '4', '5']);
  assert.ok(second.itemList.every((i) => i.status === 'done' || i.status === 'unchanged'));
  assert.ok(events.some((e) => e.type === 'batch' && e.batch.batchId === again.batchId && e.batch.state === 'done'));

  // Open item 3 in the viewer: its input as the stack, and the batch's outputs as a done job's layers.
  const opened = await call<{ stack: StackSummary; jobId: string }>('openBatchResult', { batchId: again.batchId, key: '3' });
  assert.equal(opened.stack.path, join(input, '3.png'));
  const job = (await call<JobInfo[]>('listJobs', {})).find((j) => j.jobId === opened.jobId)!;
  assert.equal(job.state, 'done');
  assert.equal(job.rounds, 2, 'round 0 and one refinement round');
  assert.ok(job.hasLabels);
  const tileArgs = { z: 0, level: 0, tx: 0, ty: 0 };
  const labelsTile = new Uint32Array(await call<ArrayBuffer>('readResult', { jobId: opened.jobId, layer: 'labels', ...tileArgs }));
  const written = await openStack(join(outDir, '3', 'labels.tif'));
  const want = (await written.readSlice(0)).data;
  await written.close();
  assert.deepEqual([...labelsTile], [...want], 'the labels the viewer reads are the ones the batch wrote');
  const mapTile = new Float32Array(await call<ArrayBuffer>('readResult', { jobId: opened.jobId, layer: 'round-1', ...tileArgs }));
  const map = await openStack(join(outDir, '3', 'membrane-round-1.tif'));
  assert.deepEqual([...mapTile], [...(await map.readSlice(0)).data]);
  await map.close();
  assert.ok((await readFile(join(outDir, 'manifest.jsonl'), 'utf8')).length > 0);
});

test('batch paths outside the opened folders are refused, and bad keys never reach the disk', async () => {
  await assert.rejects(call('startBatch', { input: '/etc', outDir: join(dir, 'home', 'x') }), /forbidden/);
  await assert.rejects(call('startBatch', { input: join(dir, 'home', 'in'), outDir: '/tmp/emseg-not-allowed/x' }), /forbidden/);
  await assert.rejects(call('openBatchResult', { batchId: 'b1', key: '../../etc/passwd' }), /bad-request/);
  await assert.rejects(call('stopBatch', { batchId: 'b99' }), /not-found/);
});
