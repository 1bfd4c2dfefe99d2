// The project store: edits, undo and redo survive reopening (with or without a clean close), compaction keeps only
// the current generation, a torn journal tail is dropped, damaged files fail with a message naming them, exports
// read back as TIFF stacks with the right values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paintStroke, replaceLabels } from '../../ml/proofread';
import { openStack } from '../io';
import { crc32, crc32Parts, crc32Table, decodeJournal, encodeRecord, decodeHistory, encodeHistory } from './codec';
import { exportProject } from './export';
import { FIXTURE, fixtureInitial, fixtureOp, fixtureStateAfter } from './fixtures';
import type { Labels } from '../../ml/types';
import { Project, type SliceResults } from './store';

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'emseg-project-test-'));
}

// No timers during tests: compaction happens when the test says so.
const QUIET = { syncIntervalMs: 3_600_000, compactIntervalMs: 3_600_000 };

/** A fixture project (depth slices of fixture labels, no ground truth) in `folder`. */
const init = (folder: string, depth: number = FIXTURE.depth) =>
  Project.create(folder, { stackPath: '/data/stack.tif', ...FIXTURE, depth, initial: async (layer, z) => (layer === 'labels' ? fixtureInitial(z) : null) }, QUIET);

/** A job's results with labels (no maps) for these slices. */
async function* jobLabelsFor(slices: number[], labels: (z: number) => Uint32Array): AsyncGenerator<SliceResults> {
  for (const z of slices) yield { z, maps: [], labels: labels(z) };
}

/** Runs ops [from, to) of the fixture sequence on a project. */
async function run(p: Project, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const op = fixtureOp(i);
    if (op.kind === 'paint') await p.edit('labels', op.z, op.make);
    else if (op.kind === 'undo') await p.undo();
    else await p.redo();
  }
}

async function assertHolds(p: Project, n: number): Promise<void> {
  const e = fixtureStateAfter(n);
  for (let z = 0; z < FIXTURE.depth; z++) assert.deepEqual((await p.slice('labels', z)).data, e.slices[z], `slice ${z} after ${n} ops`);
  assert.equal(p.undoDepth, e.undo);
  assert.equal(p.redoDepth, e.redo);
}

test('edits, undo and redo survive reopening without a clean close, and undo keeps working after it', async () => {
  const dir = await scratch();
  try {
    const p = await init(dir);
    await run(p, 0, 23);
    await assertHolds(p, 23);
    assert.ok(p.undoDepth > 3);
    // No snapshot: as if the process died after its last sync. The journal alone carries the edits.
    await p.close({ snapshot: false });
    const q = await Project.open(dir);
    await assertHolds(q, 23);
    await run(q, 23, 40);
    await assertHolds(q, 40);
    await q.close();
    const r = await Project.open(dir);
    await assertHolds(r, 40);
    // Undo everything down to the initial labels: the history is complete.
    while (r.undoDepth > 0) await r.undo();
    for (let z = 0; z < FIXTURE.depth; z++) assert.deepEqual((await r.slice('labels', z)).data, fixtureInitial(z));
    await r.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('compaction commits a new generation and removes the old one', async () => {
  const dir = await scratch();
  try {
    const p = await init(dir);
    await run(p, 0, 10);
    await p.compact();
    assert.equal(p.info.generation, 1);
    await run(p, 10, 17);
    await p.compact();
    const files = [...(await readdir(dir)), ...(await readdir(join(dir, 'slices'))).map((f) => `slices/${f}`)].sort();
    assert.deepEqual(files, ['history-g2.bin', 'journal-g2.log', 'project.json', 'project.lock', 'slices', 'slices/labels-z0-g2.u32', 'slices/labels-z1-g2.u32']);
    assert.equal((await stat(join(dir, 'journal-g2.log'))).size, 0);
    await run(p, 17, 21);
    await p.close({ snapshot: false });
    const q = await Project.open(dir);
    await assertHolds(q, 21);
    await q.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a torn journal tail is dropped and the journal is cut before new appends', async () => {
  const dir = await scratch();
  try {
    const p = await init(dir);
    await run(p, 0, 8);
    const journal = join(dir, p.info.journal);
    const full = (await stat(journal)).size;
    await run(p, 8, 9); // op 8 is a paint: one more record
    const withNine = (await stat(journal)).size;
    assert.ok(withNine > full);
    await p.close({ snapshot: false });
    // Tear the last record in half, as a kill -9 in the middle of the write would.
    await truncate(journal, full + Math.floor((withNine - full) / 2));
    const q = await Project.open(dir);
    assert.ok(q.droppedTailBytes > 0);
    await assertHolds(q, 8);
    assert.equal((await stat(journal)).size, full);
    await run(q, 8, 12);
    await q.close();
    const r = await Project.open(dir);
    await assertHolds(r, 12);
    await r.close();
    // A flipped byte inside a record is caught by its checksum in the same way.
    const s = await init(join(dir, 'second'));
    await run(s, 0, 3);
    await s.close({ snapshot: false });
    const j2 = join(dir, 'second', s.info.journal);
    const bytes = await readFile(j2);
    bytes[bytes.length - 3] ^= 0xff;
    await writeFile(j2, bytes);
    const t = await Project.open(join(dir, 'second'));
    await assertHolds(t, 2);
    await t.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('damaged or foreign files fail with one line naming the file', async () => {
  const dir = await scratch();
  try {
    const p = await init(dir);
    await run(p, 0, 4);
    await p.close();
    const sliceFile = join(dir, 'slices', 'labels-z0-g1.u32');
    const b = await readFile(sliceFile);
    b[100] ^= 1;
    await writeFile(sliceFile, b);
    const q = await Project.open(dir);
    await assert.rejects(q.slice('labels', 0), (e: Error) => e.message.includes(sliceFile) && /checksum/.test(e.message) && !e.message.includes('\n'));
    await q.close().catch(() => undefined);
    await writeFile(join(dir, 'project.json'), '{"format":"emseg-project","version":9}');
    await assert.rejects(Project.open(dir), /project\.json: project format version 9/);
    await assert.rejects(Project.open(join(dir, 'nothing')), /no EMSeg project here/);
    await assert.rejects(init(dir).then(() => init(dir)), /already holds a project/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('locks and slice status are saved; the brush skips a locked segment', async () => {
  const dir = await scratch();
  try {
    const p = await init(dir);
    await p.setLocked(0, 1, true);
    await p.setSliceStatus(1, 'done');
    await p.close({ snapshot: false });
    const q = await Project.open(dir);
    assert.deepEqual([...q.locked(0)], [1]);
    assert.equal(q.info.sliceStatus[1], 'done');
    // A stroke across the whole first row: stripe 1 (x < 8) is locked and keeps its id.
    await q.edit('labels', 0, (l, locked) => paintStroke(l, 0, [0, 0.5, 64, 0.5], 0.5, 42, locked));
    const row = (await q.slice('labels', 0)).data.slice(0, 64);
    assert.deepEqual([...row.slice(0, 8)], [1, 1, 1, 1, 1, 1, 1, 1]);
    assert.ok(row.slice(8).every((v) => v === 42));
    await q.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('export writes uint32 labels and ISBI ground truth that read back as stacks', async () => {
  const dir = await scratch();
  try {
    const p = await init(join(dir, 'p'));
    await run(p, 0, 6);
    // Ground truth on slice 1: all interior, then a membrane line at column 10.
    await p.edit('truth', 1, (l) => paintStroke(l, 1, [0, 0, 10, 0, 10, 64, 0, 64, 0, 0], 64, 255));
    await p.edit('truth', 1, (l) => paintStroke(l, 1, [10.5, 0, 10.5, 64], 0.5, 0));
    const out = await exportProject(p, dir, { x: 4, y: 4, z: 50 });
    assert.deepEqual(out.truthSlices, [1]);
    // No job stored maps in this project: no membrane files.
    assert.deepEqual([out.membrane, out.membraneRounds], [null, []]);
    assert.ok(!(await readdir(dir)).some((f) => f.startsWith('membrane')));
    const labels = await openStack(out.labels);
    assert.equal(labels.info.pixelType, 'uint32');
    assert.equal(labels.info.depth, 2);
    assert.deepEqual((await labels.readSlice(0)).data, (await p.slice('labels', 0)).data);
    await labels.close();
    const truth = await openStack(out.truth);
    assert.equal(truth.info.pixelType, 'uint8');
    const t1 = (await truth.readSlice(1)).data;
    assert.equal(t1[10], 0);
    assert.equal(t1[9], 255);
    assert.equal(t1[64 * 30 + 5], 255);
    await truth.close();
    const manifest = JSON.parse(await readFile(out.manifest, 'utf8')) as { train: string };
    assert.match(manifest.train, /--label-membrane-value 0 --train-slices 1 /);
    await p.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a job's results: maps survive reopening, labels taken where the slice was empty and untouched, proposed elsewhere", async () => {
  const dir = await scratch();
  try {
    const { width: W, height: H } = FIXTURE;
    const p = await Project.create(dir, { stackPath: '/data/stack.tif', width: W, height: H, depth: 3, initial: async (layer, z) => (layer === 'labels' && z === 0 ? fixtureInitial(0) : null) }, QUIET);
    // Slice 2 painted and erased again: all 0, but edited, so its history must stay valid under whatever comes.
    await p.edit('labels', 2, (l) => paintStroke(l, 2, [10, 10, 20, 10], 2, 5));
    await p.edit('labels', 2, (l) => paintStroke(l, 2, [10, 10, 20, 10], 2, 0));
    const map = (z: number, r: number) => Float32Array.from({ length: W * H }, (_, i) => ((i + z * 7 + r * 13) % 97) / 96);
    // Four vertical stripes with ids from 100 up: never an id of the fixture's labels.
    const jobLabels = (z: number) => Uint32Array.from({ length: W * H }, (_, i) => 100 + z + ((i % W) >> 4));
    async function* job(): AsyncGenerator<SliceResults> {
      for (const z of [0, 1, 2]) yield { z, maps: [map(z, 0), map(z, 1)], labels: jobLabels(z) };
    }
    const stored = await p.storeResults(job());
    assert.deepEqual(stored, { maps: [0, 1, 2], labels: [1], proposals: [0, 2] });
    assert.equal(p.undoDepth, 2, "a model's output is not an edit");
    assert.equal(p.info.generation, 1, 'stored with a snapshot');
    assert.deepEqual((await p.slice('labels', 1)).data, jobLabels(1));
    assert.deepEqual((await p.slice('labels', 0)).data, fixtureInitial(0));
    assert.deepEqual((await p.map(2))?.data, map(2, 1));
    assert.deepEqual((await p.map(2, 0))?.data, map(2, 0));
    await p.close({ snapshot: false });

    const q = await Project.open(dir, QUIET);
    assert.equal(q.mapRounds(1), 2);
    assert.deepEqual((await q.map(1))?.data, map(1, 1));
    assert.deepEqual((await q.slice('labels', 1)).data, jobLabels(1));
    assert.deepEqual((await q.proposal(0))?.data, jobLabels(0));
    // Accepting slice 0 with segment 3 locked: one edit on the undo stack; segment 3 keeps its pixels.
    await q.setLocked(0, 3, true);
    const accepted = await q.resolveProposals([0], (l, proposal, locked) => replaceLabels(l, 0, proposal.data, 1000, locked));
    assert.deepEqual(accepted?.deltas.map((d) => d.z), [0]);
    assert.equal(q.undoDepth, 3);
    const init0 = fixtureInitial(0);
    const after0 = (await q.slice('labels', 0)).data.slice();
    for (let i = 0; i < after0.length; i++) assert.equal(after0[i], init0[i] === 3 ? 3 : jobLabels(0)[i]);
    assert.equal(await q.proposal(0), null);
    // Discarding changes no pixel and leaves the history alone.
    assert.equal(await q.resolveProposals([2], null), null);
    assert.deepEqual(Object.keys(q.info.proposals), []);
    await assert.rejects(q.resolveProposals([2], null), /slice 2 has no proposed labels/);
    await q.undo();
    assert.deepEqual((await q.slice('labels', 0)).data, init0);
    // A second job (maps only, one slice) replaces that slice's maps; the files it replaced are gone.
    async function* second(): AsyncGenerator<SliceResults> {
      yield { z: 1, maps: [map(1, 5)], labels: null };
    }
    assert.deepEqual(await q.storeResults(second()), { maps: [1], labels: [], proposals: [] });
    assert.equal(q.mapRounds(1), 1);
    assert.deepEqual((await readdir(join(dir, 'maps'))).sort(), ['round0-z0-v1.f32', 'round0-z1-v2.f32', 'round0-z2-v1.f32', 'round1-z0-v1.f32', 'round1-z2-v1.f32']);
    assert.ok(!(await readdir(join(dir, 'slices'))).some((f) => f.startsWith('proposal-')));
    await q.close();

    const r = await Project.open(dir, QUIET);
    assert.deepEqual((await r.map(1))?.data, map(1, 5));
    assert.equal(r.undoDepth, 2);
    assert.equal(r.redoDepth, 1);
    await r.redo();
    assert.deepEqual((await r.slice('labels', 0)).data, after0);
    // A damaged map fails with the file's name.
    await r.close();
    const file = join(dir, 'maps', 'round0-z1-v2.f32');
    const bytes = await readFile(file);
    bytes[40] ^= 1;
    await writeFile(file, bytes);
    const s = await Project.open(dir, QUIET);
    await assert.rejects(s.map(1), (e: Error) => e.message.includes(file) && /checksum/.test(e.message));
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('accepting the proposals of several slices is one step: one undo takes all back, redo reapplies all, across reopening', async () => {
  const dir = await scratch();
  try {
    const { width: W, height: H } = FIXTURE;
    const p = await init(dir, 3);
    await p.edit('labels', 1, (l) => paintStroke(l, 1, [10, 10, 50, 40], 3, 11));
    const painted1 = (await p.slice('labels', 1)).data.slice();
    // Every slice has labels: the job's labels (horizontal bands, ids from 200) all wait as proposals.
    const jobLabels = (z: number) => Uint32Array.from({ length: W * H }, (_, i) => 200 + 10 * z + (Math.floor(i / W) >> 4));
    assert.deepEqual((await p.storeResults(jobLabelsFor([0, 1, 2], jobLabels))).proposals, [0, 1, 2]);
    await p.setLocked(2, 5, true);
    const accept = (l: Labels, proposal: Labels, locked: ReadonlySet<number>, z: number) => replaceLabels(l, z, proposal.data, 1000, locked);
    // Expected after accepting slices 0 and 2: the job's labels, but segment 5 of slice 2 is locked and stays.
    const accepted = [0, 1, 2].map((z) => {
      const init = fixtureInitial(z);
      return z === 1 ? painted1 : Uint32Array.from(jobLabels(z), (v, i) => (z === 2 && init[i] === 5 ? 5 : v));
    });
    const before = [fixtureInitial(0), painted1, fixtureInitial(2)];
    const holds = async (q: Project, expected: Uint32Array[], what: string) => {
      for (let z = 0; z < 3; z++) assert.deepEqual((await q.slice('labels', z)).data, expected[z], `slice ${z} ${what}`);
    };

    // Slice 1's proposal is discarded; a step naming it is refused as a whole: nothing changes, no proposal goes.
    assert.equal(await p.resolveProposals([1], null), null);
    await assert.rejects(p.resolveProposals([0, 1], accept), /slice 1 has no proposed labels/);
    await assert.rejects(p.resolveProposals([2, 0, 2], accept), /name a slice twice/);
    assert.deepEqual(Object.keys(p.info.proposals), ['0', '2']);
    assert.equal(p.undoDepth, 1);
    await holds(p, before, 'after the refused steps');

    const entry = await p.resolveProposals([0, 2], accept);
    assert.deepEqual(entry?.deltas.map((d) => d.z), [0, 2]);
    assert.equal(p.undoDepth, 2, 'one step for two slices');
    assert.deepEqual(p.info.proposals, {});
    await holds(p, accepted, 'after accepting');
    // Killed before any snapshot: the journal alone brings the group back, as one step.
    await p.close({ snapshot: false });

    const q1 = await Project.open(dir, QUIET);
    await holds(q1, accepted, 'after replaying the journal');
    assert.equal(q1.undoDepth, 2);
    await q1.undo();
    await holds(q1, before, 'after one undo');
    assert.deepEqual([q1.undoDepth, q1.redoDepth], [1, 1]);
    // A clean close: the group now sits on the redo stack of the history file.
    await q1.close();

    const q2 = await Project.open(dir, QUIET);
    assert.deepEqual([q2.undoDepth, q2.redoDepth], [1, 1]);
    await holds(q2, before, 'reopened after the undo');
    await q2.redo();
    await holds(q2, accepted, 'after redo');
    await q2.compact();
    await q2.undo();
    await holds(q2, before, 'after undo from the snapshot');
    await q2.close({ snapshot: false });

    const q3 = await Project.open(dir, QUIET);
    await holds(q3, before, 'reopened: snapshot with the group on the undo stack, then an undo in the journal');
    await q3.redo();
    await holds(q3, accepted, 'redo after reopening');
    // Below the group, the stroke on slice 1: the history is complete.
    await q3.undo();
    await q3.undo();
    await holds(q3, [fixtureInitial(0), fixtureInitial(1), fixtureInitial(2)], 'after undoing everything');
    await q3.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a group torn by a crash is dropped whole; a version 1 project opens and is written back as version 2', async () => {
  const dir = await scratch();
  try {
    const p = await init(dir);
    await p.storeResults(jobLabelsFor([0, 1], (z) => new Uint32Array(FIXTURE.width * FIXTURE.height).fill(50 + z)));
    const journal = join(dir, p.info.journal);
    await p.edit('labels', 0, (l) => paintStroke(l, 0, [1, 1, 30, 30], 2, 9));
    const afterStroke = [(await p.slice('labels', 0)).data.slice(), (await p.slice('labels', 1)).data.slice()];
    const good = (await stat(journal)).size;
    await p.resolveProposals([0, 1], (l, proposal, locked, z) => replaceLabels(l, z, proposal.data, 1000, locked));
    await p.close({ snapshot: false });
    // Tear the group's record near its end: its second slice's pixels are cut off.
    await truncate(journal, (await stat(journal)).size - 100);
    const q = await Project.open(dir, QUIET);
    assert.ok(q.droppedTailBytes > 0);
    assert.equal(q.undoDepth, 1);
    assert.deepEqual((await q.slice('labels', 0)).data, afterStroke[0], 'slice 0 of the torn group not applied');
    assert.deepEqual((await q.slice('labels', 1)).data, afterStroke[1]);
    assert.equal((await stat(journal)).size, good);
    await q.close();

    const file = join(dir, 'project.json');
    const meta = JSON.parse(await readFile(file, 'utf8')) as { version: number };
    assert.equal(meta.version, 2);
    await writeFile(file, JSON.stringify({ ...meta, version: 1 }));
    const r = await Project.open(dir, QUIET);
    assert.equal(r.undoDepth, 1);
    await r.undo();
    await r.close();
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as { version: number }).version, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** The parts an encoder returns, as one buffer. */
function joined(parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

const u32s = (...v: number[]) => new Uint8Array(Uint32Array.from(v).buffer);

test('codec: records and history round-trip; garbage after the last record is reported as torn', () => {
  const delta = (z: number, i: number) => ({ z, indices: Uint32Array.from([1, i]), before: Uint32Array.from([0, 2]), after: Uint32Array.from([255, 255 - z]) });
  const entry = { layer: 'truth' as const, deltas: [delta(3, 5)] };
  // A grouped step: three deltas, slice 0 twice, in the order they apply.
  const group = { layer: 'labels' as const, deltas: [delta(0, 5), delta(4, 9), delta(0, 7)] };
  const a = joined(encodeRecord({ op: 'edit', entry }));
  const g = joined(encodeRecord({ op: 'edit', entry: group }));
  const b = joined(encodeRecord({ op: 'undo' }));
  const buf = new Uint8Array([...a, ...g, ...b, 1, 2, 3]);
  const r = decodeJournal(buf, 'j');
  assert.equal(r.records.length, 3);
  assert.equal(r.goodBytes, a.length + g.length + b.length);
  assert.equal(r.tornBytes, 3);
  assert.deepEqual(r.records[0], { op: 'edit', entry });
  assert.deepEqual(r.records[1], { op: 'edit', entry: group });
  // A group torn anywhere is dropped whole: its record fails its length or checksum.
  const torn = decodeJournal(buf.subarray(0, a.length + g.length - 5), 'j');
  assert.deepEqual(torn.records, [{ op: 'edit', entry }]);
  assert.equal(torn.goodBytes, a.length);
  const h = joined(encodeHistory([entry, group], [entry, entry]));
  const back = decodeHistory(h, 'h');
  assert.deepEqual(back.undo, [entry, group]);
  assert.equal(back.redo.length, 2);
  assert.deepEqual(back.redo[1], entry);
  // Both CRC-32 implementations agree (the table loop serves Nodes without zlib.crc32), over parts too.
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 0xff);
  assert.equal(crc32(bytes), crc32Table(bytes));
  assert.equal(crc32Parts([bytes.subarray(0, 300), bytes.subarray(300)]), crc32(bytes));
  assert.equal(crc32Table(new TextEncoder().encode('123456789')), 0xcbf43926);
  h[20] ^= 1;
  assert.throws(() => decodeHistory(h, 'h.bin'), /h\.bin: checksum/);
});

test('codec: journals and histories written before grouped steps (format 1, one delta per entry) still read', () => {
  const d = { z: 2, indices: Uint32Array.from([4, 8, 9]), before: Uint32Array.from([1, 1, 2]), after: Uint32Array.from([7, 7, 7]) };
  // Format 1 by hand: layer code, z, pixel count, then the arrays; journal op code 1.
  const entryV1 = [u32s(0, d.z, 3), u32s(...d.indices), u32s(...d.before), u32s(...d.after)];
  const payload = joined([u32s(1), ...entryV1]);
  const record = joined([u32s(payload.length, crc32(payload)), payload]);
  const undo = joined(encodeRecord({ op: 'undo' }));
  const r = decodeJournal(new Uint8Array([...record, ...undo]), 'old.log');
  assert.deepEqual(r.records, [{ op: 'edit', entry: { layer: 'labels', deltas: [d] } }, { op: 'undo' }]);
  const body = joined([new TextEncoder().encode('EMSH'), u32s(1, 1, 1), ...entryV1, ...entryV1]);
  const history = joined([body, u32s(crc32(body))]);
  assert.deepEqual(decodeHistory(history, 'old.bin'), { undo: [{ layer: 'labels', deltas: [d] }], redo: [{ layer: 'labels', deltas: [d] }] });
  const future = joined([new TextEncoder().encode('EMSH'), u32s(3, 0, 0)]);
  assert.throws(() => decodeHistory(joined([future, u32s(crc32(future))]), 'new.bin'), /new\.bin: history format version 3/);
});
