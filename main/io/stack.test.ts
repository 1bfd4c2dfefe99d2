// openStack on the real ISBI 2012 data and on folders, images and TIFFs made here; the slice cache.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { Image2D } from '../../ml/types';
import { naturalCompare, openStack } from './stack';
import { SliceCache } from './slice-cache';
import { writeTiffStack } from './tiff-write';
import { randomSamples, tempDir } from './tiff-fixtures';

const ISBI = fileURLToPath(new URL('../../../shared/data/isbi2012/train/image', import.meta.url));
// Checked independently with Pillow: sum of all pixels and the first row's first 8 values.
const ISBI_SLICES: Record<number, { file: string; sum: number; head: number[] }> = {
  0: { file: '0.png', sum: 35971420, head: [126, 107, 122, 124, 131, 131, 140, 142] },
  10: { file: '10.png', sum: 36511488, head: [209, 200, 199, 191, 177, 184, 201, 195] },
  29: { file: '29.png', sum: 34950447, head: [74, 90, 68, 62, 71, 90, 101, 116] },
};
const sum = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
};

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

test('natural order: numbers by value, text without case, a total order', () => {
  const names = ['img10.png', 'img2.png', 'IMG3.png', 'img1.png', 'img02.png', 'a.png', 'img1b.png', '100.png', '20.png', 'img001.png'];
  assert.deepEqual([...names].sort(naturalCompare), ['20.png', '100.png', 'a.png', 'img1.png', 'img001.png', 'img1b.png', 'img2.png', 'img02.png', 'IMG3.png', 'img10.png']);
  assert.ok(naturalCompare('z99999999999999999999999.png', 'z100000000000000000000000.png') < 0, 'long digit runs');
});

test('the ISBI 2012 training folder: 30 slices of 512×512 uint8 in natural order, exact pixels', async () => {
  const stack = await openStack(ISBI);
  try {
    const { info } = stack;
    assert.deepEqual([info.kind, info.depth, info.width, info.height, info.pixelType, info.pixelSizeNm], ['folder', 30, 512, 512, 'uint8', undefined]);
    assert.deepEqual(info.files?.slice(0, 3).map((f) => f.slice(ISBI.length + 1)), ['0.png', '1.png', '2.png']);
    assert.equal(info.files?.[10], join(ISBI, '10.png'));
    for (const [z, want] of Object.entries(ISBI_SLICES)) {
      const s = await stack.readSlice(Number(z));
      assert.ok(s.data instanceof Uint8Array);
      assert.equal(sum(s.data), want.sum, want.file);
      assert.deepEqual([...s.data.subarray(0, 8)], want.head, want.file);
    }
  } finally {
    await stack.close();
  }
});

test('folders: hidden and system files ignored; TIFF slices; same pixels as the source PNGs', async () => {
  const folder = join(dir, 'natural');
  await mkdir(folder);
  // Copies of ISBI slices under names whose natural order differs from their plain order.
  await copyFile(join(ISBI, '0.png'), join(folder, 'slice10.png'));
  await copyFile(join(ISBI, '10.png'), join(folder, 'slice2.png'));
  await copyFile(join(ISBI, '29.png'), join(folder, 'slice1.png'));
  await writeFile(join(folder, '.DS_Store'), 'junk');
  await writeFile(join(folder, '._slice1.png'), 'AppleDouble junk');
  await writeFile(join(folder, 'Thumbs.db'), 'junk');
  await mkdir(join(folder, 'subfolder'));
  const stack = await openStack(folder);
  assert.deepEqual(stack.info.files, ['slice1.png', 'slice2.png', 'slice10.png'].map((n) => join(folder, n)));
  assert.equal(sum((await stack.readSlice(0)).data), ISBI_SLICES[29].sum);
  assert.equal(sum((await stack.readSlice(2)).data), ISBI_SLICES[0].sum);
  await stack.close();

  // A folder of single-page TIFFs with pixel size metadata.
  const tifs = join(dir, 'tiffs');
  await mkdir(tifs);
  const slices = Array.from({ length: 3 }, (_, z) => ({ width: 20, height: 10, data: randomSamples(Uint16Array, 200, z + 1) }));
  for (let z = 0; z < 3; z++) await writeTiffStack(join(tifs, `s${z * 5}.tif`), [slices[z]], { pixelSizeNm: { x: 6, y: 6, z: 40 } });
  const ts = await openStack(tifs);
  assert.deepEqual([ts.info.kind, ts.info.depth, ts.info.pixelType], ['folder', 3, 'uint16']);
  assert.deepEqual(ts.info.pixelSizeNm, { x: 6, y: 6, z: 40 });
  for (let z = 0; z < 3; z++) assert.deepEqual((await ts.readSlice(z)).data, slices[z].data);
  await ts.close();
});

test('single images: 8-bit PNG, 16-bit PNG stays 16-bit, JPEG, RGB to grey with a notice', async () => {
  const png = await openStack(join(ISBI, '10.png'));
  assert.deepEqual([png.info.kind, png.info.depth, png.info.width, png.info.pixelType], ['image', 1, 512, 'uint8']);
  assert.equal(sum((await png.readSlice(0)).data), ISBI_SLICES[10].sum);
  await png.close();

  const w = 40;
  const h = 30;
  const u16 = new Uint16Array(w * h).map((_, i) => (i * 2731 + 17) % 65536);
  await sharp(u16, { raw: { width: w, height: h, channels: 1 } }).toColourspace('grey16').png().toFile(join(dir, 'g16.png'));
  const p16 = await openStack(join(dir, 'g16.png'));
  assert.equal(p16.info.pixelType, 'uint16');
  const s16 = await p16.readSlice(0);
  assert.ok(s16.data instanceof Uint16Array);
  assert.deepEqual(s16.data, u16);
  await p16.close();

  // A flat JPEG decodes exactly (only the DC coefficient is non-zero).
  await sharp(new Uint8Array(64 * 48).fill(100), { raw: { width: 64, height: 48, channels: 1 } }).jpeg({ quality: 95 }).toFile(join(dir, 'flat.jpg'));
  const jpg = await openStack(join(dir, 'flat.jpg'));
  assert.deepEqual([jpg.info.kind, jpg.info.width, jpg.info.height, jpg.info.pixelType], ['image', 64, 48, 'uint8']);
  assert.ok((await jpg.readSlice(0)).data.every((v) => v === 100));
  await jpg.close();

  const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
  await sharp(rgb, { raw: { width: 2, height: 2, channels: 3 } }).png().toFile(join(dir, 'rgb.png'));
  const notices: string[] = [];
  const c = await openStack(join(dir, 'rgb.png'), { onNotice: (m) => notices.push(m) });
  assert.deepEqual([...(await c.readSlice(0)).data], [76, 150, 29, 18]);
  assert.match(notices.join(), /rgb\.png: colour image, converted to grey/);
  await c.close();
});

test('multi-page TIFF through openStack; readSlice returns copies; range and closed errors', async () => {
  const path = join(dir, 'stack.tif');
  const slices = Array.from({ length: 5 }, (_, z) => ({ width: 33, height: 17, data: randomSamples(Float32Array, 33 * 17, 40 + z) }));
  await writeTiffStack(path, slices, { compression: 'deflate', pixelSizeNm: { x: 4, y: 4, z: 50 } });
  const stack = await openStack(path);
  assert.deepEqual(stack.info, { path, kind: 'tiff', width: 33, height: 17, depth: 5, pixelType: 'float32', pixelSizeNm: { x: 4, y: 4, z: 50 } });
  const a = await stack.readSlice(3);
  assert.deepEqual(a.data, slices[3].data);
  a.data.fill(0);
  assert.deepEqual((await stack.readSlice(3)).data, slices[3].data, 'modifying a returned slice does not touch the cache');
  await assert.rejects(stack.readSlice(5), RangeError);
  await assert.rejects(stack.readSlice(-1), RangeError);
  await stack.close();
  await assert.rejects(stack.readSlice(0), /closed/);
});

test('slice cache: LRU by count and bytes, one decode for concurrent requests, copies out', async () => {
  const decoded: number[] = [];
  const decode = async (z: number): Promise<Image2D> => {
    decoded.push(z);
    await new Promise((r) => setTimeout(r, 1));
    return { width: 10, height: 10, data: new Uint8Array(100).fill(z) };
  };
  const cache = new SliceCache({ maxBytes: 1000, maxSlices: 3 });
  const [x, y] = await Promise.all([cache.get(1, decode), cache.get(1, decode)]);
  assert.deepEqual(decoded, [1], 'concurrent requests share one decode');
  assert.notEqual(x.data, y.data, 'each caller gets its own array');
  await cache.get(2, decode);
  await cache.get(3, decode);
  await cache.get(1, decode); // hit: 1 becomes most recent
  await cache.get(4, decode); // evicts 2, the least recent
  assert.deepEqual(decoded, [1, 2, 3, 4]);
  assert.deepEqual([cache.has(1), cache.has(2), cache.has(3), cache.has(4)], [true, false, true, true]);
  const small = new SliceCache({ maxBytes: 250, maxSlices: 10 });
  for (const z of [1, 2, 3]) await small.get(z, decode);
  assert.equal(small.size, 2, 'byte limit');
  assert.equal(small.cachedBytes, 200);
  const none = new SliceCache({ maxBytes: 0, maxSlices: 10 });
  await none.get(1, decode);
  assert.equal(none.size, 0);
  await assert.rejects(cache.get(9, async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(cache.has(9), false);
});
