// The validating door and the contract's validators: unknown calls, malformed arguments and refused callers never
// reach a handler, and every failure comes back as { code, message } with the right code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CALL_NAMES, levelCount, tileRect, validators, type CallName } from '../api/contract';
import { ApiError, createDoor, type Handlers } from '../api/door';

/** Handlers that record what they were called with and return it. */
function recording(): { handlers: Handlers; calls: { name: string; args: unknown }[] } {
  const calls: { name: string; args: unknown }[] = [];
  const handlers = Object.fromEntries(
    CALL_NAMES.map((name) => [
      name,
      async (args: unknown) => {
        calls.push({ name, args });
        return { echoed: args };
      },
    ]),
  ) as unknown as Handlers;
  return { handlers, calls };
}

const ctx = { transport: 'browser' as const };

test('a valid call reaches its handler with the validated arguments', async () => {
  const { handlers, calls } = recording();
  const door = createDoor(handlers);
  const r = await door.call('openStack', { path: '/data/stack.tif' }, ctx);
  assert.deepEqual(r, { ok: true, value: { echoed: { path: '/data/stack.tif' } } });
  assert.deepEqual(calls, [{ name: 'openStack', args: { path: '/data/stack.tif' } }]);
});

test('calls without arguments accept {} and a missing body', async () => {
  const { handlers, calls } = recording();
  const door = createDoor(handlers);
  assert.equal((await door.call('listJobs', {}, ctx)).ok, true);
  assert.equal((await door.call('listJobs', undefined, ctx)).ok, true);
  assert.equal((await door.call('listJobs', { x: 1 }, ctx)).ok, false);
  assert.equal(calls.length, 2);
});

test('unknown call names are not-found, including prototype names', async () => {
  const { handlers, calls } = recording();
  const door = createDoor(handlers);
  for (const name of ['nope', '__proto__', 'constructor', 'toString', '', 42, null]) {
    const r = await door.call(name, {}, ctx);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, 'not-found', String(name));
  }
  assert.equal(calls.length, 0);
});

const BAD_ARGS: [CallName, unknown, string][] = [
  ['openStack', {}, 'missing path'],
  ['openStack', { path: 7 }, 'path not a string'],
  ['openStack', { path: '' }, 'empty path'],
  ['openStack', { path: '/a\0b' }, 'NUL in path'],
  ['openStack', { path: 'x'.repeat(5000) }, 'path too long'],
  ['openStack', { path: '/a', extra: true }, 'unknown field'],
  ['openStack', [], 'array instead of object'],
  ['openStack', 'path', 'string instead of object'],
  ['openStack', Object.assign(Object.create({ polluted: true }) as object, { path: '/a' }), 'non-plain object'],
  ['readSlice', { stackId: 's1', z: -1, level: 0, tx: 0, ty: 0 }, 'negative z'],
  ['readSlice', { stackId: 's1', z: 1.5, level: 0, tx: 0, ty: 0 }, 'fractional z'],
  ['readSlice', { stackId: 's1', z: 0, level: 99, tx: 0, ty: 0 }, 'level too high'],
  ['readSlice', { stackId: '../s1', z: 0, level: 0, tx: 0, ty: 0 }, 'bad id'],
  ['readSlice', { stackId: 's1', z: '0', level: 0, tx: 0, ty: 0 }, 'z as string'],
  ['readResult', { stackId: 's1', layer: 'labels', z: 0, level: 0, tx: 0, ty: 0 }, 'labels need a jobId'],
  ['readResult', { jobId: 'j1', layer: 'truth', z: 0, level: 0, tx: 0, ty: 0 }, 'truth needs a stackId'],
  ['readResult', { jobId: 'j1', stackId: 's1', layer: 'round-1', z: 0, level: 0, tx: 0, ty: 0 }, 'both ids'],
  ['readResult', { jobId: 'j1', layer: 'round-x', z: 0, level: 0, tx: 0, ty: 0 }, 'bad layer'],
  ['startJob', { stackId: 's1', kind: 'train', params: {} }, 'unknown job kind'],
  ['startJob', { stackId: 's1', kind: 'predict', params: { rounds: 1e9 } }, 'too many rounds'],
  ['startJob', { stackId: 's1', kind: 'predict', params: { segment: { minSizePx: Infinity } } }, 'non-finite parameter'],
  ['startJob', { stackId: 's1', kind: 'predict', params: { segment: { 'a b': 1 } } }, 'bad parameter name'],
  ['startJob', { stackId: 's1', kind: 'predict', params: { slices: [0, -2] } }, 'negative slice'],
  ['pickPath', { mode: 'anything' }, 'bad mode'],
];

for (const [name, args, why] of BAD_ARGS) {
  test(`bad arguments are refused before the handler: ${name}, ${why}`, async () => {
    const { handlers, calls } = recording();
    const r = await createDoor(handlers).call(name, args, ctx);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.code, 'bad-request');
      assert.match(r.error.message, new RegExp(`^${name}`));
    }
    assert.equal(calls.length, 0);
  });
}

test('every call has a validator and validators drop nothing they accept', () => {
  assert.deepEqual(Object.keys(validators).sort(), [...CALL_NAMES].sort());
  const a = validators.startJob({ stackId: 's1', kind: 'segment', params: { slices: [0, 3], rounds: 2, tta: true, segment: { method: 'watershed', minSizePx: 8 } } }, 'startJob');
  assert.deepEqual(a.params, { slices: [0, 3], rounds: 2, tta: true, segment: { method: 'watershed', minSizePx: 8 } });
});

test('a refused caller reaches nothing', async () => {
  const { handlers, calls } = recording();
  const door = createDoor(handlers, { admit: () => false });
  const r = await door.call('listJobs', {}, { transport: 'electron', caller: {} });
  assert.deepEqual(r, { ok: false, error: { code: 'forbidden', message: 'caller not admitted' } });
  assert.equal(calls.length, 0);
});

test('handler failures keep their code; user-facing errors are "user"; bugs are "internal" and logged', async () => {
  const logged: string[] = [];
  const base = recording().handlers;
  const door = createDoor(
    {
      ...base,
      openStack: async () => {
        throw new ApiError('forbidden', '/etc: outside the folders you opened');
      },
      sampleStack: async () => {
        throw Object.assign(new Error('/x.tif: truncated\nat page 3'), { userFacing: true });
      },
      listRecent: async () => {
        throw new TypeError('boom');
      },
    },
    { logInternal: (name) => logged.push(name) },
  );
  assert.deepEqual(await door.call('openStack', { path: '/etc' }, ctx), { ok: false, error: { code: 'forbidden', message: '/etc: outside the folders you opened' } });
  assert.deepEqual(await door.call('sampleStack', {}, ctx), { ok: false, error: { code: 'user', message: '/x.tif: truncated at page 3' } });
  const r = await door.call('listRecent', {}, ctx);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.code, 'internal');
  assert.deepEqual(logged, ['listRecent']);
});

test('tile geometry: levels halve until one tile; edge tiles are partial; outside tiles are null', () => {
  const g = { width: 8192, height: 8192, tileSizePx: 512, levels: levelCount(8192, 8192, 512) };
  assert.equal(g.levels, 5); // 8192, 4096, 2048, 1024, 512
  assert.equal(levelCount(512, 512, 512), 1);
  assert.equal(levelCount(513, 10, 512), 2);
  const h = { width: 600, height: 300, tileSizePx: 512, levels: levelCount(600, 300, 512) };
  assert.deepEqual(tileRect(h, 0, 1, 0), { x: 512, y: 0, width: 88, height: 300 });
  assert.deepEqual(tileRect(h, 1, 0, 0), { x: 0, y: 0, width: 300, height: 150 });
  assert.equal(tileRect(h, 0, 2, 0), null);
  assert.equal(tileRect(h, 2, 0, 0), null);
});
