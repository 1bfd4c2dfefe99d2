// Compressed models are ordinary model folders: an int8 folder (ONNX only) and a structurally pruned folder load for
// inference like any model, carry their method in record.compression, and get a row in the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import os from 'node:os';
import { initTf } from '../../ml/tfjs/backend';
import { buildModel, type UNetConfig } from '../../ml/models';
import { getWeights } from '../../ml/train/trainer';
import { perturbBatchNorm, pseudoRandom } from '../../ml/models/test-helpers';
import { saveModel, weightEntries, loadModel } from './model-store';
import { loadInferenceModel } from './models';
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
    const config: UNetConfig = { kind: 'unet', baseChannels: 4, depth: 2, inChannels: 1 };
    const m = buildModel(config);
    perturbBatchNorm(m);
    const src = join(dir, 'src');
    await saveModel(src, { format: 'emseg-model', version: 1, role: 'membrane', config, weights: weightEntries(m) }, getWeights(m));
    m.dispose();
    const data: CompressData = { train: [slice(0, 48), slice(1, 48)], val: [slice(2, 48)], membraneValue: 0 };
    const fineTune = { steps: 0, batchSize: 1, cropPx: 32, lr: 0, workers: 1, seed: 1, evalEvery: 1 };

    const int8 = await compressModel({ method: 'int8', src, out: join(dir, 'int8'), data, fineTune, int8: { threads: 1 } });
    assert.equal(int8.compression?.method, 'int8');
    assert.equal((await stat(join(dir, 'int8', 'weights.bin'))).size, 0, 'an int8 folder has no float weights');
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
