// TIFF reader tests: every layout and codec combination from the test encoder, files written by libtiff (through
// sharp) as an independent encoder, metadata, laziness on a sparse 10 GB file, and ImageJ's IFD-less pages.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { PixelArray } from '../../ml/types';
import { TiffFile } from './tiff-read';
import { Compression, FieldType, Tag, asciiValues, encodeHeader, encodeIfd, type IfdField } from './tiff-format';
import { buildTiff, randomSamples, tempDir, type FixtureImage, type FixtureOptions, type SampleArray } from './tiff-fixtures';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

let fileNo = 0;
async function save(bytes: Uint8Array, name = `f${fileNo++}.tif`): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

// Odd sizes so that the last strip is short and edge tiles are partly outside the image.
const W = 37;
const H = 23;
type Ctor = new (n: number) => SampleArray;
const pagesOf = (C: Ctor, n = 3): FixtureImage[] => Array.from({ length: n }, (_, z) => ({ width: W, height: H, data: randomSamples(C, W * H, 11 + z) }));

async function readAll(path: string, opts = {}): Promise<{ tiff: TiffFile; pages: PixelArray[] }> {
  const tiff = await TiffFile.open(path, opts);
  const pages: PixelArray[] = [];
  for (let z = 0; z < tiff.depth; z++) pages.push((await tiff.readPage(z)).data);
  await tiff.close();
  return { tiff, pages };
}

const layouts: [string, FixtureOptions][] = [
  ['LE, one strip', {}],
  ['BE, strips of 5 rows', { littleEndian: false, rowsPerStrip: 5 }],
  ['BigTIFF', { bigTiff: true, rowsPerStrip: 4 }],
  ['BigTIFF BE', { bigTiff: true, littleEndian: false }],
  ['tiles 16×16', { tile: [16, 16] }],
  ['tiles BE BigTIFF', { tile: [16, 32], littleEndian: false, bigTiff: true }],
  ['LZW', { compression: Compression.LZW, rowsPerStrip: 7 }],
  ['LZW BE', { compression: Compression.LZW, littleEndian: false }],
  ['deflate (8)', { compression: Compression.AdobeDeflate, rowsPerStrip: 6 }],
  ['deflate (32946), tiles, BE', { compression: Compression.Deflate, tile: [16, 16], littleEndian: false }],
  ['PackBits', { compression: Compression.PackBits, rowsPerStrip: 10 }],
  ['PackBits BE tiles', { compression: Compression.PackBits, littleEndian: false, tile: [32, 16] }],
];
const intPredictors: [string, FixtureOptions][] = [
  ['LZW + predictor 2', { compression: Compression.LZW, predictor: 2, rowsPerStrip: 8 }],
  ['LZW + predictor 2, BE tiles', { compression: Compression.LZW, predictor: 2, littleEndian: false, tile: [16, 16] }],
  ['deflate + predictor 2, BE', { compression: Compression.AdobeDeflate, predictor: 2, littleEndian: false }],
];
const floatPredictors: [string, FixtureOptions][] = [
  ['LZW + predictor 3', { compression: Compression.LZW, predictor: 3, rowsPerStrip: 8 }],
  ['deflate + predictor 3, BE tiles', { compression: Compression.Deflate, predictor: 3, littleEndian: false, tile: [16, 16] }],
];
const types: [string, Ctor, string][] = [
  ['uint8', Uint8Array, 'uint8'],
  ['uint16', Uint16Array, 'uint16'],
  ['uint32', Uint32Array, 'uint32'],
  ['float32', Float32Array, 'float32'],
];

for (const [typeName, C, pixelType] of types) {
  const variants = [...layouts, ...(typeName === 'float32' ? floatPredictors : intPredictors)];
  test(`${typeName}: every layout and codec reads back exactly`, async () => {
    for (const [name, opts] of variants) {
      const pages = pagesOf(C);
      const path = await save(buildTiff(pages, opts).bytes);
      const { tiff, pages: got } = await readAll(path);
      assert.equal(tiff.pixelType, pixelType, name);
      assert.equal(tiff.depth, 3, name);
      assert.deepEqual([tiff.width, tiff.height], [W, H], name);
      for (let z = 0; z < 3; z++) assert.deepEqual(got[z], pages[z].data, `${typeName} ${name} page ${z}`);
    }
  });
}

test('signed 8/16-bit pixels become float32 with the same values, with a notice', async () => {
  for (const C of [Int8Array, Int16Array]) {
    const pages = pagesOf(C, 2);
    const notices: string[] = [];
    const path = await save(buildTiff(pages, { compression: Compression.LZW, predictor: 2, littleEndian: false }).bytes);
    const { tiff, pages: got } = await readAll(path, { onNotice: (m: string) => notices.push(m) });
    assert.equal(tiff.pixelType, 'float32');
    assert.ok(got[0] instanceof Float32Array);
    assert.deepEqual([...got[1]], [...pages[1].data]);
    assert.ok(Math.min(...got[0]) < 0, 'negative values survive');
    assert.match(notices.join('\n'), /signed \d+-bit pixels read as float32/);
  }
});

test('8-bit RGB and RGBA become grey by Rec. 601 luma; grey + alpha keeps grey', async () => {
  const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 77, 77, 77, 255, 255, 255]);
  const expected = [76, 150, 29, 18, 77, 255];
  for (const opts of [{}, { compression: Compression.LZW, predictor: 2 as const }, { tile: [16, 16] as [number, number] }]) {
    const notices: string[] = [];
    const path = await save(buildTiff([{ width: 3, height: 2, data: rgb, samplesPerPixel: 3 }], opts).bytes);
    const { tiff, pages } = await readAll(path, { onNotice: (m: string) => notices.push(m) });
    assert.equal(tiff.pixelType, 'uint8');
    assert.deepEqual([...pages[0]], expected);
    assert.match(notices[0], /RGB image, converted to grey/);
  }
  const rgba = new Uint8Array(6 * 4);
  for (let i = 0; i < 6; i++) rgba.set([...rgb.subarray(3 * i, 3 * i + 3), 128], 4 * i);
  const pathA = await save(buildTiff([{ width: 3, height: 2, data: rgba, samplesPerPixel: 4 }], { fields: () => [{ tag: Tag.ExtraSamples, type: FieldType.SHORT, values: [2] }] }).bytes);
  assert.deepEqual([...(await readAll(pathA)).pages[0]], expected);
  const greyAlpha = Uint16Array.from([1000, 65535, 2000, 0, 3000, 7]);
  const pathGA = await save(buildTiff([{ width: 3, height: 1, data: greyAlpha, samplesPerPixel: 2, photometric: 1 }]).bytes);
  assert.deepEqual([...(await readAll(pathGA)).pages[0]], [1000, 2000, 3000]);
});

test('files written by libtiff (through sharp) read back exactly', async () => {
  const w = 300;
  const h = 200;
  const u16 = randomSamples(Uint16Array, w * h, 5).map((v) => v & 0x0fff); // 12-bit content in 16-bit pixels, like EM detectors
  const u8 = randomSamples(Uint8Array, w * h, 6).map((v) => (v & 0xf0) | 3);
  const f32 = randomSamples(Float32Array, w * h, 7);
  const cases: [string, SampleArray, 'grey16' | 'b-w', object][] = [
    ['LZW + horizontal predictor, uint16', u16, 'grey16', { compression: 'lzw', predictor: 'horizontal' }],
    ['LZW, uint8', u8, 'b-w', { compression: 'lzw' }],
    ['PackBits, uint8', u8, 'b-w', { compression: 'packbits' }],
    ['deflate tiles 64×32, uint16', u16, 'grey16', { compression: 'deflate', tile: true, tileWidth: 64, tileHeight: 32 }],
  ];
  for (const [name, data, space, tiffOpts] of cases) {
    const path = join(dir, `libtiff-${fileNo++}.tif`);
    await sharp(data, { raw: { width: w, height: h, channels: 1 } }).toColourspace(space).tiff(tiffOpts).toFile(path);
    const { pages } = await readAll(path);
    assert.deepEqual(pages[0], data, name);
  }
  // sharp's raw input casts floats to 8 bits, so float pixels enter libvips from a TIFF instead (uncompressed, made
  // by the test encoder), and libtiff re-encodes them with LZW and the floating-point predictor.
  const src = join(dir, `float-src-${fileNo++}.tif`);
  await writeFile(src, buildTiff([{ width: w, height: h, data: f32 }]).bytes);
  const path = join(dir, `libtiff-float-${fileNo++}.tif`);
  await sharp(src).toColourspace('b-w').tiff({ compression: 'lzw', predictor: 'float' }).toFile(path);
  const { tiff, pages } = await readAll(path);
  assert.equal(tiff.pixelType, 'float32');
  assert.deepEqual(pages[0], f32, 'LZW + float predictor, float32');
});

test('libtiff (through sharp) decodes the test encoder\'s LZW, PackBits and float-predictor files', async () => {
  const w = 61;
  const h = 47;
  const u16 = randomSamples(Uint16Array, w * h, 21);
  const f32 = randomSamples(Float32Array, w * h, 22);
  const decode16 = async (p: string): Promise<Uint16Array> => {
    const b = await sharp(p).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer();
    return new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
  };
  for (const opts of [{ compression: Compression.LZW, predictor: 2 as const, rowsPerStrip: 9 }, { compression: Compression.PackBits, littleEndian: false }]) {
    assert.deepEqual(await decode16(await save(buildTiff([{ width: w, height: h, data: u16 }], opts).bytes)), u16);
  }
  const fp = await save(buildTiff([{ width: w, height: h, data: f32 }], { compression: Compression.LZW, predictor: 3, tile: [16, 16] }).bytes);
  const b = await sharp(fp).toColourspace('b-w').raw({ depth: 'float' }).toBuffer();
  assert.deepEqual(new Float32Array(b.buffer, b.byteOffset, b.length / 4), f32);
});

test('opening is lazy: a sparse 10 GB stack opens by reading its IFDs only, and a slice reads that slice only', async () => {
  const width = 4000;
  const height = 2500;
  const depth = 1000;
  const sliceBytes = width * height;
  // IFDs first (as ImageJ lays them out), then 1000 × 10 MB of pixels that are never written: a sparse file.
  const fieldsFor = (z: number, dataStart: number): IfdField[] => [
    { tag: Tag.ImageWidth, type: FieldType.LONG, values: [width] },
    { tag: Tag.ImageLength, type: FieldType.LONG, values: [height] },
    { tag: Tag.BitsPerSample, type: FieldType.SHORT, values: [8] },
    { tag: Tag.Photometric, type: FieldType.SHORT, values: [1] },
    { tag: Tag.StripOffsets, type: FieldType.LONG8, values: [dataStart + z * sliceBytes] },
    { tag: Tag.RowsPerStrip, type: FieldType.LONG, values: [height] },
    { tag: Tag.StripByteCounts, type: FieldType.LONG8, values: [sliceBytes] },
  ];
  const ifdSize = encodeIfd(fieldsFor(0, 0), 0, 0, true, true).length;
  const dataStart = 16 + depth * ifdSize;
  const path = join(dir, 'sparse-10GB.tif');
  const fh = await open(path, 'w');
  try {
    await fh.write(encodeHeader(16, true, true), 0, 16, 0);
    const ifds = new Uint8Array(depth * ifdSize);
    for (let z = 0; z < depth; z++) {
      const at = 16 + z * ifdSize;
      ifds.set(encodeIfd(fieldsFor(z, dataStart), at, z + 1 < depth ? at + ifdSize : 0, true, true), z * ifdSize);
    }
    await fh.write(ifds, 0, ifds.length, 16);
    // A marker in slice 500 at pixel (x=3, y=1).
    await fh.write(Uint8Array.from([42]), 0, 1, dataStart + 500 * sliceBytes + width + 3);
    await fh.truncate(dataStart + depth * sliceBytes);
  } finally {
    await fh.close();
  }
  const tiff = await TiffFile.open(path);
  try {
    assert.equal(tiff.depth, depth);
    assert.ok(tiff.bytesRead < 1_000_000, `open read ${tiff.bytesRead} bytes`);
    const before = tiff.bytesRead;
    const slice = await tiff.readPage(500);
    assert.equal(tiff.bytesRead - before, sliceBytes, 'one slice read reads exactly that slice');
    assert.equal(slice.data[width + 3], 42);
    assert.equal(slice.data[width + 2], 0);
  } finally {
    await tiff.close();
  }
});

test('ImageJ stacks with one IFD and images=N read the other pages from after the first', async () => {
  const w = 9;
  const h = 5;
  const n = 4;
  const slices = Array.from({ length: n }, (_, z) => randomSamples(Uint16Array, w * h, 100 + z));
  const build = (le: boolean): Uint8Array => {
    const data = new Uint8Array(n * w * h * 2);
    slices.forEach((s, z) => {
      const b = new Uint8Array(s.slice().buffer);
      if (!le) for (let i = 0; i < b.length; i += 2) [b[i], b[i + 1]] = [b[i + 1], b[i]];
      data.set(b, z * w * h * 2);
    });
    const ifdAt = 8 + data.length;
    const fields: IfdField[] = [
      { tag: Tag.ImageWidth, type: FieldType.LONG, values: [w] },
      { tag: Tag.ImageLength, type: FieldType.LONG, values: [h] },
      { tag: Tag.BitsPerSample, type: FieldType.SHORT, values: [16] },
      { tag: Tag.Photometric, type: FieldType.SHORT, values: [1] },
      { tag: Tag.ImageDescription, type: FieldType.ASCII, values: asciiValues(`ImageJ=1.53t\nimages=${n}\nslices=${n}\nunit=nm\nspacing=30\nloop=false\n`) },
      { tag: Tag.StripOffsets, type: FieldType.LONG, values: [8] },
      { tag: Tag.RowsPerStrip, type: FieldType.LONG, values: [h] },
      { tag: Tag.StripByteCounts, type: FieldType.LONG, values: [w * h * 2] },
      { tag: Tag.XResolution, type: FieldType.RATIONAL, values: [1, 5] },
      { tag: Tag.YResolution, type: FieldType.RATIONAL, values: [1, 5] },
    ];
    const ifd = encodeIfd(fields, ifdAt, 0, false, le);
    const out = new Uint8Array(ifdAt + ifd.length);
    out.set(encodeHeader(ifdAt, false, le));
    out.set(data, 8);
    out.set(ifd, ifdAt);
    return out;
  };
  for (const le of [true, false]) {
    const path = await save(build(le));
    const { tiff, pages } = await readAll(path);
    assert.equal(tiff.depth, n);
    assert.deepEqual(tiff.pixelSizeNm, { x: 5, y: 5, z: 30 });
    for (let z = 0; z < n; z++) assert.deepEqual(pages[z], slices[z], `le=${le} page ${z}`);
  }
  // A file cut short (here: a description claiming more images than the file holds) is reported at open.
  const bytes = build(true);
  const text = new TextDecoder('latin1').decode(bytes);
  bytes[text.indexOf('images=4') + 7] = '9'.charCodeAt(0);
  await assert.rejects(TiffFile.open(await save(bytes)), /file is truncated: the ImageJ description declares 9 images/);
});

test('pixel size from ImageJ, OME-XML and plain resolution tags of real files', async () => {
  const page = [{ width: 4, height: 3, data: new Uint8Array(12) }];
  const ij = await TiffFile.open(await save(buildTiff(page, { description: 'ImageJ=1.53t\nunit=micron\nspacing=0.05\n', resolution: { x: 250, y: 250, unit: 1 } }).bytes));
  assert.deepEqual(ij.pixelSizeNm, { x: 4, y: 4, z: 50 });
  await ij.close();
  const ome = `<?xml version="1.0"?><OME><Image><Pixels SizeC="1" PhysicalSizeX="3" PhysicalSizeXUnit="nm" PhysicalSizeY="3" PhysicalSizeYUnit="nm" PhysicalSizeZ="25" PhysicalSizeZUnit="nm"/></Image></OME>`;
  const o = await TiffFile.open(await save(buildTiff(page, { description: ome, littleEndian: false, bigTiff: true }).bytes));
  assert.deepEqual(o.pixelSizeNm, { x: 3, y: 3, z: 25 });
  await o.close();
  const cm = await TiffFile.open(await save(buildTiff(page, { resolution: { x: 2.5e6, y: 2e6, unit: 3 } }).bytes));
  assert.deepEqual(cm.pixelSizeNm, { x: 4, y: 5 });
  await cm.close();
  const none = await TiffFile.open(await save(buildTiff(page, { resolution: { x: 72, y: 72 } }).bytes));
  assert.equal(none.pixelSizeNm, undefined);
  await none.close();
});

test('reduced-resolution pages are skipped; missing byte counts of uncompressed strips are inferred', async () => {
  const pages = pagesOf(Uint8Array, 3);
  pages.splice(1, 0, { width: 5, height: 3, data: new Uint8Array(15) });
  const notices: string[] = [];
  const path = await save(
    buildTiff(pages, { omitByteCounts: true, rowsPerStrip: 4, fields: (z) => (z === 1 ? [{ tag: Tag.NewSubfileType, type: FieldType.LONG, values: [1] }] : []) }).bytes,
  );
  const { tiff, pages: got } = await readAll(path, { onNotice: (m: string) => notices.push(m) });
  assert.equal(tiff.depth, 3);
  assert.deepEqual(got[2], pages[3].data);
  assert.match(notices.join(), /skipped 1 reduced-resolution/);
});

test('concurrent reads of different pages share the file handle safely', async () => {
  const pages = pagesOf(Uint16Array, 6);
  const tiff = await TiffFile.open(await save(buildTiff(pages, { compression: Compression.AdobeDeflate, rowsPerStrip: 3 }).bytes));
  const got = await Promise.all(pages.map((_, z) => tiff.readPage(z)));
  got.forEach((g, z) => assert.deepEqual(g.data, pages[z].data));
  await tiff.close();
  await assert.rejects(tiff.readPage(0), /closed/);
});
