// TIFF writer tests: exact round trips through our reader and through libtiff (sharp), ImageJ metadata and layout,
// BigTIFF, and the atomic write (no temporary file left behind, an existing file untouched on failure).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Image2D, PixelArray } from '../../ml/types';
import { StackError } from './errors';
import { TiffFile } from './tiff-read';
import { writeTiffStack } from './tiff-write';
import { randomSamples, tempDir } from './tiff-fixtures';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

type Ctor = new (n: number) => PixelArray;
const slicesOf = (C: Ctor, w: number, h: number, n: number): Image2D[] =>
  Array.from({ length: n }, (_, z) => ({ width: w, height: h, data: randomSamples(C, w * h, 31 + z) }));

async function readBack(path: string): Promise<{ tiff: TiffFile; pages: PixelArray[] }> {
  const tiff = await TiffFile.open(path);
  const pages: PixelArray[] = [];
  for (let z = 0; z < tiff.depth; z++) pages.push((await tiff.readPage(z)).data);
  await tiff.close();
  return { tiff, pages };
}

async function leftovers(): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.tmp-'));
}

const types: [string, Ctor][] = [
  ['uint8', Uint8Array],
  ['uint16', Uint16Array],
  ['uint32', Uint32Array],
  ['float32', Float32Array],
];

for (const [name, C] of types) {
  test(`${name} stacks round-trip exactly, uncompressed, deflate and BigTIFF`, async () => {
    for (const opts of [{}, { compression: 'deflate' as const }, { bigTiff: true }, { compression: 'deflate' as const, bigTiff: true }]) {
      const slices = slicesOf(C, 37, 23, 3);
      const path = join(dir, `${name}-${opts.compression ?? 'none'}-${opts.bigTiff ? 'big' : 'classic'}.tif`);
      const res = await writeTiffStack(path, slices, opts);
      assert.deepEqual([res.depth, res.width, res.height, res.pixelType, res.bigTiff], [3, 37, 23, name, opts.bigTiff === true]);
      const { tiff, pages } = await readBack(path);
      assert.equal(tiff.bigTiff, opts.bigTiff === true);
      assert.equal(tiff.pixelType, name);
      for (let z = 0; z < 3; z++) assert.deepEqual(pages[z], slices[z].data, `${JSON.stringify(opts)} page ${z}`);
    }
  });
}

test('multi-strip slices from an async generator; libtiff reads every page', async () => {
  // 1200 × 1000 uint16 is 2.4 MB per slice: three strips of about 1 MiB.
  const w = 1200;
  const h = 1000;
  const n = 3;
  async function* gen(): AsyncGenerator<Image2D> {
    for (let z = 0; z < n; z++) yield { width: w, height: h, data: randomSamples(Uint16Array, w * h, 50 + z) };
  }
  for (const compression of ['none', 'deflate'] as const) {
    const path = join(dir, `big-slices-${compression}.tif`);
    await writeTiffStack(path, gen(), { compression });
    const { pages } = await readBack(path);
    for (let z = 0; z < n; z++) {
      const expected = randomSamples(Uint16Array, w * h, 50 + z);
      assert.deepEqual(pages[z], expected);
      const b = await sharp(path, { page: z }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
      assert.deepEqual(new Uint16Array(b.buffer, b.byteOffset, b.length / 2), expected, `libtiff page ${z}`);
    }
  }
});

test('ImageJ metadata: pixel size, z spacing, description; uncompressed pages contiguous for ImageJ', async () => {
  const slices = slicesOf(Uint8Array, 16, 8, 4);
  const path = join(dir, 'imagej.tif');
  await writeTiffStack(path, slices, { pixelSizeNm: { x: 3.7, y: 4, z: 45 }, description: 'made by a test\nsecond line' });
  const tiff = await TiffFile.open(path);
  const px = tiff.pixelSizeNm;
  assert.ok(px && Math.abs(px.x - 3.7) < 1e-6 && Math.abs(px.y - 4) < 1e-9 && Math.abs((px.z ?? 0) - 45) < 1e-9, JSON.stringify(px));
  assert.match(tiff.description ?? '', /^ImageJ=1\.11a\nimages=4\nslices=4\nunit=micron\nspacing=0\.045\nloop=false\nmade by a test\nsecond line\n$/);
  await tiff.close();
  // ImageJ reads only the first IFD and takes `images` slices back to back from the first strip, which sits right
  // after the 16-byte header slot.
  const bytes = await readFile(path);
  for (let z = 0; z < 4; z++) assert.deepEqual(new Uint8Array(bytes.subarray(16 + z * 128, 16 + (z + 1) * 128)), slices[z].data);
  // Compressed pages are not contiguous, so no `images=` (ImageJ then reads every IFD).
  const pz = join(dir, 'imagej-deflate.tif');
  await writeTiffStack(pz, slices, { compression: 'deflate', pixelSizeNm: { x: 5, y: 5 } });
  const tz = await TiffFile.open(pz);
  assert.doesNotMatch(tz.description ?? '', /images=/);
  assert.deepEqual(tz.pixelSizeNm, { x: 5, y: 5 });
  await tz.close();
});

test('atomic write: nothing left behind, the old file kept when writing fails', async () => {
  const path = join(dir, 'atomic.tif');
  await writeFile(path, 'old content');
  async function* failing(): AsyncGenerator<Image2D> {
    yield { width: 4, height: 4, data: new Uint8Array(16) };
    throw new Error('producer failed');
  }
  await assert.rejects(writeTiffStack(path, failing()), /producer failed/);
  assert.equal(await readFile(path, 'utf8'), 'old content');
  assert.deepEqual(await leftovers(), []);

  const mixed = [{ width: 4, height: 4, data: new Uint8Array(16) }, { width: 5, height: 4, data: new Uint8Array(20) }];
  await assert.rejects(writeTiffStack(path, mixed), /slice 1 is 5×4 uint8 but slice 0 is 4×4 uint8/);
  await assert.rejects(writeTiffStack(path, [{ width: 4, height: 4, data: new Uint8Array(15) }]), /15 pixels for 4×4/);
  await assert.rejects(writeTiffStack(path, []), (e: unknown) => e instanceof StackError && /no slices to write/.test(e.message));
  await assert.rejects(writeTiffStack(path, slicesOf(Uint8Array, 4, 4, 1), { pixelSizeNm: { x: 0, y: 4 } }), /pixel size must be positive/);
  assert.equal(await readFile(path, 'utf8'), 'old content');
  assert.deepEqual(await leftovers(), []);

  await writeTiffStack(path, slicesOf(Uint8Array, 4, 4, 2));
  assert.equal((await TiffFile.open(path).then(async (t) => (await t.close(), t))).depth, 2);
  assert.deepEqual(await leftovers(), []);
  await assert.rejects(writeTiffStack(join(dir, 'no-such-folder', 'x.tif'), slicesOf(Uint8Array, 4, 4, 1)), /no-such-folder: no such file or folder/);
});
