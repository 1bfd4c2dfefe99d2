// The resampler behind pixel-size matching: exact where it must be (same size, constants, linear ramps, pixel
// centres), antialiased when shrinking, and close to the identity for an enlarge-then-shrink round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inferenceScale, resample, scaledSize } from './resample';

const ramp = (h: number, w: number, a: number, b: number) => Float32Array.from({ length: h * w }, (_, i) => a * (i % w) + b * Math.floor(i / w));

test('resample: same size is the input; constants stay constant at any size', () => {
  const x = ramp(5, 7, 1, 2);
  assert.equal(resample(x, 1, 5, 7, 5, 7), x);
  const c = new Float32Array(2 * 9 * 13).fill(0.3);
  for (const [oh, ow] of [[4, 5], [18, 26], [9, 40], [1, 1]]) {
    const r = resample(c, 2, 9, 13, oh, ow);
    assert.equal(r.length, 2 * oh * ow);
    for (const v of r) assert.ok(Math.abs(v - 0.3) < 1e-6);
  }
});

test('resample: pixel centres line up, so linear ramps are reproduced away from the edges', () => {
  const [h, w] = [12, 16];
  const x = ramp(h, w, 1, 10);
  for (const f of [2, 0.5, 1.5]) {
    const { h: oh, w: ow } = scaledSize(h, w, f);
    const r = resample(x, 1, h, w, oh, ow);
    const margin = Math.ceil(2 * Math.max(f, 1 / f)) + 1;
    for (let y = margin; y < oh - margin; y++)
      for (let xx = margin; xx < ow - margin; xx++) {
        // Output pixel (xx, y) sits at input ((xx + ½)·w/ow − ½, (y + ½)·h/oh − ½).
        const want = ((xx + 0.5) * w) / ow - 0.5 + 10 * (((y + 0.5) * h) / oh - 0.5);
        assert.ok(Math.abs(r[y * ow + xx] - want) < 1e-4, `factor ${f} at ${xx},${y}: ${r[y * ow + xx]} ≠ ${want}`);
      }
  }
});

test('resample: shrinking averages every input pixel (a one-pixel line is kept, the mean is kept)', () => {
  const [h, w] = [16, 16];
  for (const col of [6, 7]) {
    const x = new Float32Array(h * w);
    for (let y = 0; y < h; y++) x[y * w + col] = 1;
    const r = resample(x, 1, h, w, 8, 8);
    let mean = 0;
    for (const v of r) mean += v / r.length;
    assert.ok(Math.abs(mean - 1 / 16) < 1e-6, `column ${col}: mean ${mean}`);
    // Plain bilinear shrinking samples between input pixel pairs; the triangle filter gives the line 3/8 at its nearest
    // output column whichever column it is on.
    const peak = Math.max(...Array.from(r.subarray(4 * 8, 5 * 8)));
    assert.ok(Math.abs(peak - 0.375) < 1e-6, `column ${col}: peak ${peak}`);
  }
});

test('resample: enlarging 2× then shrinking back stays close to a smooth image', () => {
  const [h, w] = [32, 40];
  const x = Float32Array.from({ length: h * w }, (_, i) => Math.sin((i % w) / 5) * Math.cos(Math.floor(i / w) / 7));
  const up = resample(x, 1, h, w, 2 * h, 2 * w);
  const back = resample(up, 1, 2 * h, 2 * w, h, w);
  let err = 0;
  for (let y = 2; y < h - 2; y++) for (let xx = 2; xx < w - 2; xx++) err = Math.max(err, Math.abs(back[y * w + xx] - x[y * w + xx]));
  assert.ok(err < 0.02, `max error ${err}`);
});

test('inference scale: stack pixel size over the model\'s, 1 when unknown or within 10 %', () => {
  assert.equal(inferenceScale(8, 4), 2);
  assert.equal(inferenceScale(2, 4), 0.5);
  assert.equal(inferenceScale(4.3, 4), 1);
  assert.equal(inferenceScale(undefined, 4), 1);
  assert.equal(inferenceScale(8, undefined), 1);
  assert.equal(inferenceScale(0, 4), 1);
  assert.throws(() => resample(new Float32Array(5), 1, 2, 3, 2, 3), /5 values for 1×2×3/);
});
