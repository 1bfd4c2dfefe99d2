// Compressed models are ordinary model folders: an int8 folder (ONNX only) and a structurally pruned folder load for
// inference like any model, carry their method in record.compression, and get a row in the report; the unstructured
// methods keep exact zeros through weights.bin and the ONNX graph; a binarized folder scores its ensembles and runs
// as one in `emseg segment`, writing the uncertainty map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import os from 'node:os';
import { initTf } from '../../ml/tfjs/backend';
import { buildModel, type UNetConfig } from '../../ml/models';
import { setWeights } from '../../ml/train/trainer';
import { modelToOnnxGraph } from '../../ml/onnx/export';
import { openStack, writeTiffStack } from '../io';
import { segmentStack } from './segment-stack';
import { pseudoRandom } from '../../ml/models/test-helpers';
import { loadModel } from './model-store';
import { loadInferenceModel } from './models';
import { tinySource } from './fixtures';
import { compressModel, measureModelFolder, reportMarkdown, type CompressData } from './compress';
import type { LabelledSlice } from './datasets';

function slice(index: number, size: number): LabelledSlice {
  const raw = Uint8Array.from(pseudoRandom(size * size, index + 1, 200), (v) => 128 + v);
  // Membrane (0) on a grid of lines, cells (255) between.
  const label = Uint8Array.from({ length: size * size }, (_, i) => (i % size) % 8 === 0 || Math.floor(i / size) % 8 === 0 ? 0 : 255);
  return { index, raw: { width: size, height: size, data: raw }, label: { width: size, height: size, data: label } };
}

test('int8 and structured compression write model folders that run like any model', async () => {
  await initTf();
  const dir = await mkdtemp(join(os.tmpdir(), 'emseg-compress-'));
  try {
    const src = await tinySource(dir);
    const data: CompressData = { train: [slice(0, 48), slice(1, 48)], val: [slice(2, 48)], membraneValue: 0 };
    const fineTune = { steps: 0, batchSize: 1, cropPx: 32, lr: 0, workers: 1, seed: 1, evalEvery: 1 };

    const int8 = await compressModel({ method: 'int8', src, out: join(dir, 'int8'), data, fineTune, int8: { threads: 1 } });
    assert.equal(int8.compression?.method, 'int8');
    assert.equal((await stat(join(dir, 'int8', 'weights.bin'))).size, 0, 'an int8 folder has no float weights');
    assert.match(await readFile(join(dir, 'int8', 'README.md'), 'utf8'), /## Compression\n\n- method: int8\n/, 'and a model card');
    assert.equal(typeof (int8.validation as Record<string, number>).vrand, 'number');

    const structured = await compressModel({ method: 'structured', src, out: join(dir, 'structured'), data, fineTune, structured: { keepFraction: 0.5 } });
    assert.equal(structured.compression?.method, 'structured');
    assert.equal((structured.config as UNetConfig).widths?.bottomb, 8);
    assert.ok((await loadModel(join(dir, 'structured'))).weights.length > 0);

    for (const name of ['src', 'int8', 'structured']) {
      const im = await loadInferenceModel(join(dir, name), { threads: 1 });
      const out = await im.session.run(pseudoRandom(32 * 32, 3), 1, 32, 32);
      await im.session.release();
      assert.equal(out.length, 32 * 32);
      assert.ok(out.every((v) => v >= 0 && v <= 1));
    }
    const rows = [];
    for (const name of ['src', 'int8', 'structured']) rows.push(await measureModelFolder(join(dir, name), data.val, 0, { threads: 1 }));
    assert.deepEqual(rows.map((r) => r.method), ['none', 'int8', 'structured']);
    assert.ok(rows[1].fileMB < rows[0].fileMB, 'the int8 file is smaller');
    assert.match(reportMarkdown(rows, 'note'), /\| int8 \| int8 \|/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Exact zeros of the folder's ONNX graph (rebuilt as exportModelFolder builds it) over its Conv weights. */
async function onnxConvZeros(dir: string): Promise<number> {
  const loaded = await loadModel(dir);
  const m = buildModel(loaded.record.config);
  setWeights(m, loaded.weights);
  const graph = modelToOnnxGraph(m);
  m.dispose();
  let zeros = 0;
  for (const t of graph.initializers) if (t.name.endsWith('_conv.W')) for (const v of t.data as Float32Array) zeros += v === 0 ? 1 : 0;
  return zeros;
}

test('relief (with its magnitude baseline), magnitude and Lp-sphere folders keep their zeros and record sparsity', async () => {
  await initTf();
  const dir = await mkdtemp(join(os.tmpdir(), 'emseg-compress-sparse-'));
  try {
    const src = await tinySource(dir);
    const data: CompressData = { train: [slice(0, 48), slice(1, 48)], val: [slice(2, 48)], membraneValue: 0 };
    const fineTune = { steps: 2, batchSize: 1, cropPx: 32, lr: 1e-3, workers: 1, seed: 1, evalEvery: 1 };
    const relief = await compressModel({ method: 'relief', src, out: join(dir, 'relief'), data, fineTune, relief: { alpha: 0.7, rounds: 2, pruningCrops: 2, baseline: true } });
    const c = relief.compression as Record<string, unknown>;
    assert.equal(c.method, 'relief');
    const sparsity = c.sparsity as number;
    assert.ok(sparsity > 0.05 && sparsity < 0.95, `relief sparsity ${sparsity}`);
    assert.equal((c.roundSparsity as number[]).length, 2);
    const base = (await loadModel(join(dir, 'relief-magnitude'))).record.compression as Record<string, unknown>;
    assert.equal(base.method, 'magnitude');
    assert.ok(Math.abs((base.sparsity as number) - sparsity) < 0.01, `baseline at equal sparsity: ${String(base.sparsity)} vs ${sparsity}`);
    const lp = await compressModel({ method: 'lpsphere', src, out: join(dir, 'lp'), data, fineTune, lpsphere: { p: 1.3, h: 0.5, eta: 0.01, layerwise: true } });
    assert.equal((lp.compression as Record<string, unknown>).p, 1.3);
    assert.ok(((lp.compression as Record<string, number>).sparsity) > 0.1, 'h = 0.5 semi-prunes a share of the weights');
    const mag = await compressModel({ method: 'magnitude', src, out: join(dir, 'mag'), data, fineTune, magnitude: { sparsity: 0.6, rounds: 2 } });
    assert.ok(Math.abs(((mag.compression as Record<string, number>).sparsity) - 0.6) < 0.01);
    for (const name of ['relief', 'relief-magnitude', 'lp', 'mag']) {
      const folder = join(dir, name);
      const rec = (await loadModel(folder)).record;
      assert.ok((await stat(join(folder, 'model.onnx'))).size > 0, `${name} has model.onnx`);
      assert.ok((await onnxConvZeros(folder)) > 0, `${name}: zeros survive into the ONNX weights`);
      const row = await measureModelFolder(folder, data.val, 0, { threads: 1 });
      assert.equal(row.sparsity, (rec.compression as Record<string, number>).sparsity, `${name}: the report row carries the sparsity`);
    }
    assert.match(reportMarkdown([await measureModelFolder(src, data.val, 0, { threads: 1 }), await measureModelFolder(join(dir, 'lp'), data.val, 0, { threads: 1 })], ''), /\| lp \| lpsphere \|.* %/);
    await assert.rejects(compressModel({ method: 'magnitude', src, out: join(dir, 'bad'), data, fineTune, magnitude: { sparsity: 1.5, rounds: 1 } }), /--sparsity must be in \(0, 1\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a binarized folder: ensemble scores in its record, K sampled members, and uncertainty.tif from segment', async () => {
  await initTf();
  const dir = await mkdtemp(join(os.tmpdir(), 'emseg-compress-binary-'));
  try {
    const src = await tinySource(dir);
    const data: CompressData = { train: [slice(0, 48), slice(1, 48)], val: [slice(2, 48)], membraneValue: 0 };
    const fineTune = { steps: 2, batchSize: 1, cropPx: 32, lr: 1e-3, workers: 1, seed: 1, evalEvery: 1 };
    const out = join(dir, 'binary');
    const rec = await compressModel({ method: 'binary', src, out, data, fineTune, binary: { distill: 0.5, stochasticTraining: true, ensembleSizes: [1, 2, 4], memberSeed: 1, kernelLrScale: 10 } });
    assert.ok((rec.config as UNetConfig).binary, 'the folder holds a binarized U-Net');
    const ens = (rec.compression as { ensemble: Array<{ k: number; vrand: number; meanVariance: number }> }).ensemble;
    assert.deepEqual(ens.map((e) => e.k), [1, 2, 4]);
    assert.equal(ens[0].meanVariance, 0, 'one member has no variance');
    assert.ok(ens[2].meanVariance > 0, 'sampled members disagree somewhere');
    await assert.rejects(loadInferenceModel(src, { ensemble: 2 }), /needs a binarized model/);
    const im = await loadInferenceModel(out, { threads: 1, ensemble: 3 });
    assert.equal(im.members?.length, 3);
    const x = pseudoRandom(32 * 32, 3, 3);
    const maps = await Promise.all(im.members!.map((m) => m.run(x, 1, 32, 32)));
    assert.ok(maps[0].some((v, i) => v !== maps[1][i]), 'members are different networks');
    await im.session.release();
    for (const m of im.members!) await m.release();

    const stack = join(dir, 'stack.tif');
    await writeTiffStack(stack, [slice(3, 48).raw]);
    const seg = await segmentStack({ stack, out: join(dir, 'seg'), membraneModel: out, refiner: null, ensemble: 2, threads: 1 });
    assert.ok(seg.files.some((f) => f.endsWith('uncertainty.tif')));
    const u = await openStack(join(dir, 'seg', 'uncertainty.tif'));
    const v = (await u.readSlice(0)).data as Float32Array;
    await u.close();
    assert.ok(v.every((p) => p >= 0 && p <= 0.25) && v.some((p) => p > 0), 'a variance of probabilities: in [0, 1/4], not all zero');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
