// `emseg segment` in model mode: a membrane model and a refiner (tiny, random weights — the plumbing is what is under
// test) run on a small stack; every round's map, the final map and the labels are written, consistently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../index';
import { openStack, writeTiffStack } from '../../io';
import { tinyModel } from '../../engine/fixtures';
import { initTf } from '../../../ml/tfjs/backend';
import { pseudoRandom } from '../../../ml/models/test-helpers';

test('segment runs the membrane model and the refinement rounds and writes every map', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-segment-model-'));
  try {
    const models = join(dir, 'models');
    await tinyModel(join(models, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 1 }, 'membrane');
    await tinyModel(join(models, 'refiner'), { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 2);
    const [w, h] = [37, 29];
    const stack = join(dir, 'stack.tif');
    await writeTiffStack(stack, [0, 1, 2].map((z) => ({ width: w, height: h, data: Uint8Array.from(pseudoRandom(w * h, z + 1, 255).map((v) => Math.abs(v))) })));
    const out = join(dir, 'out');
    assert.equal(await main(['segment', stack, '--model', models, '--out', out, '--slices', '1-2', '--quiet']), 0);
    const read = async (name: string) => {
      const s = await openStack(join(out, name));
      const slices = [await s.readSlice(0), await s.readSlice(1)];
      const info = s.info;
      await s.close();
      return { info, slices };
    };
    const r0 = await read('membrane-round-0.tif');
    const r1 = await read('membrane-round-1.tif');
    const r2 = await read('membrane-round-2.tif');
    const final = await read('membrane.tif');
    const labels = await read('labels.tif');
    assert.equal(r0.info.depth, 2);
    assert.equal(r0.info.pixelType, 'float32');
    assert.equal(labels.info.pixelType, 'uint32');
    assert.deepEqual([r0.info.width, r0.info.height], [w, h]);
    assert.deepEqual(Array.from(final.slices[1].data), Array.from(r2.slices[1].data), 'membrane.tif is the last round');
    assert.notDeepEqual(Array.from(r1.slices[0].data), Array.from(r0.slices[0].data), 'round 1 refines round 0');
    for (const v of r0.slices[0].data) assert.ok(v >= 0 && v <= 1, 'maps are probabilities');

    // --refine-rounds 0: no refinement, the final map is round 0.
    const out0 = join(dir, 'out0');
    assert.equal(await main(['segment', stack, '--model', models, '--out', out0, '--slices', '1', '--refine-rounds', '0', '--quiet']), 0);
    const s0 = await openStack(join(out0, 'membrane.tif'));
    assert.deepEqual(Array.from((await s0.readSlice(0)).data), Array.from(r0.slices[0].data));
    await s0.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
