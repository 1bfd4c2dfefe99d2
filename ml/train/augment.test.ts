// Augmentation of multi-channel crops: a z-context input's slices may be read in reverse order (z-flip) and all of its
// channels get the same intensity jitter; without those options the channel order and the other channels are kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleCrop, type AugmentOptions, type TrainingSlice } from './augment';
import { Rng } from './rng';

// Three channels with constant values 1, 2, 3: a crop's channel order and jitter show in any one pixel.
const size = 8;
const slice: TrainingSlice = {
  width: size, height: size, channels: 3, target: new Uint8Array(size * size),
  raw: Float32Array.from({ length: size * size * 3 }, (_, i) => 1 + (i % 3)),
};
const base: AugmentOptions = { flips: true, intensity: false, elasticPx: 0, elasticGrid: 2, intensityChannel: 0 };
const firstPixel = (opt: AugmentOptions, seed: number) => Array.from(sampleCrop(slice, size, new Rng(seed), opt).raw.subarray(0, 3));

test('z-flip reverses the channel order in about half the crops, and only with the option', () => {
  const orders = new Set<string>();
  let reversed = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const p = firstPixel({ ...base, zFlip: true }, seed);
    orders.add(p.join(','));
    if (p[0] === 3) reversed++;
    assert.deepEqual(firstPixel(base, seed), [1, 2, 3], 'without z-flip the order stays');
  }
  assert.deepEqual([...orders].sort(), ['1,2,3', '3,2,1']);
  assert.ok(reversed >= 10 && reversed <= 30, `${reversed} of 40 reversed`);
});

test("intensity jitter on 'all' channels applies one gain and offset to every channel; on one channel, to it alone", () => {
  const quiet = (v: number[]) => v.map((x) => Math.round(x * 1e4) / 1e4);
  for (let seed = 1; seed <= 5; seed++) {
    // Each channel also gets its own noise, so the check is that every channel moved, not by how much.
    const all = firstPixel({ ...base, flips: false, intensity: true, intensityChannel: 'all' }, seed);
    assert.ok(all.every((v, c) => Math.abs(v - (c + 1)) > 1e-6), `every channel is jittered: ${quiet(all)}`);
    const one = firstPixel({ ...base, flips: false, intensity: true, intensityChannel: 0 }, seed);
    assert.deepEqual(one.slice(1), [2, 3], 'the other channels keep their values');
    assert.notEqual(one[0], 1);
  }
});
