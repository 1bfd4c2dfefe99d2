// A project's export opens in napari and Fiji: Python's tifffile (napari's TIFF reader; Debian package
// python3-tifffile, run with /usr/bin/python3) reads labels.tif, truth-isbi.tif and the stored membrane maps
// (membrane-round-<r>.tif, membrane.tif) bit-exactly as z-stacks with ImageJ metadata, classic (not Big) TIFF and no
// compression, which ImageJ's own reader opens too. Skipped, with the reason printed, when tifffile is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paintStroke } from '../../ml/proofread';
import { exportProject } from './export';
import { FIXTURE, fixtureInitial } from './fixtures';
import { Project, type SliceResults } from './store';

const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import tifffile, numpy'], { encoding: 'utf8' });
const skip = probe.status === 0 ? false : `tifffile not available to ${PYTHON}; install the Debian package python3-tifffile`;
if (skip) console.log(`# skipping the export check with tifffile: ${skip}`);

const SCRIPT = String.raw`
import json, sys
import numpy as np
import tifffile

out = {}
for name, raw, dtype in json.loads(sys.argv[1]):
    with tifffile.TiffFile(name) as t:
        a = t.asarray()
        exp = np.fromfile(raw, dtype=np.dtype(dtype).newbyteorder('<')).reshape(a.shape)
        p = t.pages[0]
        out[name] = dict(equal=bool(a.tobytes() == exp.astype(a.dtype).tobytes()), dtype=str(a.dtype), shape=list(a.shape),
                         bigtiff=bool(t.is_bigtiff), imagej=t.imagej_metadata, compression=int(p.compression),
                         xres=list(p.tags['XResolution'].value) if 'XResolution' in p.tags else None)
print(json.dumps(out))
`;

interface Read {
  equal: boolean;
  dtype: string;
  shape: number[];
  bigtiff: boolean;
  imagej: { images?: number; slices?: number; spacing?: number; unit?: string } | null;
  compression: number;
  xres: number[] | null;
}

test('exported labels, ground truth and membrane maps read in tifffile (napari) as ImageJ z-stacks, bit-exactly', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-export-test-'));
  try {
    const p = await Project.create(join(dir, 'p'), { stackPath: '/data/stack.tif', ...FIXTURE, initial: async (layer, z) => (layer === 'labels' ? fixtureInitial(z) : null) });
    await p.edit('labels', 0, (l) => paintStroke(l, 0, [3, 3, 40, 50], 3, 70000));
    await p.edit('truth', 1, (l) => paintStroke(l, 1, [0, 32, 64, 32], 64, 255));
    await p.edit('truth', 1, (l) => paintStroke(l, 1, [20.5, 0, 20.5, 64], 0.5, 0));
    // Maps as jobs store them: slice 0 refined once (rounds 0 and 1), slice 1 only predicted (round 0).
    const n = FIXTURE.width * FIXTURE.height;
    const map = (z: number, r: number) => Float32Array.from({ length: n }, (_, i) => ((i * 31 + z * 7 + r * 13) % 1009) / 1008);
    async function* jobs(): AsyncGenerator<SliceResults> {
      yield { z: 0, maps: [map(0, 0), map(0, 1)], labels: null };
      yield { z: 1, maps: [map(1, 0)], labels: null };
    }
    await p.storeResults(jobs());
    const out = await exportProject(p, dir, { x: 4, y: 4, z: 50 });
    // Every file in place under its final name, no temporary file left beside them.
    assert.deepEqual((await readdir(dir)).sort(), ['export.json', 'labels.tif', 'membrane-round-0.tif', 'membrane-round-1.tif', 'membrane.tif', 'p', 'truth-isbi.tif']);
    assert.deepEqual(out.membraneRounds, [join(dir, 'membrane-round-0.tif'), join(dir, 'membrane-round-1.tif')]);
    assert.equal(out.membrane, join(dir, 'membrane.tif'));
    const manifest = JSON.parse(await readFile(out.manifest, 'utf8')) as { membrane: string; membraneRounds: string[]; mapRounds: number[] };
    assert.deepEqual([manifest.membrane, manifest.membraneRounds, manifest.mapRounds], ['membrane.tif', ['membrane-round-0.tif', 'membrane-round-1.tif'], [2, 1]]);
    // Round 1 of slice 1 does not exist: NaN there; membrane.tif holds each slice's last round.
    const none = new Float32Array(n).fill(NaN);
    const maps: [string, Float32Array[]][] = [
      [out.membraneRounds[0], [map(0, 0), map(1, 0)]],
      [out.membraneRounds[1], [map(0, 1), none]],
      [out.membrane, [map(0, 1), map(1, 0)]],
    ];
    // What the files must hold: the labels as they are; ISBI truth (slice 0 derived from the labels, slice 1 painted).
    const labels = [(await p.slice('labels', 0)).data, (await p.slice('labels', 1)).data];
    const truth = [Uint8Array.from(labels[0], (v) => (v === 0 ? 0 : 255)), Uint8Array.from((await p.slice('truth', 1)).data, (v) => (v === 0 ? 0 : 255))];
    await p.close();
    const bytes = (arrays: (Uint32Array | Uint8Array | Float32Array)[]) => Buffer.concat(arrays.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
    await writeFile(join(dir, 'labels.bin'), bytes(labels));
    await writeFile(join(dir, 'truth.bin'), bytes(truth));
    for (const [k, [, slices]] of maps.entries()) await writeFile(join(dir, `map${k}.bin`), bytes(slices));
    // Each file, the raw bytes it must hold, and their type.
    const checks: [string, string, string][] = [
      [out.labels, join(dir, 'labels.bin'), 'uint32'],
      [out.truth, join(dir, 'truth.bin'), 'uint8'],
      ...maps.map(([file], k): [string, string, string] => [file, join(dir, `map${k}.bin`), 'float32']),
    ];
    const run = spawnSync(PYTHON, ['-c', SCRIPT, JSON.stringify(checks)], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const res = JSON.parse(run.stdout) as Record<string, Read>;
    for (const [file, , dtype] of checks) {
      const r = res[file];
      assert.ok(r.equal, `${file}: pixels differ`);
      assert.equal(r.dtype, dtype);
      assert.deepEqual(r.shape, [FIXTURE.depth, FIXTURE.height, FIXTURE.width]);
      // ImageJ reads classic TIFF only, and uncompressed pages as one block.
      assert.equal(r.bigtiff, false);
      assert.equal(r.compression, 1);
      assert.equal(r.imagej?.images, FIXTURE.depth);
      assert.equal(r.imagej?.slices, FIXTURE.depth, 'a z-stack, not a time series');
      assert.equal(r.imagej?.spacing, 0.05, 'z spacing in microns');
      // 4 nm pixels: 250 pixels per micron.
      assert.ok(r.xres && Math.abs(r.xres[0] / r.xres[1] - 250) < 1e-6);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
