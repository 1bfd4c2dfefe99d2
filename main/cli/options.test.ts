// The training images' pixel size, as `emseg train` records it with the model: the option, else the stack's metadata,
// else unknown — said in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandContext } from './command';
import { trainingPixelSize } from './options';
import { writeTiffStack } from '../io';
import { UsageError } from './command';

function context(values: CommandContext['values']): { ctx: CommandContext; err: string[] } {
  const err: string[] = [];
  return { ctx: { values, positionals: [], quiet: false, out: () => undefined, err: (l) => err.push(l) }, err };
}

test('training pixel size: --pixel-size, else the stack metadata, else unknown with a notice', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-px-'));
  try {
    const slice = { width: 8, height: 6, data: new Uint8Array(48) };
    const tagged = join(dir, 'tagged.tif');
    await writeTiffStack(tagged, [slice], { pixelSizeNm: { x: 6, y: 6, z: 40 } });
    const bare = join(dir, 'bare.tif');
    await writeTiffStack(bare, [slice]);

    const given = context({ images: bare, 'pixel-size': '4' });
    assert.equal(await trainingPixelSize(given.ctx), 4);
    assert.deepEqual(given.err, []);

    const meta = context({ images: tagged });
    assert.ok(Math.abs((await trainingPixelSize(meta.ctx))! - 6) < 1e-6);
    assert.deepEqual(meta.err, []);

    const none = context({ images: bare });
    assert.equal(await trainingPixelSize(none.ctx), undefined);
    assert.equal(none.err.length, 1);
    assert.match(none.err[0], /bare\.tif does not say its pixel size.*--pixel-size/);

    const inherited = context({ images: bare });
    assert.equal(await trainingPixelSize(inherited.ctx, 4), 4, 'with --init, the model\'s pixel size where the images say none');
    assert.match(inherited.err[0], /taken to be the --init model's 4 nm/);

    await assert.rejects(trainingPixelSize(context({ images: bare, 'pixel-size': 'four' }).ctx), (e: unknown) => e instanceof UsageError && /--pixel-size must be a number/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
