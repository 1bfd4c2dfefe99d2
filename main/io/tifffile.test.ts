// Cross-check with Python's tifffile (Debian package python3-tifffile, run with /usr/bin/python3): tifffile must read
// our writer's files bit-exactly with the ImageJ metadata, and we must read tifffile's files (both byte orders,
// BigTIFF, tiles, deflate with and without predictor, ImageJ, RGB) bit-exactly. Skipped, with the reason printed, when
// tifffile is not installed. (Debian's tifffile has no imagecodecs, so LZW and PackBits are covered by the test
// encoder and by libtiff in tiff-read.test.ts instead.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Image2D, PixelArray } from '../../ml/types';
import { openStack } from './stack';
import { TiffFile } from './tiff-read';
import { writeTiffStack } from './tiff-write';
import { randomSamples, tempDir } from './tiff-fixtures';

const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import tifffile, numpy'], { encoding: 'utf8' });
const skip =
  probe.status === 0
    ? false
    : `tifffile not available to ${PYTHON} (${(probe.error?.message ?? (probe.stderr ?? '').trim().split('\n').pop() ?? '').slice(0, 120)}); install the Debian package python3-tifffile`;
if (skip) console.log(`# skipping the tifffile cross-check: ${skip}`);

const SCRIPT = String.raw`
import json, sys
import numpy as np
import tifffile

d = sys.argv[1]
spec = json.load(open(d + '/spec.json'))
out = {'ours': {}, 'theirs': []}

for it in spec['ours']:
    with tifffile.TiffFile(it['file']) as t:
        a = t.asarray()
        exp = np.fromfile(it['raw'], dtype=np.dtype(it['dtype']).newbyteorder('<')).reshape(it['shape'])
        p = t.pages[0]
        xr = p.tags['XResolution'].value if 'XResolution' in p.tags else None
        out['ours'][it['file']] = dict(
            equal=bool(a.dtype == exp.dtype and a.shape == exp.shape and a.tobytes() == exp.astype(a.dtype).tobytes()),
            dtype=str(a.dtype), shape=list(a.shape), bigtiff=bool(t.is_bigtiff), pages=len(t.pages),
            imagej=t.imagej_metadata, xres=list(xr) if xr else None, compression=int(p.compression))

n = 3 * 23 * 37
base = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(12345)) % np.uint64(2**32)
arrays = {
    'uint8': (base % 256).astype(np.uint8),
    'uint16': (base % 65536).astype(np.uint16),
    'uint32': base.astype(np.uint32),
    'float32': ((base % 200001).astype(np.float64) / 7 - 10000).astype(np.float32),
}
variants = {
    'plain': {},
    'be': {'byteorder': '>'},
    'rowsperstrip5': {'rowsperstrip': 5},
    'zlib': {'compression': 'zlib'},
    'zlib-predictor': {'compression': 'zlib', 'predictor': True},
    'tiles': {'tile': (16, 16)},
    'tiles-zlib-be-bigtiff': {'tile': (16, 16), 'compression': 'zlib', 'byteorder': '>', 'bigtiff': True},
    'bigtiff': {'bigtiff': True},
    'imagej': {'imagej': True, 'resolution': (250.0, 250.0), 'metadata': {'axes': 'ZYX', 'spacing': 0.05, 'unit': 'um'}},
    'imagej-channels': {'imagej': True, 'metadata': {'axes': 'CYX'}},
}
for dtype, flat in arrays.items():
    a = flat.reshape(3, 23, 37)
    for name, kw in variants.items():
        if dtype == 'float32' and kw.get('predictor'):
            continue  # the floating-point predictor needs imagecodecs
        if name.startswith('imagej') and dtype == 'uint32':
            continue  # ImageJ has no 32-bit integer type
        f = '%s/theirs-%s-%s.tif' % (d, dtype, name)
        # minisblack: otherwise tifffile takes a leading axis of 3 for planar RGB
        tifffile.imwrite(f, a, photometric='minisblack', **kw)
        raw = f + '.bin'
        a.astype(a.dtype.newbyteorder('<')).tofile(raw)
        out['theirs'].append(dict(file=f, raw=raw, dtype=dtype, variant=name))
rgb = (base[: 23 * 37 * 3] % 256).astype(np.uint8).reshape(23, 37, 3)
f = d + '/theirs-rgb.tif'
tifffile.imwrite(f, rgb, photometric='rgb', compression='zlib', predictor=True)
rgb.tofile(f + '.bin')
out['theirs'].append(dict(file=f, raw=f + '.bin', dtype='rgb', variant='rgb'))
print(json.dumps(out))
`;

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => ({ dir, cleanup } = await tempDir()));
after(() => cleanup());

type Ctor = new (n: number) => PixelArray;
const CTORS: Record<string, Ctor> = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array };

interface PyResult {
  ours: Record<string, { equal: boolean; dtype: string; shape: number[]; bigtiff: boolean; pages: number; imagej: Record<string, unknown> | null; xres: number[] | null; compression: number }>;
  theirs: { file: string; raw: string; dtype: string; variant: string }[];
}

test('tifffile reads our files bit-exactly, and we read tifffile\'s', { skip }, async () => {
  const ours: { file: string; raw: string; dtype: string; shape: number[]; compression: string; big: boolean }[] = [];
  for (const dtype of Object.keys(CTORS)) {
    for (const compression of ['none', 'deflate'] as const) {
      for (const big of [false, true]) {
        const slices: Image2D[] = Array.from({ length: 3 }, (_, z) => ({ width: 37, height: 23, data: randomSamples(CTORS[dtype], 37 * 23, 70 + z) }));
        const file = join(dir, `ours-${dtype}-${compression}-${big ? 'big' : 'classic'}.tif`);
        await writeTiffStack(file, slices, { compression, bigTiff: big, pixelSizeNm: { x: 4, y: 4, z: 50 } });
        const raw = `${file}.bin`;
        await writeFile(raw, Buffer.concat(slices.map((s) => new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.byteLength))));
        ours.push({ file, raw, dtype, shape: [3, 23, 37], compression, big });
      }
    }
  }
  await writeFile(join(dir, 'spec.json'), JSON.stringify({ ours }));
  await writeFile(join(dir, 'check.py'), SCRIPT);
  const run = spawnSync(PYTHON, [join(dir, 'check.py'), dir], { encoding: 'utf8', maxBuffer: 16 << 20 });
  assert.equal(run.status, 0, run.stderr);
  const res = JSON.parse(run.stdout) as PyResult;

  for (const o of ours) {
    const r = res.ours[o.file];
    assert.ok(r.equal, `tifffile read ${o.file} as ${r.dtype} ${JSON.stringify(r.shape)}, not bit-exact`);
    assert.equal(r.dtype, o.dtype);
    assert.deepEqual(r.shape, [3, 23, 37]);
    assert.equal(r.bigtiff, o.big);
    assert.equal(r.pages, 3);
    assert.equal(r.compression, o.compression === 'deflate' ? 8 : 1);
    assert.equal(r.imagej?.unit, 'micron', o.file);
    assert.equal(r.imagej?.spacing, 0.05);
    assert.deepEqual(r.xres, [250, 1]);
  }

  assert.ok(res.theirs.length >= 30);
  for (const t of res.theirs) {
    const raw = await readFile(t.raw);
    if (t.variant === 'imagej-channels') {
      await assert.rejects(TiffFile.open(t.file), /unsupported TIFF: 3 channels interleaved in the page sequence/);
      continue;
    }
    const tiff = await TiffFile.open(t.file);
    try {
      if (t.dtype === 'rgb') {
        const page = await tiff.readPage(0);
        const expected = new Uint8Array(37 * 23);
        for (let i = 0; i < expected.length; i++) expected[i] = Math.floor((299 * raw[3 * i] + 587 * raw[3 * i + 1] + 114 * raw[3 * i + 2] + 500) / 1000);
        assert.deepEqual(page.data, expected, t.file);
        continue;
      }
      assert.equal(tiff.depth, 3, t.file);
      assert.equal(tiff.pixelType, t.dtype, t.file);
      const C = CTORS[t.dtype];
      const all = new C(raw.byteLength / C.prototype.BYTES_PER_ELEMENT);
      new Uint8Array(all.buffer).set(raw);
      for (let z = 0; z < 3; z++) {
        const page = await tiff.readPage(z);
        assert.deepEqual(page.data, all.subarray(z * 37 * 23, (z + 1) * 37 * 23), `${t.file} page ${z}`);
      }
      if (t.variant === 'imagej') {
        const px = tiff.pixelSizeNm;
        assert.ok(px && Math.abs(px.x - 4) < 1e-9 && Math.abs(px.y - 4) < 1e-9 && Math.abs((px.z ?? 0) - 50) < 1e-9, `${t.file}: ${JSON.stringify(px)}`);
      }
    } finally {
      await tiff.close();
    }
  }
  // And through openStack, as the app opens them.
  const stack = await openStack(join(dir, 'theirs-uint16-tiles-zlib-be-bigtiff.tif'));
  assert.deepEqual([stack.info.kind, stack.info.depth, stack.info.width, stack.info.height, stack.info.pixelType], ['tiff', 3, 37, 23, 'uint16']);
  await stack.close();
});
