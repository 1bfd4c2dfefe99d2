// EMSeg's wasm kernels for identity, channel concatenation, splitting and the 2×2 max-pooling gradient must give tfjs'
// cpu backend's numbers exactly, ties and all, and leave the cases they do not handle to the kernels they replaced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { registerWasm } from './backend';
import { rand } from './conv-test-cases';

async function onBoth(f: () => tf.Tensor | tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    await tf.ready();
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const data = await Promise.all(list.map(async (t) => Float32Array.from(await t.data())));
    tf.dispose(list);
    return data;
  };
  await registerWasm();
  return { wasm: await run('wasm'), cpu: await run('cpu') };
}

function assertSame(r: { wasm: Float32Array[]; cpu: Float32Array[] }, what: string): void {
  assert.equal(r.wasm.length, r.cpu.length, what);
  r.wasm.forEach((w, i) => assert.deepEqual(w, r.cpu[i], `${what} [${i}]`));
}

/** Values with many ties: ReLU of a coarse grid, so whole windows are 0 and equal maxima are frequent. */
function tied(n: number, seed: number): Float32Array {
  return rand(n, seed).map((v) => Math.max(0, Math.round(v * 4) / 4));
}

test('channel concatenation on wasm equals the cpu backend, and its gradient (the split) too', async () => {
  const a = rand(2 * 5 * 6 * 3, 1);
  const b = rand(2 * 5 * 6 * 4, 2);
  const c = rand(2 * 5 * 6 * 1, 3);
  assertSame(await onBoth(() => tf.concat([tf.tensor4d(a, [2, 5, 6, 3]), tf.tensor4d(b, [2, 5, 6, 4]), tf.tensor4d(c, [2, 5, 6, 1])], -1)), 'concat axis -1');
  assertSame(await onBoth(() => tf.concat([tf.tensor4d(a, [2, 5, 6, 3]), tf.tensor4d(b, [2, 5, 6, 4])], 3)), 'concat axis 3');
  // Channel counts in fours: the SIMD copy.
  const d = rand(2 * 5 * 6 * 8, 12);
  assertSame(await onBoth(() => tf.concat([tf.tensor4d(b, [2, 5, 6, 4]), tf.tensor4d(d, [2, 5, 6, 8]), tf.tensor4d(b, [2, 5, 6, 4])], -1)), 'concat 4 + 8 + 4');
  // Other axes: the original kernel.
  assertSame(await onBoth(() => tf.concat([tf.tensor4d(a, [2, 5, 6, 3]), tf.tensor4d(a, [2, 5, 6, 3])], 1)), 'concat axis 1');
  // The gradient of a concatenation is a split along the same axis: weigh each output element differently.
  const weights = rand(2 * 5 * 6 * 7, 4);
  assertSame(await onBoth(() => {
    const x = tf.tensor4d(a, [2, 5, 6, 3]);
    const y = tf.tensor4d(b, [2, 5, 6, 4]);
    return tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.concat([p, q], -1).mul(tf.tensor4d(weights, [2, 5, 6, 7])).sum())([x, y]);
  }), 'concat gradient');
});

test('channel split on wasm equals the cpu backend for sizes, an inferred size and an even count', async () => {
  const x = rand(3 * 4 * 4 * 6, 5);
  assertSame(await onBoth(() => tf.split(tf.tensor4d(x, [3, 4, 4, 6]), [1, 3, 2], -1)), 'split sizes');
  assertSame(await onBoth(() => tf.split(tf.tensor4d(x, [3, 4, 4, 6]), [2, -1], 3)), 'split with -1');
  assertSame(await onBoth(() => tf.split(tf.tensor4d(x, [3, 4, 4, 6]), 3, -1)), 'split count');
  const y = rand(3 * 4 * 4 * 16, 13);
  assertSame(await onBoth(() => tf.split(tf.tensor4d(y, [3, 4, 4, 16]), [4, 8, 4], -1)), 'split 4 + 8 + 4 (SIMD copy)');
  assertSame(await onBoth(() => tf.split(tf.tensor4d(x, [3, 4, 4, 6]), 2, 1)), 'split axis 1 (original kernel)');
});

test('2x2 max-pooling gradient on wasm equals the cpu backend, ties going to the first maximum', async () => {
  for (const [shape, values] of [
    [[2, 6, 8, 3], rand(2 * 6 * 8 * 3, 6)],
    [[1, 4, 4, 5], tied(4 * 4 * 5, 7)],
    [[2, 8, 6, 16], tied(2 * 8 * 6 * 16, 8)],
  ] as Array<[[number, number, number, number], Float32Array]>) {
    const dy = rand((shape[0] * shape[1] * shape[2] * shape[3]) / 4, 9);
    const r = await onBoth(() => {
      const x = tf.tensor4d(values, shape);
      return tf.grad((p: tf.Tensor) => tf.maxPool(p as tf.Tensor4D, 2, 2, 'valid').mul(tf.tensor4d(dy, [shape[0], shape[1] / 2, shape[2] / 2, shape[3]])).sum())(x);
    });
    assert.ok(r.cpu[0].some((v) => v !== 0), 'reference gradient is not all zero');
    assertSame(r, `maxPoolGrad ${shape.join('×')}`);
  }
  // Odd sizes, with and without padding: the original kernel. Compared on positive values only: tfjs-wasm's own kernel
  // sends no gradient out of a window whose values are all negative (the cpu backend does, as ours does above), and it
  // disagrees with the cpu backend on overlapping windows.
  const x = rand(1 * 7 * 7 * 2, 10).map((v) => v + 1);
  for (const pad of ['valid', 'same'] as const) {
    assertSame(await onBoth(() => tf.grad((p: tf.Tensor) => tf.maxPool(p as tf.Tensor4D, 2, 2, pad).sum())(tf.tensor4d(x, [1, 7, 7, 2]))), `maxPoolGrad 7×7 ${pad}`);
  }
});

test('identity on wasm shares the data instead of copying it, and the copy outlives the original', async () => {
  await registerWasm();
  await tf.setBackend('wasm');
  const values = rand(4 * 8 * 8 * 3, 11);
  const a = tf.tensor4d(values, [4, 8, 8, 3]);
  const buffers = (tf.memory() as { numDataBuffers: number }).numDataBuffers;
  const b = tf.clone(a);
  assert.equal((tf.memory() as { numDataBuffers: number }).numDataBuffers, buffers, 'no new data buffer for the clone');
  a.dispose();
  assert.deepEqual(await b.data(), values);
  // Gradients still flow through the saved (shared) tensors: d/dx Σ relu(x)² = 2 relu(x).
  const g = tf.grad((x: tf.Tensor) => tf.relu(x).square().sum())(b);
  assert.deepEqual(await g.data(), values.map((v) => 2 * Math.max(0, v)));
  tf.dispose([b, g]);
  // Strings keep the original kernel.
  const s = tf.tensor(['a', 'b']);
  assert.deepEqual(await tf.clone(s).data(), ['a', 'b']);
  s.dispose();
});
