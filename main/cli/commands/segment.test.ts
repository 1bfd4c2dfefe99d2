// `emseg segment` end to end: a small float32 map stack in, <out>/labels.tif (uint32, ids 1..n, 0 = boundary) out;
// bad options are one-line usage errors. (Model mode, without --membrane, is tested in segment-model.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../index';
import { openStack, writeTiffStack } from '../../io';
import { ridgeMap } from './test-maps';

/** Runs `emseg <argv>` in-process with the CLI's (string) output silenced; node:test's binary chunks pass through. */
async function run(argv: string[]): Promise<number> {
  const out = process.stdout.write;
  const err = process.stderr.write;
  const silence = (real: typeof out): typeof out =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      return typeof chunk === 'string' ? true : (real as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof out;
  process.stdout.write = silence(out);
  process.stderr.write = silence(err);
  try {
    return await main(argv);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}


test('segment writes labels.tif from a membrane map stack', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-segment-'));
  try {
    const maps = join(dir, 'maps.tif');
    await writeTiffStack(maps, [ridgeMap(0), ridgeMap(1), ridgeMap(2)]);
    const out = join(dir, 'out');
    // The map stack stands in for the EM stack too: only its geometry is read.
    assert.equal(await run(['segment', maps, '--membrane', maps, '--out', out, '--min-size', '2', '--slices', '1-2', '--quiet']), 0);
    const labels = await openStack(join(out, 'labels.tif'));
    try {
      assert.equal(labels.info.depth, 2);
      assert.equal(labels.info.pixelType, 'uint32');
      const s = await labels.readSlice(0);
      assert.deepEqual(Array.from(s.data.subarray(0, 9)), [1, 1, 1, 1, 0, 2, 2, 2, 2]);
    } finally {
      await labels.close();
    }
    assert.equal(await run(['segment', maps, '--out', out, '--model', join(dir, 'no-such-model')]), 2, 'missing model folder');
    assert.equal(await run(['segment', maps, '--membrane', maps, '--out', out, '--seed-threshold', '2']), 2);
    assert.equal(await run(['segment', maps, '--membrane', maps]), 2, 'no --out');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
