// The convolutions our models use, and how their gradients are compared between backends: shared by the tests of
// EMSeg's wasm kernels (wasm-conv-gradients.ts) and of the ONNX Runtime ones (ort-conv-kernels.ts).
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';

export type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

export function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

export async function grads(backend: string, xs: number[], ws: number[], stride: number, pad: Pad): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  await tf.ready();
  const x = tf.tensor4d(rand(size(xs), 1), xs as [number, number, number, number]);
  const w = tf.tensor4d(rand(size(ws), 2), ws as [number, number, number, number]);
  const target = tf.tidy(() => tf.conv2d(x, w, stride, pad as 'same').mul(0.5).add(0.1));
  // A loss whose gradient is not constant, so dy varies per pixel.
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad as 'same').sub(target).square().sum())([x, w]);
  const out = [(await g[0].data()) as Float32Array, (await g[1].data()) as Float32Array];
  tf.dispose([x, w, target, ...g]);
  return out;
}

export function assertClose(got: Float32Array, ref: Float32Array, what: string) {
  assert.equal(got.length, ref.length, what);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  assert.ok(maxRef > 0.01, `${what}: reference is not trivially zero`);
  assert.ok(maxErr <= 1e-4 * Math.max(1, maxRef), `${what}: max error ${maxErr} (max |ref| ${maxRef})`);
}

export const cases: Array<{ name: string; x: number[]; w: number[]; stride: number; pad: Pad }> = [
  { name: '3x3 same', x: [2, 9, 7, 3], w: [3, 3, 3, 4], stride: 1, pad: 'same' },
  { name: '3x3 valid stride 2', x: [1, 11, 10, 2], w: [3, 3, 2, 5], stride: 2, pad: 'valid' },
  { name: '3x3 one-sided padding', x: [2, 8, 8, 3], w: [3, 3, 3, 2], stride: 1, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
  { name: '2x2 stride 2', x: [2, 8, 6, 4], w: [2, 2, 4, 3], stride: 2, pad: 'valid' },
  { name: '1x1', x: [3, 5, 5, 6], w: [1, 1, 6, 2], stride: 1, pad: 'same' },
];

