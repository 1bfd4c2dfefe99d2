// `emseg info`: the table, --json, and a bad stack as one line with exit code 2 through the real CLI entry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTiffStack } from '../../io';
import { tempDir } from '../../io/tiff-fixtures';
import { main } from '../index';
import type { CommandContext } from '../command';
import { infoCommand } from './info';

const ISBI = fileURLToPath(new URL('../../../../shared/data/isbi2012/train/image', import.meta.url));

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

async function run(args: string[], json = false): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CommandContext = { values: { json }, positionals: args, quiet: false, out: (l) => out.push(l), err: (l) => err.push(l) };
  return { code: await infoCommand.run(ctx), out, err };
}

test('info prints slices, size, pixel type, pixel size and kind', async () => {
  const path = join(dir, 'stack.tif');
  await writeTiffStack(path, [0, 1, 2].map(() => ({ width: 64, height: 32, data: new Uint16Array(64 * 32) })), { pixelSizeNm: { x: 4, y: 4, z: 50 } });
  const r = await run([path]);
  assert.equal(r.code, 0);
  assert.deepEqual(r.out, [`path:       ${path}`, 'kind:       TIFF', 'slices:     3', 'size:       64 × 32 px', 'pixel type: uint16', 'pixel size: 4 × 4 × 50 nm']);

  const folder = await run([ISBI]);
  assert.ok(folder.out.includes('kind:       folder of 30 image files'));
  assert.ok(folder.out.includes('pixel size: unknown'));

  const j = await run([path], true);
  assert.equal(j.out.length, 1);
  assert.deepEqual(JSON.parse(j.out[0]), { path, kind: 'tiff', width: 64, height: 32, depth: 3, pixelType: 'uint16', pixelSizeNm: { x: 4, y: 4, z: 50 } });
  const jf = JSON.parse((await run([ISBI], true)).out[0]) as { pixelSizeNm: unknown; files: string[] };
  assert.equal(jf.pixelSizeNm, null);
  assert.equal(jf.files.length, 30);
});

test('a bad stack is one line on stderr and exit code 2', async () => {
  const missing = join(dir, 'missing.tif');
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['info', missing]);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 2);
  assert.deepEqual(written, [`emseg info: ${missing}: no such file or folder\n`]);
  await assert.rejects(run([]), /expected one stack path, got 0/);
});
