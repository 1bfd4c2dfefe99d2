// `emseg compress` from the command line, on a tiny model and tiny stacks: the Lp-sphere method's options (--p, --h)
// reach the record, --report prints the folders' rows with their sparsity as JSON, and bad options fail with one line
// naming the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../index';
import { writeTiffStack } from '../../io';
import { loadModel } from '../../engine/model-store';
import { tinySource } from '../../engine/fixtures';
import { initTf } from '../../../ml/tfjs/backend';
import { pseudoRandom } from '../../../ml/models/test-helpers';

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const [ow, ew] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  let out = '';
  let err = '';
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(argv), out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

test('compress --method lpsphere and --report from the command line; bad options in one line', async () => {
  await initTf();
  const dir = await mkdtemp(join(tmpdir(), 'emseg-compress-cli-'));
  try {
    const src = await tinySource(dir);
    const size = 48;
    const images = join(dir, 'images.tif');
    const labels = join(dir, 'labels.tif');
    await writeTiffStack(images, [0, 1, 2].map((z) => ({ width: size, height: size, data: Uint8Array.from(pseudoRandom(size * size, z + 1, 200), (v) => 128 + v) })));
    await writeTiffStack(labels, [0, 1, 2].map(() => ({ width: size, height: size, data: Uint8Array.from({ length: size * size }, (_, i) => ((i % size) % 8 === 0 || Math.floor(i / size) % 8 === 0 ? 0 : 255)) })));
    const data = ['--model', src, '--images', images, '--labels', labels, '--label-membrane-value', '0', '--train-slices', '0-1', '--val-slices', '2', '--batch', '1', '--crop', '32', '--quiet'];
    const out = join(dir, 'lp');
    const made = await capture(['compress', '--method', 'lpsphere', '--p', '1.25', '--h', '0.4', '--steps', '2', '--out', out, ...data]);
    assert.equal(made.code, 0, made.err);
    assert.match(made.out, /wrote .*lp \(lpsphere\).*sparsity \d/);
    const c = (await loadModel(out)).record.compression as Record<string, unknown>;
    assert.equal(c.p, 1.25);
    assert.equal(c.h, 0.4);

    const report = await capture(['compress', '--report', '--models', `${src},${out}`, '--images', images, '--labels', labels, '--val-slices', '2', '--threads', '1', '--json', '--quiet']);
    assert.equal(report.code, 0, report.err);
    const rows = (JSON.parse(report.out) as { rows: Array<{ model: string; method: string; sparsity?: number; vrand: number; vinfo: number; mpxPerS: number }> }).rows;
    assert.deepEqual(rows.map((r) => r.method), ['none', 'lpsphere']);
    assert.equal(rows[1].sparsity, c.sparsity);
    // The row is kept in the record for the app's model picker, with the reference row it was compared with.
    const kept = ((await loadModel(out)).record.compression as Record<string, unknown>).report as { vrand: number; reference: Record<string, unknown> };
    assert.equal(kept.vrand, rows[1].vrand);
    assert.deepEqual(kept.reference, { path: await realpath(src), model: 'src', mpxPerS: rows[0].mpxPerS, vrand: rows[0].vrand, vinfo: rows[0].vinfo });
    // and in the model card, rewritten with it.
    assert.ok((await readFile(join(out, 'README.md'), 'utf8')).includes(`- report: {"model":"${rows[1].model}"`), 'the card shows the kept row');

    for (const [args, message] of [
      [['--method', 'magnitude'], /--method magnitude needs --sparsity/],
      [['--method', 'lpsphere', '--p', '1'], /--p must be above 1/],
      [['--method', 'relief', '--alpha', '2'], /--alpha must be at most 1/],
      [['--method', 'binary', '--ensemble-sizes', '1,x'], /--ensemble-sizes must be a list/],
      [['--method', 'nope'], /--method must be one of .*relief.*binary/],
    ] as const) {
      const r = await capture(['compress', ...args, '--out', join(dir, 'bad'), ...data]);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, message);
      assert.equal(r.err.trim().split('\n').length, 1, `one line: ${r.err}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
