// The proofreading calls through the one door, on the real sample stack (read only) with a project in a scratch home:
// a project starts from the sample's ground truth and scores 1; a stroke changes exactly the brush's pixels in the
// tiles read back; merge and split change the ids they should and the live
// scores follow; undo, redo, close and reopen restore everything; bad arguments and locked segments are refused.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strokePixels } from '../../ml/proofread';
import { writeFileAtomic } from '../engine/atomic';
import type { FromJob, JobProcess, ToJob } from '../jobs/protocol';
import { resultFile } from '../jobs/results';
import type { Backend } from './backend';
import { createTestBackend } from './test-backend';
import type { ApiEvent, EditResult, JobKind, ProjectSummary, SliceQualityResult, StackSummary } from './contract';
import { createDoor, type Door } from './door';

const SAMPLE = fileURLToPath(new URL('../../sample-data/isbi2012-val', import.meta.url));

let dir = '';
let backend: Backend;
let door: Door;

async function call<T>(name: string, args: unknown): Promise<T> {
  const r = await door.call(name, args, { transport: 'browser' });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as T;
}

async function failure(name: string, args: unknown): Promise<{ code: string; message: string }> {
  const r = await door.call(name, args, { transport: 'browser' });
  assert.ok(!r.ok, `${name} should have failed`);
  return r.error;
}

/** The whole 512² slice z of a project layer (one tile at level 0). */
async function labelsOf(projectId: string, z: number, layer: 'labels' | 'truth' = 'labels'): Promise<Uint32Array> {
  return new Uint32Array(await call<ArrayBuffer>('readProject', { projectId, layer, z, level: 0, tx: 0, ty: 0 }));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'emseg-projects-'));
  await mkdir(join(dir, 'home'), { recursive: true });
  backend = await createTestBackend(dir, {
    home: join(dir, 'home'),
    samplePath: SAMPLE,
  });
  door = createDoor(backend.handlers, { logInternal: () => undefined });
});

after(async () => {
  await backend.close();
  await rm(dir, { recursive: true, force: true });
});

test('a project from the sample: stroke, merge, split, undo, redo, reopen', async () => {
  const stack = await call<StackSummary>('sampleStack', {});
  assert.ok(stack.hasTruth);
  const folder = join(dir, 'home', 'proj');
  const p = await call<ProjectSummary>('createProject', { folder, stackId: stack.stackId, labelsFrom: 'truth' });
  assert.deepEqual(p.truthSlices, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const id = p.projectId;
  const q0 = await call<SliceQualityResult>('sliceQuality', { projectId: id, z: 0 });
  assert.equal(q0.scores?.vrand, 1);
  assert.equal(q0.errors.length, 0);

  // A stroke of label 777, radius 4, across the slice: exactly the brush's pixels change.
  const before0 = await labelsOf(id, 0);
  const pts = [40.5, 60.5, 300.25, 90.75, 310, 200];
  const r = await call<EditResult>('editProject', { projectId: id, z: 0, layer: 'labels', edit: { tool: 'paint', points: pts, radiusPx: 4, label: 777 } });
  const brush = new Set(strokePixels(512, 512, pts, 4));
  const after0 = await labelsOf(id, 0);
  let changed = 0;
  for (let i = 0; i < after0.length; i++) {
    if (brush.has(i)) assert.equal(after0[i], 777);
    else assert.equal(after0[i], before0[i]);
    if (after0[i] !== before0[i]) changed++;
  }
  assert.equal(r.changedPx, changed);
  assert.equal(r.undoDepth, 1);
  // The sample fits in one tile: it has no coarser pyramid level to read.
  assert.equal((await failure('readProject', { projectId: id, layer: 'labels', z: 0, level: 1, tx: 0, ty: 0 })).code, 'not-found');

  // Merge the two largest segments of slice 1: one id left, V_rand drops, the worst error is that merge.
  const s1 = await labelsOf(id, 1);
  const sizes = new Map<number, number>();
  for (const v of s1) if (v !== 0) sizes.set(v, (sizes.get(v) ?? 0) + 1);
  const [a, b] = [...sizes.entries()].sort((x, y) => y[1] - x[1]).map((e) => e[0]);
  const m = await call<EditResult>('editProject', { projectId: id, z: 1, layer: 'labels', edit: { tool: 'merge', ids: [a, b] } });
  const merged = await labelsOf(id, 1);
  assert.ok(!merged.includes(b));
  assert.ok(m.changedPx >= (sizes.get(b) ?? 0));
  const q1 = await call<SliceQualityResult>('sliceQuality', { projectId: id, z: 1 });
  assert.ok((q1.scores?.vrand ?? 1) < 0.99);
  assert.equal(q1.errors[0].kind, 'merge');
  assert.deepEqual(q1.errors[0].ids, [a]);

  // Split it again with one seed in each original segment: the piece with the second seed gets a new id and matches
  // segment b's pixels (the watershed runs inside the merged segment only).
  const seedIn = (id0: number) => {
    const i = s1.indexOf(id0);
    return [(i % 512) + 0.5, Math.floor(i / 512) + 0.5];
  };
  // (Split time is the benchmark's to report, main/bench/proofread.ts: a timed assertion would fail on a busy machine.)
  const sp = await call<EditResult>('editProject', { projectId: id, z: 1, layer: 'labels', edit: { tool: 'split', id: a, seeds: [seedIn(a), seedIn(b)], radiusPx: 0.5 } });
  assert.equal(sp.newIds.length, 1);
  const split = await labelsOf(id, 1);
  let agree = 0;
  let total = 0;
  for (let i = 0; i < s1.length; i++) {
    if (s1[i] === a || s1[i] === b) {
      total++;
      if ((s1[i] === a && split[i] === a) || (s1[i] === b && split[i] === sp.newIds[0])) agree++;
    } else assert.equal(split[i], merged[i]);
  }
  assert.ok(agree / total > 0.99, `split restored ${agree} of ${total} pixels`);

  // Undo the split and the merge, redo the merge.
  assert.deepEqual((await call<EditResult>('undoEdit', { projectId: id })).slices, [1]);
  assert.deepEqual(await labelsOf(id, 1), merged);
  await call<EditResult>('undoEdit', { projectId: id });
  assert.deepEqual(await labelsOf(id, 1), s1);
  const redo = await call<EditResult>('redoEdit', { projectId: id });
  assert.equal(redo.undoDepth, 2);
  assert.equal(redo.redoDepth, 1);
  assert.deepEqual(await labelsOf(id, 1), merged);

  // Lock, status; then close and reopen: everything as it was, undo history included.
  await call('lockSegment', { projectId: id, z: 0, id: 777, locked: true });
  await call('setSliceStatus', { projectId: id, z: 1, status: 'in-progress' });
  await call('closeProject', { projectId: id });
  const again = await call<ProjectSummary>('openProject', { folder });
  assert.equal(again.undoDepth, 2);
  assert.equal(again.redoDepth, 1);
  assert.deepEqual(again.locked, { '0': [777] });
  assert.equal(again.sliceStatus[1], 'in-progress');
  assert.deepEqual(await labelsOf(again.projectId, 0), after0);
  assert.deepEqual(await labelsOf(again.projectId, 1), merged);
  await call('redoEdit', { projectId: again.projectId });
  assert.deepEqual(await labelsOf(again.projectId, 1), split);

  // The locked segment refuses edits with a message for the user; nonsense arguments never reach a handler.
  const locked = await failure('editProject', { projectId: again.projectId, z: 0, layer: 'labels', edit: { tool: 'delete', id: 777 } });
  assert.equal(locked.code, 'user');
  assert.match(locked.message, /segment 777 is locked/);
  assert.equal((await failure('editProject', { projectId: again.projectId, z: 0, layer: 'labels', edit: { tool: 'zap' } })).code, 'bad-request');
  assert.equal((await failure('editProject', { projectId: again.projectId, z: 0, layer: 'labels', edit: { tool: 'paint', points: [1], radiusPx: 2, label: 3 } })).code, 'bad-request');
  assert.equal((await failure('editProject', { projectId: again.projectId, z: 99, layer: 'labels', edit: { tool: 'delete', id: 3 } })).code, 'not-found');
  assert.equal((await failure('createProject', { folder: join(dir, 'elsewhere'), stackId: stack.stackId, labelsFrom: 'empty' })).code, 'forbidden');
  assert.equal((await failure('createProject', { folder, stackId: stack.stackId, labelsFrom: 'empty' })).code, 'user');

  const out = await call<{ labels: string; truth: string }>('exportProject', { projectId: again.projectId });
  assert.ok((await stat(out.labels)).size > 512 * 512 * 4 * 10);
  assert.ok((await stat(out.truth)).size > 512 * 512 * 10);
  const nl = await call<{ label: number }>('newLabel', { projectId: again.projectId, z: 0, layer: 'labels' });
  assert.ok(nl.label > 777);
});

test('fill, cut and ground-truth painting through the door; a new truth slice is listed after reopening', async () => {
  const stack = await call<StackSummary>('sampleStack', {});
  const folder = join(dir, 'home', 'empty-proj');
  const p = await call<ProjectSummary>('createProject', { folder, stackId: stack.stackId, labelsFrom: 'empty' });
  const id = p.projectId;
  // Empty labels: one fill covers the slice; a vertical cut line (1 px at x = 100) splits it in two.
  const fill = await call<EditResult>('editProject', { projectId: id, z: 3, layer: 'labels', edit: { tool: 'fill', x: 10, y: 10, label: 5 } });
  assert.equal(fill.changedPx, 512 * 512);
  const cut = await call<EditResult>('editProject', { projectId: id, z: 3, layer: 'labels', edit: { tool: 'cut', id: 5, points: [100.5, -2, 100.5, 514], radiusPx: 0.5 } });
  assert.deepEqual(cut.newIds, [6]);
  const l = await labelsOf(id, 3);
  for (const y of [0, 200, 511]) assert.deepEqual([l[y * 512 + 99], l[y * 512 + 100], l[y * 512 + 101]], [6, 0, 5]);
  // Ground truth: the sample's own, painted over with a membrane stroke (0) on slice 3.
  const before = await labelsOf(id, 3, 'truth');
  const gt = await call<EditResult>('editProject', { projectId: id, z: 3, layer: 'truth', edit: { tool: 'paint', points: [20.5, 20.5, 60.5, 20.5], radiusPx: 1, label: 0 } });
  assert.equal(gt.layer, 'truth');
  const after = await labelsOf(id, 3, 'truth');
  let changed = 0;
  for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed++;
  assert.equal(changed, gt.changedPx);
  assert.equal(after[20 * 512 + 40], 0);
  // The scores against it: labels of two halves against real ground truth are far from 1, and errors are listed.
  const q = await call<SliceQualityResult>('sliceQuality', { projectId: id, z: 3, maxErrors: 3 });
  assert.ok((q.scores?.vrand ?? 1) < 0.5);
  assert.equal(q.errors.length, 3);
  await call('closeProject', { projectId: id });
  const again = await call<ProjectSummary>('openProject', { folder });
  assert.equal(again.undoDepth, 3);
  assert.ok(again.truthSlices.includes(3));
  await call('closeProject', { projectId: again.projectId });
});

// ---- a job's results in an open project ------------------------------------------------------------------------

/**
 * A job process that writes known results instead of running the models (the real process and engine run in e2e/):
 * per slice z, `rounds` maps and, for segment jobs, labels, computed by `results` from the job's number (1, 2, …).
 */
function scriptedJobs(results: (n: number, z: number) => { maps: Float32Array[]; labels: Uint32Array | null }): () => JobProcess {
  let n = 0;
  return () => {
    const job = ++n;
    let onMsg: (m: FromJob) => void = () => undefined;
    let onEnd: (code: number | null) => void = () => undefined;
    return {
      send(m: ToJob) {
        void (async () => {
          const slices = m.params.slices ?? [];
          for (const z of slices) {
            const r = results(job, z);
            for (const [k, map] of r.maps.entries()) await writeFileAtomic(resultFile(m.outDir, z, `round-${k}`), new Uint8Array(map.buffer));
            if (r.labels && m.kind === 'segment') await writeFileAtomic(resultFile(m.outDir, z, 'labels'), new Uint8Array(r.labels.buffer));
            onMsg({ type: 'slice', z, rounds: r.maps.length, hasLabels: r.labels !== null && m.kind === 'segment' });
          }
          onMsg({ type: 'done' });
          onEnd(0);
        })();
      },
      onMessage: (l) => {
        onMsg = l;
      },
      onExit: (l) => {
        onEnd = l;
      },
      kill: () => onEnd(null),
    };
  };
}

test("a finished job's maps and labels are stored in the open project: empty slices take the labels, edited ones get a proposal; reopening keeps the maps for split", async () => {
  const root = await mkdtemp(join(tmpdir(), 'emseg-project-jobs-'));
  const events: ApiEvent[] = [];
  // Slice maps: a vertical membrane line at x = 300 (1) on 0.1 elsewhere; round 0 a fainter copy. Labels: all 1
  // for job 1; for job 2, two halves 7 | 8 at x = 256.
  const map = (round: number) => Float32Array.from({ length: 512 * 512 }, (_, i) => (i % 512 === 300 ? (round === 0 ? 0.6 : 1) : 0.1));
  const labels = (job: number) => Uint32Array.from({ length: 512 * 512 }, (_, i) => (job === 1 ? 1 : i % 512 < 256 ? 7 : 8));
  const open = (spawnJob: () => JobProcess) =>
    createTestBackend(root, { home: join(root, 'home'), samplePath: SAMPLE, spawnJob, resultsDir: join(root, `results-${Math.random()}`), onEvent: (e) => events.push(e) });
  await mkdir(join(root, 'home'), { recursive: true });
  const b1 = await open(scriptedJobs((n) => ({ maps: [map(0), map(1)], labels: labels(n) })));
  const d1 = createDoor(b1.handlers, { logInternal: () => undefined });
  const call1 = async <T>(name: string, args: unknown): Promise<T> => {
    const r = await d1.call(name, args, { transport: 'browser' });
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
    return r.value as T;
  };
  const projectEvent = async (count: number) => {
    for (let i = 0; i < 500 && events.filter((e) => e.type === 'project').length < count; i++) await new Promise((r) => setTimeout(r, 10));
    const e = events.filter((x) => x.type === 'project')[count - 1];
    assert.ok(e && e.type === 'project', `project event ${count} arrived`);
    return e;
  };
  const tile = async (projectId: string, layer: string, z: number, call = call1) => call<ArrayBuffer>('readProject', { projectId, layer, z, level: 0, tx: 0, ty: 0 });
  try {
    const stack = await call1<StackSummary>('sampleStack', {});
    const folder = join(root, 'home', 'jobs.emseg');
    const p = await call1<ProjectSummary>('createProject', { folder, stackId: stack.stackId, labelsFrom: 'empty' });
    assert.deepEqual(p.maps, {});
    const run = (kind: JobKind, slices: number[]) => call1<{ jobId: string }>('startJob', { stackId: stack.stackId, kind, params: { slices } });

    // Job 1 segments slices 2 and 3, which are empty: the labels are simply taken, nothing goes on the undo stack.
    const j1 = await run('segment', [2, 3]);
    const e1 = await projectEvent(1);
    assert.equal(e1.type === 'project' && e1.error, null);
    assert.deepEqual(e1.type === 'project' && e1.stored, { jobId: j1.jobId, maps: [2, 3], labels: [2, 3], proposals: [] });
    assert.deepEqual(e1.type === 'project' && e1.project.maps, { '2': 2, '3': 2 });
    assert.equal(e1.type === 'project' && e1.project.undoDepth, 0);
    assert.deepEqual(new Uint32Array(await tile(p.projectId, 'labels', 2)), labels(1));
    assert.deepEqual(new Float32Array(await tile(p.projectId, 'round-1', 3)), map(1));
    assert.deepEqual(new Float32Array(await tile(p.projectId, 'round-0', 3)), map(0));
    await assert.rejects(tile(p.projectId, 'round-0', 0), /^Error: not-found: project p\d+ has no round-0 for slice 0/);
    await assert.rejects(tile(p.projectId, 'proposal', 2), /not-found/);

    // The user paints on slice 2; job 2 segments slices 2 and 3 again: both have labels now, so they only wait, as
    // proposals.
    await call1('editProject', { projectId: p.projectId, z: 2, layer: 'labels', edit: { tool: 'paint', points: [20.5, 20.5], radiusPx: 3, label: 5 } });
    const painted = new Uint32Array(await tile(p.projectId, 'labels', 2));
    const j2 = await run('segment', [2, 3]);
    const e2 = await projectEvent(2);
    assert.deepEqual(e2.type === 'project' && e2.stored, { jobId: j2.jobId, maps: [2, 3], labels: [], proposals: [2, 3] });
    assert.deepEqual(new Uint32Array(await tile(p.projectId, 'labels', 2)), painted);
    assert.deepEqual(new Uint32Array(await tile(p.projectId, 'proposal', 2)), labels(2));
    // The door refuses an empty list, a slice named twice, and a slice without a proposal.
    for (const [slices, code] of [
      [[], 'bad-request'],
      [[2, 2], 'bad-request'],
      [[2, 1], 'user'],
    ] as const) {
      const r = await d1.call('resolveProposal', { projectId: p.projectId, slices, accept: true }, { transport: 'browser' });
      assert.equal(!r.ok && r.error.code, code, `slices ${slices.join(',')}`);
    }
    // Accepting both is one step: one undo gives back the painted slice 2 and job 1's slice 3, one redo both
    // proposals; the tiles read follow every step.
    const both = async (z2: Uint32Array, z3: Uint32Array, what: string) => {
      assert.deepEqual(new Uint32Array(await tile(p.projectId, 'labels', 2)), z2, `slice 2 ${what}`);
      assert.deepEqual(new Uint32Array(await tile(p.projectId, 'labels', 3)), z3, `slice 3 ${what}`);
    };
    const acc = await call1<{ edit: EditResult; proposals: number[] }>('resolveProposal', { projectId: p.projectId, slices: [2, 3], accept: true });
    assert.deepEqual(acc.proposals, []);
    assert.deepEqual(acc.edit.slices, [2, 3]);
    assert.equal(acc.edit.undoDepth, 2);
    assert.equal(acc.edit.changedPx, labels(2).reduce((n, v, i) => n + (v !== painted[i] ? 1 : 0), 0) + 512 * 512);
    await both(labels(2), labels(2), 'accepted');
    const undo = await call1<EditResult>('undoEdit', { projectId: p.projectId });
    assert.deepEqual([undo.slices, undo.undoDepth, undo.redoDepth], [[2, 3], 1, 1]);
    await both(painted, labels(1), 'after undo');
    assert.deepEqual((await call1<EditResult>('redoEdit', { projectId: p.projectId })).slices, [2, 3]);
    await both(labels(2), labels(2), 'after redo');
    await call1('undoEdit', { projectId: p.projectId });
    await both(painted, labels(1), 'after undo again');

    // A second session while the first has the project open: refused, one line naming the folder.
    const b2 = await open(scriptedJobs(() => ({ maps: [], labels: null })));
    const d2 = createDoor(b2.handlers, { logInternal: () => undefined });
    const call2 = async <T>(name: string, args: unknown): Promise<T> => {
      const r = await d2.call(name, args, { transport: 'browser' });
      if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
      return r.value as T;
    };
    await assert.rejects(call2('openProject', { folder }), (e: Error) => e.message.startsWith(`user: ${folder}: the project is open in this EMSeg process already`) && !e.message.includes('\n'));
    await b1.close();

    // The next session has no jobs: the maps come from the project, and split floods them. Slice 3 is one segment
    // (id 1) with the stored membrane line at x = 300: seeds on either side split it exactly there.
    const again = await call2<ProjectSummary>('openProject', { folder });
    assert.deepEqual(again.maps, { '2': 2, '3': 2 });
    assert.deepEqual([again.undoDepth, again.redoDepth], [1, 1]);
    // The accepted pair is still one step after reopening: redo puts both slices back, undo takes both again.
    const tiles23 = async () => [new Uint32Array(await tile(again.projectId, 'labels', 2, call2)), new Uint32Array(await tile(again.projectId, 'labels', 3, call2))];
    assert.deepEqual((await call2<EditResult>('redoEdit', { projectId: again.projectId })).slices, [2, 3]);
    assert.deepEqual(await tiles23(), [labels(2), labels(2)]);
    assert.deepEqual((await call2<EditResult>('undoEdit', { projectId: again.projectId })).slices, [2, 3]);
    assert.deepEqual(await tiles23(), [painted, labels(1)]);
    assert.deepEqual(new Float32Array(await tile(again.projectId, 'round-1', 3, call2)), map(1));
    const sp = await call2<EditResult>('editProject', { projectId: again.projectId, z: 3, layer: 'labels', edit: { tool: 'split', id: 1, seeds: [[100.5, 200.5], [450.5, 200.5]], radiusPx: 0.5 } });
    assert.deepEqual(sp.newIds, [2]);
    const split = new Uint32Array(await tile(again.projectId, 'labels', 3, call2));
    let wrong = 0;
    for (let i = 0; i < split.length; i++) {
      const x = i % 512;
      if (x < 300 && split[i] !== 1) wrong++;
      if (x > 300 && split[i] !== 2) wrong++;
    }
    assert.equal(wrong, 0, 'the split follows the stored map, not the raw slice');
    await b2.close();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
