// Pyramid levels and tile cutting: means for intensities (odd edges included), picks for labels, exact tile bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutTile, downsample2x, PyramidCache } from './pyramid';

test('2×2 mean halves intensities, rounding half up, and averages what exists at odd edges', () => {
  const img = { width: 3, height: 3, data: Uint8Array.from([0, 1, 10, 2, 3, 20, 100, 100, 255]) };
  const half = downsample2x(img, 'mean');
  assert.equal(half.width, 2);
  assert.equal(half.height, 2);
  assert.deepEqual([...half.data], [2, 15, 100, 255]); // (0+1+2+3)/4 = 1.5 -> 2; (10+10+20+20)/4 = 15
  const f = downsample2x({ width: 2, height: 1, data: Float32Array.from([0.25, 0.5]) }, 'mean');
  assert.equal(f.data[0], 0.375);
});

test('labels are picked, never averaged into ids that do not exist', () => {
  const labels = { width: 4, height: 2, data: Uint32Array.from([7, 9, 3, 3, 9, 9, 3, 0]) };
  assert.deepEqual([...downsample2x(labels, 'pick').data], [7, 3]);
});

test('tiles are exact copies of their rectangle; the cache builds each level once', async () => {
  const data = new Uint16Array(600 * 300).map((_, i) => i % 600);
  const g = { width: 600, height: 300, tileSizePx: 512, levels: 2 };
  const tile = new Uint16Array(cutTile({ width: 600, height: 300, data }, g, 0, 1, 0) as ArrayBuffer);
  assert.equal(tile.length, 88 * 300);
  assert.equal(tile[0], 512);
  assert.equal(tile[88], 512);
  let loads = 0;
  const cache = new PyramidCache(1 << 30);
  const load = async () => {
    loads++;
    return { width: 600, height: 300, data };
  };
  const [a, b] = await Promise.all([cache.level('k', 1, load, 'mean'), cache.level('k', 1, load, 'mean')]);
  assert.equal(a, b);
  await cache.level('k', 0, load, 'mean');
  assert.equal(loads, 1);
});
