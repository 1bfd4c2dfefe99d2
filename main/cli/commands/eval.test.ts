// `emseg eval` end to end on the ISBI 2012 training labels: ground truth against itself scores exactly 1 (the
// "done when" of the engine-foundation issue), a membrane map stack is swept over thresholds, and bad calls exit 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../index';
import { openStack, writeTiffStack } from '../../io';
import { softMembraneMap } from '../../bench/segmentation';
import { DEFAULT_THRESHOLDS } from '../../../ml/metrics';
import type { MembraneMap } from '../../../ml/types';

const LABELS = fileURLToPath(new URL('../../../../shared/data/isbi2012/train/label', import.meta.url));

/**
 * Runs `emseg <argv>` in-process and returns its exit code and what it wrote to stdout. The CLI writes strings; the
 * node:test child reports to its parent through the same stdout in binary chunks, which are passed through untouched.
 */
async function run(argv: string[]): Promise<{ code: number; stdout: string }> {
  const chunks: string[] = [];
  const out = process.stdout.write;
  const err = process.stderr.write;
  const capture = (real: typeof out, keep: boolean): typeof out =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      if (typeof chunk !== 'string') return (real as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      if (keep) chunks.push(chunk);
      return true;
    } as typeof out;
  process.stdout.write = capture(out, true);
  process.stderr.write = capture(err, false);
  try {
    const code = await main(argv);
    return { code, stdout: chunks.join('') };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

test('ISBI slices 20-29: ground truth against itself gives V_rand 1 and V_info 1', async () => {
  const { code, stdout } = await run(['eval', '--gt', LABELS, '--gt-membrane-value', '0', '--seg', LABELS, '--slices', '20-29', '--json', '--quiet']);
  assert.equal(code, 0);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'one JSON object on stdout');
  const r = JSON.parse(lines[0]) as { vrand: number; vinfo: number; slices: number; per_slice: Array<Record<string, number>> } & Record<string, unknown>;
  assert.equal(r.vrand, 1);
  assert.equal(r.vinfo, 1);
  assert.equal(r.slices, 10);
  assert.deepEqual(r.per_slice.map((s) => s.index), [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
  for (const s of r.per_slice) {
    assert.equal(s.vrand, 1);
    assert.equal(s.vinfo, 1);
    assert.equal(s.pixelError, 0);
  }
  for (const key of ['vrandSplit', 'vrandMerge', 'vinfoSplit', 'vinfoMerge']) assert.equal(r[key], 1, key);
  assert.equal(r.randError, 0);

  const table = await run(['eval', '--gt', LABELS, '--gt-membrane-value', '0', '--seg', LABELS, '--slices', '20-21', '--quiet']);
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^ {2}mean {2}1\.0000 {2}1\.0000 {2}1\.0000 {2}1\.0000/m);
});

test('--membrane sweeps thresholds and reports the best one for the stack', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-eval-'));
  try {
    // Maps for slices 20-22 only: the map stack holds one slice per selected slice.
    const gt = await openStack(LABELS);
    const maps: MembraneMap[] = [];
    for (const z of [20, 21, 22]) maps.push(softMembraneMap(await gt.readSlice(z), 0, 2, 0.1, z));
    await gt.close();
    const path = join(dir, 'maps.tif');
    await writeTiffStack(path, maps);
    const { code, stdout } = await run(['eval', '--gt', LABELS, '--gt-membrane-value', '0', '--membrane', path, '--slices', '20-22', '--json', '--quiet']);
    assert.equal(code, 0);
    const r = JSON.parse(stdout) as { vrand: number; vinfo: number; slices: number; threshold: number; per_slice: Array<{ index: number; threshold: number }> };
    assert.equal(r.slices, 3);
    assert.ok(DEFAULT_THRESHOLDS.includes(r.threshold));
    assert.deepEqual(r.per_slice.map((s) => [s.index, s.threshold]), [[20, r.threshold], [21, r.threshold], [22, r.threshold]]);
    assert.ok(r.vrand > 0.95 && r.vrand < 1, `vrand ${r.vrand}`);
    assert.ok(r.vinfo > 0.95 && r.vinfo < 1, `vinfo ${r.vinfo}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 2', async () => {
  assert.equal((await run(['eval', '--seg', LABELS])).code, 2);
  assert.equal((await run(['eval', '--gt', LABELS, '--gt-membrane-value', '0'])).code, 2);
  assert.equal((await run(['eval', '--gt', LABELS, '--seg', LABELS, '--slices', '20-21'])).code, 2, 'membrane value missing');
  assert.equal((await run(['eval', '--gt', LABELS, '--gt-membrane-value', '0', '--seg', LABELS, '--membrane', LABELS])).code, 2);
  assert.equal((await run(['eval', '--gt', LABELS, '--gt-membrane-value', '0', '--seg', LABELS, '--slices', '28-31'])).code, 2);
});

test('--baseline compares two label stacks slice by slice with a bootstrap interval', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-eval-base-'));
  try {
    // The baseline merges everything into one segment per slice: far worse than the ground truth on every slice.
    const merged = [0, 1, 2].map(() => ({ width: 512, height: 512, data: new Uint32Array(512 * 512).fill(1) }));
    const path = join(dir, 'merged.tif');
    await writeTiffStack(path, merged);
    const args = ['eval', '--gt', LABELS, '--gt-membrane-value', '0', '--slices', '20-22', '--quiet'];
    const { code, stdout } = await run([...args, '--seg', LABELS, '--baseline', path, '--json']);
    assert.equal(code, 0);
    type Diff = { mean: number; lo: number; hi: number; better: number; worse: number; slices: number };
    const r = JSON.parse(stdout) as { vrand: number; comparison: { baseline: string; vrand: Diff; vinfo: Diff } };
    assert.equal(r.vrand, 1);
    assert.equal(r.comparison.baseline, path);
    assert.deepEqual([r.comparison.vrand.better, r.comparison.vrand.worse, r.comparison.vrand.slices], [3, 0, 3]);
    assert.ok(r.comparison.vrand.lo > 0.5 && r.comparison.vrand.mean <= r.comparison.vrand.hi, JSON.stringify(r.comparison.vrand));
    assert.ok(r.comparison.vinfo.lo > 0);
    // Swapped, it is worse; against itself, the difference is exactly 0 and not resolved.
    const swapped = await run([...args, '--seg', path, '--baseline', LABELS]);
    assert.match(swapped.stdout, /V_rand −0\.\d{4}, 95 % interval .*: worse; better on 0, worse on 3/);
    const same = await run([...args, '--seg', LABELS, '--baseline', LABELS]);
    assert.match(same.stdout, /V_rand \+0\.0000, 95 % interval \+0\.0000 … \+0\.0000 .*not resolved/);
    assert.equal((await run([...args, '--membrane', path, '--baseline', LABELS])).code, 2, '--baseline needs --seg');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
