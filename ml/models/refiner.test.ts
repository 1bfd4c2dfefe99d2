// The refiner is a blind-spot network: its output at a pixel must not depend on that pixel's map value (nor, with the
// blind raw path, its raw value), while it does depend on the pixel's neighbours in all four directions — the dense
// form of Wu's centre-removed patches. With the open raw path the raw centre is seen, the map centre still not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { buildRefiner, refinerMacsPerPixel, type RefinerConfig } from './refiner';
import { receptiveFieldRadius } from '../infer/receptive-field';
import { pseudoRandom, seedWeights } from './test-helpers';

/**
 * A refiner with positive weights on a positive 15 × 17 × 2 input — every ReLU active, so a change can only be hidden
 * by the architecture itself — and its output after `bump` adds 5 to one input value.
 */
function probe(cfg: RefinerConfig, weightSeed: number, inputSeed: number) {
  const model = buildRefiner(cfg);
  seedWeights(model, weightSeed, { positive: true });
  const [h, w, c] = [15, 17, 2];
  const base = pseudoRandom(h * w * c, inputSeed, 2).map((v) => Math.abs(v) + 0.1);
  const predict = (x: Float32Array) => tf.tidy(() => model.predict(tf.tensor4d(x, [1, h, w, c])) as tf.Tensor).dataSync();
  const at = (y: number, x: number) => y * w + x;
  const bump = (ch: number, y: number, x: number) => {
    const v = base.slice();
    v[at(y, x) * c + ch] += 5;
    return predict(v);
  };
  return { model, y0: predict(base), at, bump, channels: c };
}

test('refiner output at a pixel ignores that pixel and sees its neighbours', async () => {
  await initTf('cpu');
  const { model, y0, at, bump, channels } = probe({ kind: 'refiner', inChannels: 2, branchLayers: 3, channels: 4, headLayers: 1 }, 5, 3);
  const [cy, cx] = [7, 8];
  for (let ch = 0; ch < channels; ch++) {
    const y1 = bump(ch, cy, cx);
    assert.equal(y1[at(cy, cx)], y0[at(cy, cx)], `channel ${ch}: the centre output must not change`);
    for (const [dy, dx] of [[-1, 0], [1, 0], [0, -1], [0, 1]]) {
      assert.notEqual(y1[at(cy + dy, cx + dx)], y0[at(cy + dy, cx + dx)], `channel ${ch}: neighbour (${dy},${dx}) must see the change`);
    }
  }
  model.dispose();
});

test('with the open raw path the refiner sees the raw centre pixel and still not the map centre', async () => {
  await initTf('cpu');
  const cfg: RefinerConfig = { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 4, headLayers: 1, rawPath: 'open', rawLayers: 5 };
  const { model, y0, at, bump } = probe(cfg, 7, 4);
  const map = bump(0, 7, 8);
  assert.equal(map[at(7, 8)], y0[at(7, 8)], 'the map centre must stay hidden');
  assert.notEqual(map[at(6, 8)], y0[at(6, 8)], 'the map neighbours are seen');
  const raw = bump(1, 7, 8);
  assert.notEqual(raw[at(7, 8)], y0[at(7, 8)], 'the raw centre is seen');
  // The raw path reaches rawLayers pixels (5 here), beyond the branches' sideways reach: the radius must cover it.
  const far = bump(1, 7, 8 + 5);
  assert.notEqual(far[at(7, 8)], y0[at(7, 8)], 'the raw path reaches 5 pixels');
  const beyond = bump(1, 7, 8 + 6);
  assert.equal(beyond[at(7, 8)], y0[at(7, 8)], 'and not 6 (the raw pixel is not reached through the blind branches)');
  assert.equal(receptiveFieldRadius(cfg), 5);
  // One input channel through the branches, one through the raw path; the head reads 5 × channels.
  const blind = refinerMacsPerPixel({ ...cfg, rawPath: 'blind' });
  assert.equal(refinerMacsPerPixel(cfg) - blind, -4 * 9 * 4 + (9 * 4 + 4 * 9 * 16) + 4 * 8);
  model.dispose();
});
