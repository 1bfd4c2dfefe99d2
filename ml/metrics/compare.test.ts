import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pairedBootstrap } from './compare';

test('identical scores differ by exactly nothing', () => {
  const s = [0.97, 0.99, 0.95, 0.98];
  const r = pairedBootstrap(s, s);
  assert.deepEqual([r.mean, r.lo, r.hi, r.better, r.worse, r.slices], [0, 0, 0, 0, 0, 4]);
});

test('a constant shift is the mean and both ends of the interval', () => {
  const base = [0.9, 0.95, 0.97];
  const r = pairedBootstrap(base, base.map((v) => v + 0.01));
  assert.ok(Math.abs(r.mean - 0.01) < 1e-12 && Math.abs(r.lo - 0.01) < 1e-12 && Math.abs(r.hi - 0.01) < 1e-12);
  assert.equal(r.better, 3);
});

test('mixed differences give an interval around the mean, inside the extremes, that contains 0 when signs balance', () => {
  const base = new Array(10).fill(0.97);
  const d = [0.004, -0.001, 0.0, 0.006, -0.003, 0.013, 0.011, 0.004, -0.0001, -0.007];
  const r = pairedBootstrap(base, base.map((v, i) => v + d[i]), { seed: 7 });
  const mean = d.reduce((a, b) => a + b, 0) / d.length;
  assert.ok(Math.abs(r.mean - mean) < 1e-12);
  assert.ok(r.lo < r.mean && r.mean < r.hi, `${r.lo} < ${r.mean} < ${r.hi}`);
  assert.ok(r.lo >= Math.min(...d) - 1e-12 && r.hi <= Math.max(...d) + 1e-12);
  assert.ok(r.lo < 0, 'a gain on 5 of 10 slices is not significant');
  assert.deepEqual([r.better, r.worse], [5, 4]);
  // Seeded: the same call gives the same interval; a narrower level gives a narrower one.
  assert.deepEqual(pairedBootstrap(base, base.map((v, i) => v + d[i]), { seed: 7 }), r);
  const r80 = pairedBootstrap(base, base.map((v, i) => v + d[i]), { seed: 7, level: 0.8 });
  assert.ok(r80.lo > r.lo && r80.hi < r.hi);
});

test('a gain on every slice has an interval above 0', () => {
  const base = [0.95, 0.96, 0.97, 0.98, 0.94, 0.93];
  const r = pairedBootstrap(base, base.map((v, i) => v + 0.002 + 0.001 * i));
  assert.ok(r.lo > 0);
});

test('mismatched or empty inputs are refused', () => {
  assert.throws(() => pairedBootstrap([1, 2], [1]), /2 baseline slices against 1/);
  assert.throws(() => pairedBootstrap([], []), /no slices/);
  assert.throws(() => pairedBootstrap([1], [1], { level: 1 }), /level/);
});
