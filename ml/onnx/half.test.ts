import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHalf, toHalf } from './half';

test('float16 conversion: exact values, rounding, range', () => {
  assert.equal(toHalf(1), 0x3c00);
  assert.equal(toHalf(-2), 0xc000);
  assert.equal(toHalf(0.5), 0x3800);
  assert.equal(toHalf(65504), 0x7bff);
  assert.equal(toHalf(1e6), 0x7c00, 'overflow is infinity');
  assert.equal(toHalf(2 ** -24), 0x0001, 'smallest subnormal');
  assert.equal(toHalf(1 + 2 ** -11), 0x3c00, 'halfway rounds to even (down)');
  assert.equal(toHalf(1 + 3 * 2 ** -11), 0x3c02, 'halfway rounds to even (up)');
  for (const v of [0, 1, -3.25, 0.1, 1234.5, 6e-5, -7e-8]) {
    const back = fromHalf(toHalf(v));
    assert.ok(Math.abs(back - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25, `${v} → ${back}`);
  }
});
