import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SliceChannel } from './channel';

test('a channel feeds two consumers in lock step and ends when closed', async () => {
  const a = new SliceChannel<number>();
  const b = new SliceChannel<number>();
  const seen: string[] = [];
  const consume = async (name: string, ch: SliceChannel<number>) => {
    const got: number[] = [];
    for await (const v of ch) {
      seen.push(`${name}${v}`);
      got.push(v);
      await new Promise((r) => setTimeout(r, name === 'a' ? 2 : 0));
    }
    return got;
  };
  const ca = consume('a', a);
  const cb = consume('b', b);
  for (let i = 0; i < 4; i++) {
    await Promise.all([a.push(i), b.push(i)]);
    seen.push(`p${i}`);
  }
  a.close();
  b.close();
  assert.deepEqual(await ca, [0, 1, 2, 3]);
  assert.deepEqual(await cb, [0, 1, 2, 3]);
  // The producer never runs more than one value ahead of a consumer.
  assert.ok(seen.indexOf('a1') < seen.indexOf('p2'));
});
