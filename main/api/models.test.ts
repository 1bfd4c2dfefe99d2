// The model picker's calls through the one door, on model folders made here from the shipped membrane model's
// model.json: the list holds the shipped model, every complete membrane folder of the compressed folder and the
// folders the user opened, each with its row of the compression table (from the report a folder keeps, from its
// validation scores, or "not measured"); opened folders and the choice outlive the session; jobs and batches run a
// listed model even outside the opened folders (a batch of a tiny real model records it in its manifest), while other
// paths still meet the access guard.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Backend } from './backend';
import { createTestBackend } from './test-backend';
import type { BatchInfo, JobInfo, ModelInfo, ModelList, StackSummary } from './contract';
import { createDoor, type Door } from './door';
import { DEFAULT_MEMBRANE_MODEL, DEFAULT_REFINER_MODEL } from '../engine/models';
import type { ModelRecord } from '../engine/model-store';
import { writePngs, writeTinyModels } from '../batch/fixtures';
import { readManifestFile } from '../batch/manifest';

let dir = '';
let shipped = '';
let compressed = '';
const shippedRecord = JSON.parse(await readFile(join(DEFAULT_MEMBRANE_MODEL, 'model.json'), 'utf8')) as ModelRecord;

/** A model folder derived from the shipped record: model.json with `change` applied, and an inference file of `bytes`. */
async function modelFolder(path: string, change: Partial<ModelRecord>, bytes: number, file = 'model.onnx'): Promise<string> {
  await mkdir(path, { recursive: true });
  await writeFile(join(path, file), new Uint8Array(bytes));
  if (file !== 'weights.bin') await writeFile(join(path, 'weights.bin'), new Uint8Array(0));
  const record: ModelRecord = { ...shippedRecord, ...change };
  if (file !== 'model.onnx') delete record.onnx;
  await writeFile(join(path, 'model.json'), JSON.stringify(record));
  return realpath(path);
}

function backendOf(): Promise<Backend> {
  return createTestBackend(dir, { home: join(dir, 'home'), samplePath: join(dir, 'no-sample'), modelFolders: { shipped, compressed } });
}

function doorOf(b: Backend): Door {
  return createDoor(b.handlers, { logInternal: () => undefined });
}

async function call<T>(door: Door, name: string, args: unknown): Promise<T> {
  const r = await door.call(name, args, { transport: 'browser' });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as T;
}

async function failure(door: Door, name: string, args: unknown): Promise<{ code: string; message: string }> {
  const r = await door.call(name, args, { transport: 'browser' });
  assert.ok(!r.ok, `${name} should have failed`);
  return r.error;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'emseg-models-'));
  await mkdir(join(dir, 'home'), { recursive: true });
  // The shipped model as it is: its real model.json, its real graph.
  await mkdir(join(dir, 'models', 'membrane'), { recursive: true });
  for (const f of ['model.json', 'model.onnx']) await copyFile(join(DEFAULT_MEMBRANE_MODEL, f), join(dir, 'models', 'membrane', f));
  shipped = await realpath(join(dir, 'models', 'membrane'));
  compressed = join(dir, 'models', 'compressed');
  const sourceValidation = { vrand: 0.9697, vinfo: 0.9765 };
  // Measured by `emseg compress --report` against the shipped model (the row and the reference row it keeps).
  await modelFolder(join(compressed, 'int8'), {
    weights: [],
    validation: { vrand: 0.9696, vinfo: 0.9764 },
    compression: {
      method: 'int8', source: { dir: shipped, validation: sourceValidation },
      report: { model: 'int8', method: 'int8', fileMB: 2, mpxPerS: 1.28, vrand: 0.9653, vinfo: 0.9741, threshold: 0.4, threads: 2, slices: 10, reference: { path: shipped, model: 'membrane', mpxPerS: 0.64, vrand: 0.9693, vinfo: 0.9766 } },
    },
  }, 2_000_000);
  // A report row from before reports kept their reference: ΔV_rand against the source's validation V_rand.
  await modelFolder(join(compressed, 'relief'), {
    compression: { method: 'relief', sparsity: 0.6, source: { dir: shipped, validation: sourceValidation }, report: { model: 'relief', method: 'relief', fileMB: 3.9, mpxPerS: 0.6, vrand: 0.9597, vinfo: 0.97, threshold: 0.4, sparsity: 0.6 } },
  }, 3_900_000);
  // Scored when written, never reported: V_rand from its validation scores, speed not measured yet.
  await modelFolder(join(compressed, 'cci'), { validation: { vrand: 0.95, vinfo: 0.96 }, compression: { method: 'cci', source: { dir: shipped, validation: sourceValidation } } }, 1000);
  // Nothing measured at all, and no graph: its size is that of weights.bin.
  await modelFolder(join(compressed, 'lpsphere'), { validation: undefined, compression: { method: 'lpsphere', sparsity: 0.4 } }, 1234, 'weights.bin');
  // Not offered: a refiner, a folder still being written (no model.json yet), a hidden folder, a stray file.
  await modelFolder(join(compressed, 'refiner'), { role: 'refiner', compression: { method: 'int8' } }, 10);
  await mkdir(join(compressed, 'structured'), { recursive: true });
  await writeFile(join(compressed, 'structured', 'weights.bin'), new Uint8Array(8));
  await modelFolder(join(compressed, '.tmp-binary'), { compression: { method: 'binary' } }, 10);
  await writeFile(join(compressed, 'README.md'), 'compressed models');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('the list: shipped, compressed and opened membrane models with their table rows; the choice persists', async () => {
  let backend = await backendOf();
  let door = doorOf(backend);
  try {
    const list = await call<ModelList>(door, 'listModels', {});
    assert.deepEqual(list.models.map((m) => [m.name, m.origin, m.method]), [
      ['membrane', 'shipped', 'none'],
      ['cci', 'compressed', 'cci'],
      ['int8', 'compressed', 'int8'],
      ['lpsphere', 'compressed', 'lpsphere'],
      ['relief', 'compressed', 'relief'],
    ]);
    assert.equal(list.chosen, null, 'nothing chosen yet: the shipped model runs');
    const byName = (n: string) => list.models.find((m) => m.name === n)!;
    // The shipped model was the int8 report's reference row: its speed and scores come from there.
    assert.deepEqual(byName('membrane'), {
      path: shipped, name: 'membrane', origin: 'shipped', method: 'none', fileBytes: (await stat(join(DEFAULT_MEMBRANE_MODEL, 'model.onnx'))).size,
      mpxPerS: 0.64, speedup: 1, vrand: 0.9693, vinfo: 0.9766, deltaVrand: null, sparsity: null, measured: 'report', pixelSizeNm: 4, zContext: 0,
    } satisfies ModelInfo);
    assert.deepEqual(byName('int8'), {
      path: await realpath(join(compressed, 'int8')), name: 'int8', origin: 'compressed', method: 'int8', fileBytes: 2_000_000,
      mpxPerS: 1.28, speedup: 2, vrand: 0.9653, vinfo: 0.9741, deltaVrand: -0.004, sparsity: null, measured: 'report', pixelSizeNm: 4, zContext: 0,
    } satisfies ModelInfo);
    const relief = byName('relief');
    assert.equal(relief.deltaVrand, -0.01, 'against the source validation V_rand when the report kept no reference');
    assert.equal(relief.speedup, null);
    assert.equal(relief.sparsity, 0.6);
    const cci = byName('cci');
    assert.deepEqual([cci.measured, cci.mpxPerS, cci.vrand, cci.vinfo, cci.deltaVrand], ['validation', null, 0.95, 0.96, -0.0197]);
    const lp = byName('lpsphere');
    assert.deepEqual([lp.measured, lp.fileBytes, lp.mpxPerS, lp.vrand, lp.deltaVrand, lp.sparsity], [null, 1234, null, null, null, 0.4]);

    // A folder of the user's: opened through the guard, listed, chosen.
    const mine = await modelFolder(join(dir, 'home', 'my-models', 'mine'), { validation: { vrand: 0.96, vinfo: 0.97 }, pixelSizeNm: undefined }, 5000);
    const opened = await call<ModelInfo>(door, 'openModel', { path: join(dir, 'home', 'my-models', 'mine') });
    assert.deepEqual([opened.path, opened.origin, opened.method, opened.measured, opened.vrand, opened.deltaVrand], [mine, 'opened', 'none', 'validation', 0.96, null]);
    assert.equal(opened.pixelSizeNm, null, 'a model trained without a known pixel size says so');
    // Opening a listed folder again adds nothing.
    await call<ModelInfo>(door, 'openModel', { path: mine });
    assert.equal((await call<{ chosen: string }>(door, 'chooseModel', { path: join(compressed, 'int8') })).chosen, byName('int8').path);
    assert.equal((await call<{ chosen: string }>(door, 'chooseModel', { path: mine })).chosen, mine);
  } finally {
    await backend.close();
  }

  // The next session: the opened folder is still listed (once) and still chosen.
  backend = await backendOf();
  door = doorOf(backend);
  try {
    const again = await call<ModelList>(door, 'listModels', {});
    assert.deepEqual(again.models.map((m) => m.name), ['membrane', 'cci', 'int8', 'lpsphere', 'relief', 'mine']);
    assert.equal(again.chosen, await realpath(join(dir, 'home', 'my-models', 'mine')));
    // A chosen folder that disappears is no longer listed, and the choice falls back to none (the shipped model).
    await rm(join(dir, 'home', 'my-models'), { recursive: true });
    const gone = await call<ModelList>(door, 'listModels', {});
    assert.equal(gone.models.length, 5);
    assert.equal(gone.chosen, null);
  } finally {
    await backend.close();
  }
});

test('refused: folders outside the opened ones, refiners, non-models, unlisted choices', async () => {
  const backend = await backendOf();
  const door = doorOf(backend);
  try {
    const outside = await modelFolder(join(dir, 'elsewhere', 'model'), {}, 10);
    assert.equal((await failure(door, 'openModel', { path: outside })).code, 'forbidden');
    const refiner = await modelFolder(join(dir, 'home', 'refiner'), { role: 'refiner' }, 10);
    assert.match((await failure(door, 'openModel', { path: refiner })).message, /refiner model/);
    await mkdir(join(dir, 'home', 'not-a-model'), { recursive: true });
    const notModel = await failure(door, 'openModel', { path: join(dir, 'home', 'not-a-model') });
    assert.equal(notModel.code, 'user');
    assert.match(notModel.message, /not an EMSeg model folder/);
    assert.equal((await failure(door, 'chooseModel', { path: outside })).code, 'not-found');
    assert.equal((await failure(door, 'chooseModel', { path: join(dir, 'home', 'nothing') })).code, 'not-found');
    assert.equal((await failure(door, 'openModel', { path: 'relative/model' })).code, 'forbidden');
    assert.equal((await failure(door, 'listModels', { extra: 1 })).code, 'bad-request');
    assert.equal((await failure(door, 'chooseModel', {})).code, 'bad-request');
  } finally {
    await backend.close();
  }
});

test('jobs and batches take a listed model outside the opened folders; other paths meet the guard', async () => {
  const backend = await backendOf();
  const door = doorOf(backend);
  try {
    await writePngs(join(dir, 'home', 'stack'), 2, 32, 32);
    const stack = await call<StackSummary>(door, 'openStack', { path: join(dir, 'home', 'stack') });
    const int8 = await realpath(join(compressed, 'int8'));
    // The compressed folder is not under any opened folder, yet the picker listed it: the job gets its real path.
    await call(door, 'startJob', { stackId: stack.stackId, kind: 'predict', params: { membraneModel: join(compressed, '.', 'int8') } });
    const job = (await call<JobInfo[]>(door, 'listJobs', {})).at(-1)!;
    assert.equal(job.membraneModel, int8);
    // Without a choice the job says nothing of its model (the shipped one).
    await call(door, 'startJob', { stackId: stack.stackId, kind: 'predict', params: {} });
    assert.equal((await call<JobInfo[]>(door, 'listJobs', {})).at(-1)!.membraneModel, undefined);
    const outside = await modelFolder(join(dir, 'elsewhere2', 'model'), {}, 10);
    assert.equal((await failure(door, 'startJob', { stackId: stack.stackId, kind: 'predict', params: { membraneModel: outside } })).code, 'forbidden');
    assert.equal((await failure(door, 'startBatch', { input: join(dir, 'home', 'stack'), outDir: join(dir, 'home', 'out'), membraneModel: outside })).code, 'forbidden');
    // A compressed folder that is not a membrane model is not vouched for either.
    assert.equal((await failure(door, 'startJob', { stackId: stack.stackId, kind: 'predict', params: { membraneModel: join(compressed, 'refiner') } })).code, 'forbidden');

    // A batch with a listed model (a tiny real one, so the batch's worker processes run it): the manifest names it.
    await writeTinyModels(join(dir, 'tiny'), { refiner: false });
    await rename(join(dir, 'tiny', 'membrane'), join(compressed, 'tiny'));
    const tiny = await realpath(join(compressed, 'tiny'));
    const outDir = join(dir, 'home', 'batch-out');
    const { batchId } = await call<{ batchId: string }>(door, 'startBatch', { input: join(dir, 'home', 'stack'), outDir, refineRounds: 0, membraneModel: tiny });
    const t0 = Date.now();
    let batch: BatchInfo | undefined;
    while ((batch = (await call<BatchInfo[]>(door, 'listBatches', {})).find((b) => b.batchId === batchId))?.state === 'running' && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 50));
    assert.equal(batch?.state, 'done', batch?.error ?? '');
    const { records } = await readManifestFile(join(outDir, 'manifest.jsonl'));
    assert.equal(records.length, 2);
    // With 0 rounds the refiner is not run, but its round-0 thresholds are used, so the manifest names it too.
    assert.ok(records.every((r) => r.status === 'done' && r.model.membrane === tiny && r.model.refiner === resolve(DEFAULT_REFINER_MODEL)), JSON.stringify(records.map((r) => r.model)));
  } finally {
    await backend.close();
  }
});
