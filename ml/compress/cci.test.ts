// CCI sparsity: the group top-N mask exactly, the balanced sparse kernel against the dense one (bit-identical on the
// same masked weights), and shadow-weight training through Replica.afterApply.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../tfjs/backend';
import { buildModel } from '../models';
import { pseudoRandom } from '../models/test-helpers';
import { Replica, makeBatch } from '../train/trainer';
import { DEFAULT_AUGMENT, type TrainingSlice } from '../train/augment';
import { CciTraining, cciLayers, cciMask, convBalanced, convDense, kernelSparsity, packBalanced, toTapMajor } from './cci';

test('the CCI mask keeps the N largest of every group of G input channels', () => {
  // Shape [1, 1, ci = 5, co = 2], values at (c, o) = kernel[c * 2 + o]. G = 4, N = 2: channels 0-3 form a group, channel 4
  // a partial group of one that keeps ceil(2 · 1 / 4) = 1.
  const k = Float32Array.of(
    0.1, -5, //  c0
    -0.4, 1, //  c1
    0.3, 1, //   c2 (ties with c1 for o = 1: the lower channel wins)
    0.2, 0.5, // c3
    0.01, 0, //  c4
  );
  const m = cciMask(k, [1, 1, 5, 2], { group: 4, keep: 2 });
  assert.deepEqual([...m], [0, 1, 1, 1, 1, 0, 0, 0, 1, 1]);
});

test('every full group keeps exactly N at every (o, ky, kx)', () => {
  const [kh, kw, ci, co] = [3, 3, 16, 6];
  const k = pseudoRandom(kh * kw * ci * co, 4);
  const m = cciMask(k, [kh, kw, ci, co], { group: 8, keep: 2 });
  for (let t = 0; t < kh * kw; t++)
    for (let o = 0; o < co; o++)
      for (let g = 0; g < ci; g += 8) {
        let n = 0;
        let minKept = Infinity;
        let maxDropped = 0;
        for (let c = g; c < g + 8; c++) {
          const i = (t * ci + c) * co + o;
          n += m[i];
          if (m[i]) minKept = Math.min(minKept, Math.abs(k[i]));
          else maxDropped = Math.max(maxDropped, Math.abs(k[i]));
        }
        assert.equal(n, 2);
        assert.ok(minKept >= maxDropped);
      }
});

test('the balanced sparse kernel computes exactly what the dense kernel computes on the masked weights', () => {
  const [co, ci, kh, kw, h, w] = [5, 12, 3, 3, 7, 9];
  const opts = { group: 4, keep: 1 };
  // ONNX layout [co][ci][kh][kw] → tap-major, masked per (o, ky, kx, group).
  const tap = toTapMajor(pseudoRandom(co * ci * kh * kw, 8), co, ci, kh, kw);
  for (let t = 0; t < co * kh * kw; t++)
    for (let g = 0; g < ci; g += 4) {
      let best = g;
      for (let c = g; c < g + 4; c++) if (Math.abs(tap[t * ci + c]) > Math.abs(tap[t * ci + best])) best = c;
      for (let c = g; c < g + 4; c++) if (c !== best) tap[t * ci + c] = 0;
    }
  const x = pseudoRandom(ci * h * w, 2);
  const dense = convDense(x, ci, h, w, tap, co, kh, kw);
  const packed = packBalanced(tap, co, ci, kh, kw, opts);
  assert.equal(packed.perTap, 3);
  const sparse = convBalanced(x, h, w, packed);
  assert.deepEqual(sparse, dense);
  // And the dense kernel is a convolution: one output pixel by the definition.
  const [o, y, xx] = [2, 0, 4];
  let ref = 0;
  for (let c = 0; c < ci; c++)
    for (let ky = 0; ky < kh; ky++)
      for (let kx = 0; kx < kw; kx++) {
        const sy = y + ky - 1;
        const sx = xx + kx - 1;
        if (sy >= 0 && sy < h && sx >= 0 && sx < w) ref += tap[((o * kh + ky) * kw + kx) * ci + c] * x[(c * h + sy) * w + sx];
      }
  assert.ok(Math.abs(dense[(o * h + y) * w + xx] - ref) < 1e-5);
  assert.throws(() => packBalanced(toTapMajor(pseudoRandom(co * ci * kh * kw, 8), co, ci, kh, kw), co, ci, kh, kw, opts), /quota/);
});

test('the training mask packs into the balanced kernel, which equals the dense convolution with the masked weights', () => {
  // cciMask on a tfjs kernel [kh, kw, ci, co] (as training masks), G = 8, N = 2, ci = 20: two full groups and a
  // trailing group of 4 channels that keeps ceil(2 · 4 / 8) = 1. A 5×3 kernel checks the padding of each axis.
  const [kh, kw, ci, co, h, w] = [5, 3, 20, 3, 9, 11];
  const opts = { group: 8, keep: 2 };
  const tfjs = pseudoRandom(kh * kw * ci * co, 21);
  const mask = cciMask(tfjs, [kh, kw, ci, co], opts);
  const tap = new Float32Array(tfjs.length);
  for (let t = 0; t < kh * kw; t++)
    for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) if (mask[(t * ci + c) * co + o]) tap[(o * kh * kw + t) * ci + c] = tfjs[(t * ci + c) * co + o];
  const packed = packBalanced(tap, co, ci, kh, kw, opts);
  assert.equal(packed.perTap, 2 + 2 + 1);
  assert.equal(packed.values.length, co * kh * kw * 5);
  const x = pseudoRandom(ci * h * w, 22);
  const sparse = convBalanced(x, h, w, packed);
  assert.deepEqual(sparse, convDense(x, ci, h, w, tap, co, kh, kw));
  // Every output pixel against the definition of a zero-padded "same" convolution with the masked weights.
  let worst = 0;
  for (let o = 0; o < co; o++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let ref = 0;
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++)
            for (let c = 0; c < ci; c++) {
              const sy = y + ky - 2;
              const sx = xx + kx - 1;
              if (sy >= 0 && sy < h && sx >= 0 && sx < w && mask[((ky * kw + kx) * ci + c) * co + o]) ref += tfjs[((ky * kw + kx) * ci + c) * co + o] * x[(c * h + sy) * w + sx];
            }
        worst = Math.max(worst, Math.abs(sparse[(o * h + y) * w + xx] - ref));
      }
  assert.ok(worst < 1e-4, `largest difference ${worst}`);
});

test('CCI training: the model holds mask(shadow), and masked-out shadow weights keep learning', async () => {
  await initTf('cpu');
  const model = buildModel({ kind: 'unet', baseChannels: 4, depth: 1, inChannels: 1 });
  const opts = { group: 4, keep: 1 };
  const cci = new CciTraining(model, opts);
  const initial = cci.dense();
  cci.apply();
  assert.ok(Math.abs(kernelSparsity(model, opts) - 0.75) < 1e-9, `sparsity ${kernelSparsity(model, opts)}`);
  const replica = new Replica(model, 1e-2);
  replica.afterApply = cci.afterApply;
  const size = 32;
  const slice: TrainingSlice = { width: size, height: size, channels: 1, raw: pseudoRandom(size * size, 5), target: Uint8Array.from({ length: size * size }, (_, i) => (i % 5 === 0 ? 1 : 0)) };
  const spec = { batchSize: 1, cropPx: 16, augment: DEFAULT_AUGMENT, weighting: 'plain' as const, membraneFraction: 0.2 };
  for (let s = 0; s < 3; s++) {
    const b = makeBatch([slice], spec, s);
    replica.applyGradients(replica.gradients(b).grads);
    tf.dispose([b.x, b.y, b.w]);
  }
  const vars = cciLayers(model, opts);
  const shadow = cci.dense();
  let regrowing = 0;
  vars.forEach((v, k) => {
    const held = v.read().dataSync();
    const m = cciMask(shadow[k], v.shape as number[], opts);
    for (let i = 0; i < held.length; i++) {
      assert.equal(held[i], m[i] ? shadow[k][i] : 0);
      if (!m[i] && shadow[k][i] !== initial[k][i]) regrowing++;
    }
  });
  assert.ok(regrowing > 0, 'pruned weights are updated in the shadow copy');
  model.dispose();
});
