// `emseg batch` end to end with real worker processes and tiny random-weight models: outputs mirror the input tree,
// the manifest records every item (hashes, outputs, scores against ground truth), a corrupt input fails alone with
// exit code 3, reruns skip exactly the unchanged items, the report is self-contained, and shards merged equal a
// local run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CommandContext } from '../cli/command';
import { batchCommand } from '../cli/commands/batch';
import { openStack, writeTiffStack } from '../io';
import { hashFile } from './hash';
import { readManifestFile, type ManifestRecord } from './manifest';
import type { BatchSummary } from './run';
import { syntheticSlice, writePng, writeStack, writeTinyModels } from './fixtures';

let dir = '';
let models = '';
let input = '';
let gt = '';

/** Ground truth in the ISBI form: 0 = membrane (the slice's dark walls), 255 = interior. */
function truthOf(width: number, height: number, seed: number) {
  const s = syntheticSlice(width, height, seed);
  return { width, height, data: s.data.map((v) => (v < 110 ? 0 : 255)) };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'emseg-batch-'));
  models = await writeTinyModels(join(dir, 'models'));
  input = join(dir, 'in');
  gt = join(dir, 'gt');
  await mkdir(join(input, 'a'), { recursive: true });
  await mkdir(join(input, 'b'), { recursive: true });
  await mkdir(join(gt, 'a'), { recursive: true });
  await mkdir(join(gt, 'b'), { recursive: true });
  await writePng(join(input, 'a', '0.png'), syntheticSlice(40, 32, 1));
  await writePng(join(input, 'a', '1.png'), syntheticSlice(40, 32, 2));
  await writeStack(join(input, 'b', 'stack.tif'), 3, 36, 28, 5);
  await writeFile(join(input, 'b', 'broken.tif'), Buffer.from('II*\0this is not a TIFF'));
  await writePng(join(gt, 'a', '0.png'), truthOf(40, 32, 1));
  await writeTiffStack(join(gt, 'b', 'stack.tif'), [5, 6, 7].map((seed) => truthOf(36, 28, seed)));
});

after(() => rm(dir, { recursive: true, force: true }));

async function batch(args: string[]): Promise<{ code: number; summary: BatchSummary; err: string[]; out: string[] }> {
  const parsed = parseArgs({ args: [...args, '--json', '--quiet'], options: { ...batchCommand.options, quiet: { type: 'boolean' } }, allowPositionals: true, strict: true });
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CommandContext = {
    values: parsed.values as CommandContext['values'],
    positionals: parsed.positionals,
    quiet: true,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  };
  const code = await batchCommand.run(ctx);
  const json = out.find((l) => l.startsWith('{'));
  return { code, summary: json ? (JSON.parse(json) as BatchSummary) : (undefined as never), err, out };
}

async function lines(outDir: string, name = 'manifest.jsonl'): Promise<ManifestRecord[]> {
  return (await readManifestFile(join(outDir, name))).records;
}

async function mtimes(outDir: string, key: string): Promise<number[]> {
  const names = (await readdir(join(outDir, key))).sort();
  return Promise.all(names.map(async (n) => (await stat(join(outDir, key, n))).mtimeMs));
}

const common = () => ['--model', models, '--gt', gt, '--threads', '1'];

test('batch: mirrored outputs, a full manifest, the corrupt input failed alone, reruns skip what is unchanged', async () => {
  const out = join(dir, 'out');
  const r1 = await batch([input, '--out', out, ...common(), '--workers', '2']);
  assert.equal(r1.code, 3, 'exit code 3: some item failed');
  assert.deepEqual([r1.summary.items, r1.summary.done, r1.summary.failed, r1.summary.unchanged], [4, 3, 1, 0]);
  assert.equal(r1.summary.workers, 2);
  const recs = await lines(out);
  assert.deepEqual(recs.map((r) => r.key).sort(), ['a/0', 'a/1', 'b/broken', 'b/stack']);

  const broken = recs.find((r) => r.key === 'b/broken')!;
  assert.equal(broken.status, 'failed');
  assert.match(broken.error!, /broken\.tif: /);
  assert.ok(!broken.error!.includes('\n'));
  await assert.rejects(stat(join(out, 'b', 'broken')), 'a failed item has no output folder');

  for (const r of recs.filter((x) => x.status === 'done')) {
    assert.match(r.inputHash!, /^sha256:/);
    assert.equal(r.inputHash, (await hashFile(r.input)).sha256);
    assert.match(r.model.hash, /^sha256:/);
    assert.deepEqual(r.outputs!.map((o) => o.file), ['labels.tif', 'membrane-round-0.tif', 'membrane-round-1.tif', 'membrane.tif']);
    for (const o of r.outputs!) assert.deepEqual(await hashFile(join(out, r.key, o.file)), { bytes: o.bytes, sha256: o.sha256 });
    const labels = await openStack(join(out, r.key, 'labels.tif'));
    assert.equal(labels.info.depth, r.slices);
    assert.equal(labels.info.pixelType, 'uint32');
    await labels.close();
    assert.ok(r.seconds.total > 0 && r.seconds.segment! > 0);
  }
  const byKey = new Map(recs.map((r) => [r.key, r]));
  assert.equal(byKey.get('b/stack')!.slices, 3);
  assert.equal(byKey.get('b/stack')!.metrics?.slices, 3, 'scored against the 3-slice ground truth');
  assert.equal(typeof byKey.get('a/0')!.metrics?.vrand, 'number');
  assert.equal(byKey.get('a/1')!.metrics, undefined, 'no ground truth, no metrics');
  assert.deepEqual(await readdir(join(out, '.emseg', 'partial')).catch(() => []), [], 'no leftovers');

  // Rerun, with another tile edge (speed and memory only): nothing done again but the failed item; outputs untouched.
  const before0 = await mtimes(out, 'a/0');
  const r2 = await batch([input, '--out', out, ...common(), '--workers', '1', '--tile', '512']);
  assert.deepEqual([r2.code, r2.summary.done, r2.summary.unchanged, r2.summary.failed], [3, 0, 3, 1]);
  assert.deepEqual((await lines(out)).slice(4).map((r) => r.key), ['b/broken']);
  assert.deepEqual(await mtimes(out, 'a/0'), before0);

  // A changed input, a truncated output and a removed corrupt file: exactly those items are redone.
  await writePng(join(input, 'a', '1.png'), syntheticSlice(40, 32, 9));
  await truncate(join(out, 'b', 'stack', 'labels.tif'), 100);
  await rm(join(input, 'b', 'broken.tif'));
  const r3 = await batch([input, '--out', out, ...common(), '--workers', '1', '--report']);
  assert.deepEqual([r3.code, r3.summary.items, r3.summary.done, r3.summary.unchanged, r3.summary.failed], [0, 3, 2, 1, 0]);
  assert.deepEqual((await lines(out)).slice(5).map((r) => r.key).sort(), ['a/1', 'b/stack']);
  assert.deepEqual(await mtimes(out, 'a/0'), before0);

  const html = await readFile(join(out, 'report.html'), 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.equal((html.match(/class="card[^"]*" id="item-/g) ?? []).length, 3);
  assert.equal((html.match(/src="data:image\/png;base64,/g) ?? []).length, 9, 'raw, map and overlay for each item');
  assert.ok(html.includes('<svg') && html.includes('V_rand'));
  assert.doesNotMatch(html, /(src|href)="(https?:|\/\/|file:)/, 'self-contained: nothing fetched');

  // Ground truth appears for a/1: its labels are scored where they are, not segmented again.
  const before1 = await mtimes(out, 'a/1');
  await writePng(join(gt, 'a', '1.png'), truthOf(40, 32, 9));
  const r35 = await batch([input, '--out', out, ...common(), '--workers', '1']);
  assert.deepEqual([r35.code, r35.summary.done, r35.summary.unchanged], [0, 1, 2]);
  const rescored = (await lines(out)).at(-1)!;
  assert.equal(rescored.key, 'a/1');
  assert.equal(typeof rescored.metrics?.vrand, 'number');
  assert.equal(rescored.seconds.segment, undefined, 'nothing was segmented');
  assert.deepEqual(await mtimes(out, 'a/1'), before1);

  // New parameters: everything is redone.
  const r4 = await batch([input, '--out', out, ...common(), '--workers', '1', '--min-size', '4', '--no-round-maps']);
  assert.deepEqual([r4.code, r4.summary.done, r4.summary.unchanged], [0, 3, 0]);
  const last = (await lines(out)).slice(-3);
  assert.ok(last.every((r) => r.params.segment.minSizePx === 4 && r.outputs!.length === 2));
  assert.deepEqual((await readdir(join(out, 'a', '0'))).sort(), ['labels.tif', 'membrane.tif'], 'the old outputs were replaced, not mixed');
  await writeFile(join(input, 'b', 'broken.tif'), Buffer.from('II*\0this is not a TIFF'));
});

test('batch --shard i/N then --merge gives the manifest and outputs of a local run', async () => {
  const local = join(dir, 'local');
  const sharded = join(dir, 'sharded');
  const args = (out: string) => [input, '--out', out, ...common(), '--workers', '1'];
  assert.equal((await batch(args(local))).code, 3);
  const s1 = await batch([...args(sharded), '--shard', '1/2']);
  const s2 = await batch([...args(sharded), '--shard', '2/2']);
  assert.deepEqual([s1.summary.items, s2.summary.items, s1.summary.totalItems], [2, 2, 4]);
  assert.ok((await lines(sharded, 'manifest.shard-1-of-2.jsonl')).every((r) => r.shard === '1/2'));

  const m = await batch(['--merge', input, '--out', sharded]);
  assert.equal(m.code, 3, 'the corrupt item is still failed after the merge');
  const merged = await lines(sharded);
  const mine = (await lines(local)).sort((a, b) => a.key.localeCompare(b.key));
  const comparable = (r: ManifestRecord) => ({ key: r.key, status: r.status, inputHash: r.inputHash, paramsHash: r.paramsHash, model: r.model.hash, outputs: r.outputs, metrics: r.metrics, error: r.error });
  assert.deepEqual(merged.map(comparable), mine.map(comparable));

  // A shard that never ran: its items are reported missing.
  await rm(join(sharded, 'manifest.shard-2-of-2.jsonl'));
  await rm(join(sharded, 'manifest.jsonl'));
  const partial = await batch(['--merge', input, '--out', sharded]);
  assert.equal(partial.code, 3);
  assert.equal(partial.out.filter((l) => l.startsWith('  missing ')).length, 2);
});
