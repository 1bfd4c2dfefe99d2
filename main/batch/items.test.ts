// The batch's pure parts, without worker processes: item discovery (folder tree, collisions, folder stacks, list
// files, the output folder inside the input), ground-truth pairing, shards, the manifest (torn lines, latest record
// wins, merge), parameter hashing and the Slurm scripts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachGroundTruth, discoverItems, parseShard, selectShard } from './items';
import { canonicalJson, contentHash, fingerprint, paramsHash } from './hash';
import { latestRecords, ManifestWriter, mergeManifests, readManifestFile, type ManifestRecord } from './manifest';
import { shellQuote, slurmScripts } from './slurm';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-batch-items-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function touch(path: string, text = 'x'): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, text);
}

test('a folder tree: one item per image, keys mirror the tree without extensions, collisions keep their names', () =>
  withDir(async (dir) => {
    const input = join(dir, 'in');
    for (const f of ['10.png', '2.png', 'x.tif', 'x.png', 'notes.txt', '.hidden.png', 'Thumbs.db', 'sub/a.tiff', 'sub/deeper/b.jpg', 'y.png', 'y/c.png']) {
      await touch(join(input, f));
    }
    // The output folder inside the input is never walked: a rerun must not pick up its own outputs.
    await touch(join(input, 'out', 'old', 'labels.tif'));
    const items = await discoverItems(input, { exclude: [join(input, 'out')] });
    assert.deepEqual(
      items.map((i) => [i.key, i.rel, i.kind]),
      [
        ['2', '2.png', 'file'],
        ['10', '10.png', 'file'],
        ['sub/a', 'sub/a.tiff', 'file'],
        ['sub/deeper/b', 'sub/deeper/b.jpg', 'file'],
        ['x.png', 'x.png', 'file'],
        ['x.tif', 'x.tif', 'file'],
        ['y.png', 'y.png', 'file'],
        ['y/c', 'y/c.png', 'file'],
      ],
    );
    assert.equal(items[0].input, join(input, '2.png'));
  }));

test('--folder-stacks: leaf folders of images are one stack item each; a list file names files and folders', () =>
  withDir(async (dir) => {
    const input = join(dir, 'in');
    for (const f of ['s1/0.png', 's1/1.png', 'group/s2/0.tif', 'group/loose.png', 'single.tif']) await touch(join(input, f));
    const items = await discoverItems(input, { folderStacks: true });
    assert.deepEqual(
      items.map((i) => [i.key, i.kind]),
      [
        ['group/loose', 'file'],
        ['group/s2', 'folder'],
        ['s1', 'folder'],
        ['single', 'file'],
      ],
    );
    // The input itself a leaf folder: one stack named after it.
    assert.deepEqual((await discoverItems(join(input, 's1'), { folderStacks: true })).map((i) => [i.key, i.kind, i.rel]), [['s1', 'folder', '']]);

    const list = join(dir, 'list.txt');
    await writeFile(list, `# stacks to do\n${join(input, 's1')}\n\nin/group/loose.png\nin/missing.tif\nin/single.tif\n`);
    const listed = await discoverItems(list);
    assert.deepEqual(
      listed.map((i) => [i.key, i.kind]),
      [
        ['group/loose', 'file'],
        ['missing', 'file'],
        ['s1', 'folder'],
        ['single', 'file'],
      ],
      'keys relative to the deepest common folder; a missing entry stays an item (it will fail, recorded)',
    );
    await writeFile(list, '# nothing\n');
    await assert.rejects(discoverItems(list), /names no inputs/);
    await assert.rejects(discoverItems(join(dir, 'nope')), /no such file or folder/);
  }));

test('ground truth pairs by relative path, then by stem with any image extension', () =>
  withDir(async (dir) => {
    for (const f of ['in/a/20.png', 'in/a/21.png', 'in/b/s.tif', 'gt/a/20.png', 'gt/b/s.png']) await touch(join(dir, f));
    const items = await discoverItems(join(dir, 'in'));
    assert.equal(await attachGroundTruth(items, join(dir, 'gt')), 2);
    assert.deepEqual(
      items.map((i) => i.gt),
      [join(dir, 'gt/a/20.png'), undefined, join(dir, 'gt/b/s.png')],
    );
    await assert.rejects(attachGroundTruth(items, join(dir, 'gt/a/20.png')), /one file, but the batch has 3 items/);
  }));

test('shards: i/N parsing, and the N shares partition the sorted items evenly and deterministically', () => {
  assert.deepEqual(parseShard('2/3'), { index: 2, count: 3 });
  for (const bad of ['0/2', '3/2', '1', 'a/b', '1/0']) assert.throws(() => parseShard(bad), /--shard must be i\/N/);
  const items = Array.from({ length: 11 }, (_, k) => k);
  const shares = [1, 2, 3].map((index) => selectShard(items, { index, count: 3 }));
  assert.deepEqual(shares.flat().sort((a, b) => a - b), items);
  assert.deepEqual(shares.map((s) => s.length), [4, 4, 3]);
  assert.deepEqual(selectShard(items, { index: 2, count: 3 }), shares[1]);
  assert.deepEqual(selectShard(items, undefined), items);
});

test('hashes: canonical parameters, folder content, fingerprints that change with the files', () =>
  withDir(async (dir) => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } }), '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}');
    assert.equal(paramsHash({ a: 1, b: 2 }), paramsHash({ b: 2, a: 1 }));
    assert.notEqual(paramsHash({ a: 1 }), paramsHash({ a: 2 }));
    await touch(join(dir, 'f/0.png'), 'one');
    await touch(join(dir, 'f/1.png'), 'two');
    const h = await contentHash(join(dir, 'f'));
    const fp = await fingerprint(join(dir, 'f'));
    await writeFile(join(dir, 'f/1.png'), 'TWO');
    assert.notEqual(await contentHash(join(dir, 'f')), h);
    await writeFile(join(dir, 'f/1.png'), 'two');
    assert.equal(await contentHash(join(dir, 'f')), h, 'the same bytes hash the same');
    await writeFile(join(dir, 'f/2.png'), '');
    assert.notEqual(await fingerprint(join(dir, 'f')), fp);
    assert.match(await contentHash(join(dir, 'f/0.png')), /^sha256:[0-9a-f]{64}$/);
  }));

function rec(key: string, end: string, status: 'done' | 'failed' = 'done'): ManifestRecord {
  return {
    v: 1,
    key,
    input: `/in/${key}.png`,
    kind: 'file',
    params: { refineRounds: null, segment: {} as never, tta: false, tilePx: 1024, writeRounds: true },
    paramsHash: 'p',
    model: { membrane: '/m', refiner: null, hash: 'm' },
    status,
    start: end,
    end,
    seconds: { total: 1 },
    host: 'h',
    pid: 1,
  };
}

test('manifest: torn last line skipped, appends start on a fresh line, latest record wins, merge sorts by key', () =>
  withDir(async (dir) => {
    const path = join(dir, 'manifest.jsonl');
    await writeFile(path, `${JSON.stringify(rec('b', '2026-01-01T00:00:02Z', 'failed'))}\n${JSON.stringify(rec('a', '2026-01-01T00:00:01Z')).slice(0, 40)}`);
    const w = await ManifestWriter.open(path);
    await w.append(rec('c', '2026-01-01T00:00:03Z'));
    await w.close();
    const m = await readManifestFile(path);
    assert.deepEqual(m.records.map((r) => r.key), ['b', 'c']);
    assert.equal(m.badLines, 1);

    // A shard's manifest with a later record for b: that one wins, whichever file it is in.
    await writeFile(join(dir, 'manifest.shard-2-of-2.jsonl'), `${JSON.stringify(rec('b', '2026-01-01T00:00:09Z'))}\n${JSON.stringify(rec('a', '2026-01-01T00:00:04Z'))}\n`);
    await appendFile(path, `${JSON.stringify(rec('a', '2026-01-01T00:00:05Z', 'failed'))}\n`);
    const latest = await latestRecords(dir);
    assert.equal(latest.records.get('b')?.status, 'done');
    assert.equal(latest.records.get('a')?.status, 'failed');
    const merged = await mergeManifests(dir);
    assert.deepEqual(merged.records.map((r) => `${r.key}:${r.status}`), ['a:failed', 'b:done', 'c:done']);
    assert.equal((await readFile(path, 'utf8')).trim().split('\n').length, 3);
  }));

test('slurm scripts: an array of N shards, a merge after all of them, paths quoted', () => {
  const s = slurmScripts({
    batchArgs: ['/data/in put', '--out', '/data/out', '--workers', '2'],
    scriptDir: '/data/out/slurm',
    array: 4,
    cpusPerTask: 2,
    partition: 'cpu',
    time: '1:00:00',
    mem: '8G',
    report: true,
    node: '/usr/bin/node',
    emseg: '/opt/emseg/main/cli/emseg.mjs',
  });
  assert.match(s.array, /^#!\/bin\/bash\n/);
  for (const line of ['#SBATCH --array=1-4', '#SBATCH --cpus-per-task=2', '#SBATCH --partition=cpu', '#SBATCH --time=1:00:00', '#SBATCH --mem=8G']) assert.ok(s.array.includes(line), line);
  assert.ok(s.array.includes(`batch '/data/in put' --out /data/out --workers 2 --shard "\${SLURM_ARRAY_TASK_ID}/4"`));
  assert.ok(s.merge.includes(`batch --merge '/data/in put' --out /data/out --workers 2 --report`));
  assert.ok(!s.merge.includes('--array'));
  assert.match(s.submit, /sbatch --parsable --dependency=afterany:"\$array"/);
  assert.equal(shellQuote(`it's`), `'it'\\''s'`);
});
