import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel, type ModelRecord } from './model-store';

const record: ModelRecord = {
  format: 'emseg-model', version: 1, role: 'membrane', config: { kind: 'unet', baseChannels: 1, depth: 1, inChannels: 1 },
  weights: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [4] }],
};
const weights = [Float32Array.from([1, -2, 0.1, 3.5, 1e-3, 7]), Float32Array.from([0, 0.25, -0.3, 100])];

test('model folders round-trip weights exactly (float32) and within rounding (float16, half the bytes)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-store-'));
  try {
    await saveModel(join(dir, 'f32'), record, weights);
    const a = await loadModel(join(dir, 'f32'));
    assert.deepEqual(a.weights.map((w) => Array.from(w)), weights.map((w) => Array.from(w)));
    await saveModel(join(dir, 'f16'), { ...record, weightsDtype: 'float16' }, weights);
    const b = await loadModel(join(dir, 'f16'));
    assert.equal((await stat(join(dir, 'f16', 'weights.bin'))).size, 20);
    b.weights.flatMap((w) => Array.from(w)).forEach((v, i) => {
      const ref = weights.flatMap((w) => Array.from(w))[i];
      assert.ok(Math.abs(v - ref) <= Math.abs(ref) * 2 ** -11, `${ref} → ${v}`);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a folder that is not a model gives one clear line naming model.json', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-store-'));
  try {
    await writeFile(join(dir, 'model.json'), '{"format":"something-else"}');
    await assert.rejects(loadModel(dir), (e: Error) => e.message.includes(join(dir, 'model.json')) && !e.message.includes('\n'));
    await assert.rejects(loadModel(join(dir, 'missing')), /not an EMSeg model folder/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
