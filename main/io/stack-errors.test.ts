// Every way a user's stack can be wrong, each made as a real file here: the error must be a StackError naming the
// file, one line of the form `<file>: <problem>`, with userFacing set so the CLI prints it and exits with code 2.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { StackError } from './errors';
import { openStack, type OpenStackOptions } from './stack';
import { Compression, FieldType, Tag } from './tiff-format';
import { buildTiff, lzwEncode, randomSamples, tempDir } from './tiff-fixtures';

const ISBI = fileURLToPath(new URL('../../../shared/data/isbi2012/train/image', import.meta.url));

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

/** Opens and reads every slice; resolves to the StackError raised on the way (fails the test if none). */
async function stackError(path: string, opts: OpenStackOptions = {}): Promise<StackError> {
  try {
    const stack = await openStack(path, opts);
    try {
      for (let z = 0; z < stack.info.depth; z++) await stack.readSlice(z);
    } finally {
      await stack.close();
    }
  } catch (e) {
    assert.ok(e instanceof StackError, `expected a StackError, got ${String(e)}`);
    assert.equal(e.userFacing, true);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.ok(e.message.startsWith(`${e.file}: `), e.message);
    return e;
  }
  assert.fail(`${path} opened and read without error`);
}

async function expectError(path: string, file: string, problem: RegExp, opts: OpenStackOptions = {}): Promise<void> {
  const e = await stackError(path, opts);
  assert.equal(e.file, file);
  assert.match(e.problem, problem);
}

let n = 0;
async function tif(bytes: Uint8Array): Promise<string> {
  const p = join(dir, `bad${n++}.tif`);
  await writeFile(p, bytes);
  return p;
}
const page = (w = 8, h = 6) => ({ width: w, height: h, data: randomSamples(Uint8Array, w * h, 3) });

test('file not found; empty folder; folder of only hidden files or sub-folders', async () => {
  const missing = join(dir, 'nope.tif');
  await expectError(missing, missing, /^no such file or folder$/);
  const empty = join(dir, 'empty');
  await mkdir(empty);
  await expectError(empty, empty, /^empty folder: no image files$/);
  await writeFile(join(empty, '.DS_Store'), 'x');
  await writeFile(join(empty, 'Thumbs.db'), 'x');
  await expectError(empty, empty, /^empty folder/);
  await mkdir(join(empty, 'image'));
  await expectError(empty, empty, /only sub-folders: image/);
});

test('folder: slices of different sizes, different pixel types, a non-image file', async () => {
  const sizes = join(dir, 'sizes');
  await mkdir(sizes);
  await copyFile(join(ISBI, '0.png'), join(sizes, '1.png'));
  await sharp(join(ISBI, '1.png')).resize(256, 256).toFile(join(sizes, '2.png'));
  await expectError(sizes, join(sizes, '2.png'), /slice is 256×256 but 1\.png is 512×512/);

  const types = join(dir, 'types');
  await mkdir(types);
  await copyFile(join(ISBI, '0.png'), join(types, 'a.png'));
  await sharp(new Uint16Array(512 * 512).fill(1000), { raw: { width: 512, height: 512, channels: 1 } }).toColourspace('grey16').png().toFile(join(types, 'b.png'));
  await expectError(types, join(types, 'b.png'), /slice is uint16 but a\.png is uint8/);

  const other = join(dir, 'other');
  await mkdir(other);
  await copyFile(join(ISBI, '0.png'), join(other, '0.png'));
  await writeFile(join(other, 'notes.txt'), 'acquisition notes');
  await expectError(other, join(other, 'notes.txt'), /not an image file/);

  const multi = join(dir, 'multi');
  await mkdir(multi);
  await writeFile(join(multi, '0.tif'), buildTiff([page(), page()]).bytes);
  await expectError(multi, join(multi, '0.tif'), /has 2 pages; the files of a folder stack must hold one slice each/);
});

test('truncated TIFF: first IFD beyond the end, a strip beyond the end, the file cut short', async () => {
  const good = buildTiff([page(), page(), page()], { rowsPerStrip: 2 });
  const ifdPast = good.bytes.slice();
  new DataView(ifdPast.buffer).setUint32(4, 1_000_000, true);
  const p1 = await tif(ifdPast);
  await expectError(p1, p1, /file is truncated or corrupt: IFD 0 .* lies beyond the end of the file/);

  // Last page's strip beyond the end: seen at open. A middle page's: seen when that slice is read.
  const last = buildTiff([page(), page(), page()], { fields: (z) => (z === 2 ? [{ tag: Tag.StripOffsets, type: FieldType.LONG, values: [900_000] }] : []) });
  const p2 = await tif(last.bytes);
  await expectError(p2, p2, /file is truncated: page 2 strip 0 \(bytes 900000 to 900048\) lies beyond the end of the file/);
  const middle = buildTiff([page(), page(), page()], { fields: (z) => (z === 1 ? [{ tag: Tag.StripOffsets, type: FieldType.LONG, values: [900_000] }] : []) });
  const p3 = await tif(middle.bytes);
  const stack = await openStack(p3);
  await stack.readSlice(0);
  await assert.rejects(stack.readSlice(1), (e: unknown) => e instanceof StackError && /page 1 strip 0 .* lies beyond the end of the file/.test(e.message));
  await stack.close();

  // A real cut: everything after the first 40 bytes is gone (IFDs are at the end in these files).
  const p4 = await tif(good.bytes.slice(0, 40));
  await expectError(p4, p4, /file is truncated or corrupt/);
  const p5 = await tif(good.bytes.slice(0, 5));
  await expectError(p5, p5, /not a TIFF file: only 5 bytes long/);
});

test('corrupt TIFF: bad magic, bad version, IFD loop, corrupt LZW data, strip too short', async () => {
  const bytes = buildTiff([page()]).bytes;
  const magic = bytes.slice();
  magic.set([0x58, 0x58], 0);
  const p1 = await tif(magic);
  await expectError(p1, p1, /not a TIFF file: bad magic bytes 58 58 2a 00/);
  const version = bytes.slice();
  version[2] = 41;
  const p2 = await tif(version);
  await expectError(p2, p2, /bad version number 41/);

  const two = buildTiff([page(), page()]);
  const loop = two.bytes.slice();
  const dv = new DataView(loop.buffer);
  const entries = dv.getUint16(two.ifdOffsets[1], true);
  dv.setUint32(two.ifdOffsets[1] + 2 + 12 * entries, two.ifdOffsets[0], true);
  const p3 = await tif(loop);
  await expectError(p3, p3, /corrupt TIFF: IFD loop: IFD 1 links back to the IFD at byte/);

  const lzw = buildTiff([page(16, 16)], { compression: Compression.LZW });
  const broken = lzw.bytes.slice();
  broken.set([0xff, 0xff, 0xff, 0xff], lzw.chunkOffsets[0][0] + 2);
  const p4 = await tif(broken);
  await expectError(p4, p4, /corrupt TIFF: page 0 strip 0: invalid LZW code/);

  // A valid LZW stream of too few bytes: 10 of the 96 the strip needs.
  const short = buildTiff([page(16, 6)], { compression: Compression.LZW });
  const shortStream = lzwEncode(new Uint8Array(10).fill(5));
  const shortBytes = buildTiff([page(16, 6)], {
    compression: Compression.LZW,
    fields: () => [{ tag: Tag.StripByteCounts, type: FieldType.LONG, values: [shortStream.length] }],
  }).bytes;
  shortBytes.set(shortStream, short.chunkOffsets[0][0]);
  const p5 = await tif(shortBytes);
  await expectError(p5, p5, /corrupt TIFF: page 0 strip 0 decodes to 10 bytes, expected 96/);

  const deflate = buildTiff([page(16, 16)], { compression: Compression.AdobeDeflate });
  const badZ = deflate.bytes.slice();
  badZ.set([0, 0, 0, 0], deflate.chunkOffsets[0][0]);
  const p6 = await tif(badZ);
  await expectError(p6, p6, /corrupt TIFF: page 0 strip 0: /);
});

test('corrupt and truncated PNG; a .png that is not a PNG', async () => {
  const png = await readFile(join(ISBI, '0.png'));
  const garbage = Buffer.from(png);
  garbage.fill(0x55, 8, 64); // signature intact, header chunk destroyed
  const p1 = join(dir, 'garbage.png');
  await writeFile(p1, garbage);
  await expectError(p1, p1, /corrupt or unreadable PNG/);
  const p2 = join(dir, 'truncated.png');
  await writeFile(p2, png.subarray(0, png.length >> 1));
  await expectError(p2, p2, /corrupt or unreadable PNG/);
  const p3 = join(dir, 'text.png');
  await writeFile(p3, 'this is not an image');
  await expectError(p3, p3, /corrupt PNG: the file does not start with the PNG signature/);
  const p4 = join(dir, 'data.bin');
  await writeFile(p4, 'binary');
  await expectError(p4, p4, /not a stack: expected a TIFF, PNG or JPEG file/);
  // In a folder the broken slice is named.
  const folder = join(dir, 'brokenfolder');
  await mkdir(folder);
  await copyFile(join(ISBI, '0.png'), join(folder, '0.png'));
  await writeFile(join(folder, '1.png'), png.subarray(0, png.length >> 1));
  await expectError(folder, join(folder, '1.png'), /corrupt or unreadable PNG/);
});

test('unsupported pixel types and formats say what they are', async () => {
  const withFields = (bits: number[], format: number[], extra: { tag: number; type: number; values: number[] }[] = []) =>
    tif(
      buildTiff([page()], {
        fields: () => [
          { tag: Tag.BitsPerSample, type: FieldType.SHORT, values: bits },
          { tag: Tag.SampleFormat, type: FieldType.SHORT, values: format },
          ...extra,
        ],
      }).bytes,
    );
  const cases: [Promise<string>, RegExp][] = [
    [withFields([12], [1]), /unsupported TIFF: pixel type 12-bit unsigned integer/],
    [withFields([1], [1]), /pixel type 1-bit unsigned integer/],
    [withFields([32], [2]), /pixel type 32-bit signed integer/],
    [withFields([64], [3]), /pixel type 64-bit float/],
    [withFields([16], [3]), /pixel type 16-bit float/],
    [withFields([64], [6]), /pixel type 64-bit complex float/],
    [withFields([8], [1], [{ tag: Tag.Photometric, type: FieldType.SHORT, values: [3] }]), /palette-colour \(indexed\) images/],
    [withFields([8, 8, 8, 8], [1, 1, 1, 1], [{ tag: Tag.Photometric, type: FieldType.SHORT, values: [5] }, { tag: Tag.SamplesPerPixel, type: FieldType.SHORT, values: [4] }]), /CMYK/],
    [withFields([16, 16, 16], [1, 1, 1], [{ tag: Tag.Photometric, type: FieldType.SHORT, values: [2] }, { tag: Tag.SamplesPerPixel, type: FieldType.SHORT, values: [3] }]), /RGB with 16-bit unsigned integer samples/],
    [withFields([8], [1], [{ tag: Tag.Compression, type: FieldType.SHORT, values: [7] }]), /JPEG compression/],
    [withFields([8], [1], [{ tag: Tag.Compression, type: FieldType.SHORT, values: [50000] }]), /Zstandard compression/],
  ];
  for (const [path, problem] of cases) {
    const p = await path;
    await expectError(p, p, problem);
  }
});

test('declared slice size above the limit, for TIFF and PNG', async () => {
  // 100 000 × 100 000 uint8 is 9.3 GiB: refused from the header, nothing allocated.
  const huge = await tif(
    buildTiff([page()], {
      fields: () => [
        { tag: Tag.ImageWidth, type: FieldType.LONG, values: [100_000] },
        { tag: Tag.ImageLength, type: FieldType.LONG, values: [100_000] },
      ],
    }).bytes,
  );
  await expectError(huge, huge, /declared slice size 100000×100000 uint8 \(9\.31 GiB\) is above the limit of 2\.00 GiB per slice/);
  const png = join(ISBI, '3.png');
  await expectError(png, png, /declared slice size 512×512 uint8 \(256\.0 KiB\) is above the limit of 100\.0 KiB per slice/, { maxSliceBytes: 100 * 1024 });
  await expectError(ISBI, join(ISBI, '0.png'), /above the limit/, { maxSliceBytes: 1000 });
});
