// Codec tests against hand-computed vectors (so the decoders are not only checked against our own test encoders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { inflate, lzwDecode, packbitsDecode, swapBytes, undoFloatPredictor, undoHorizontalPredictor } from './tiff-codecs';
import { floatPredictorEncode, lzwEncode, packbitsEncode, randomSamples } from './tiff-fixtures';
import { toRational } from './tiff-format';

test('PackBits decodes the example of Apple TN1023', () => {
  const packed = Uint8Array.from([0xfe, 0xaa, 0x02, 0x80, 0x00, 0x2a, 0xfd, 0xaa, 0x03, 0x80, 0x00, 0x2a, 0x22, 0xf7, 0xaa]);
  const expected = [0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0xaa, 0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0x22, ...new Array(10).fill(0xaa)];
  assert.deepEqual([...packbitsDecode(packed, 24)], expected);
  // -128 is a no-op; output stops at the expected length.
  assert.deepEqual([...packbitsDecode(Uint8Array.from([0x80, 0x01, 5, 6]), 2)], [5, 6]);
  assert.equal(packbitsDecode(packed, 100).length, 24, 'short output is returned short for the caller to reject');
});

test('PackBits round trip on runs and literals', () => {
  const src = new Uint8Array(1000);
  for (let i = 0; i < src.length; i++) src[i] = i < 300 ? 7 : i < 600 ? i & 0xff : (i >> 5) & 1;
  const enc = packbitsEncode(src, 250);
  assert.ok(enc.length < src.length);
  assert.deepEqual(packbitsDecode(enc, src.length), src);
});

test('LZW decodes a hand-encoded stream, including the KwKwK case', () => {
  // Codes (9 bits): Clear, 7, 258 (= "7 7", not yet in the decoder's table: KwKwK), 8, EOI.
  const stream = Uint8Array.from([0x80, 0x01, 0xe0, 0x40, 0x88, 0x08]);
  assert.deepEqual([...lzwDecode(stream, 4)], [7, 7, 7, 8]);
  assert.deepEqual([...lzwEncode(Uint8Array.from([7, 7, 7, 8]))], [...stream]);
});

test('LZW round trip across code widths 9 to 12 and table resets', () => {
  for (const n of [0, 1, 2, 511, 5000, 120_000]) {
    const src = randomSamples(Uint8Array, n, n + 1).map((v) => v & 7); // small alphabet: long strings, many codes
    assert.deepEqual(lzwDecode(lzwEncode(src), n), src, `n=${n}`);
  }
  const noise = randomSamples(Uint8Array, 200_000, 9); // incompressible: the table fills and clears many times
  assert.deepEqual(lzwDecode(lzwEncode(noise), noise.length), noise);
});

test('LZW rejects invalid codes and old-style streams', () => {
  // Clear, 7, then code 300 while the table has 258 entries.
  const bad = Uint8Array.from([0x80, 0x01, 0xe5, 0x80, 0, 0]);
  assert.throws(() => lzwDecode(bad, 10), /invalid LZW code 300/);
  assert.throws(() => lzwDecode(Uint8Array.from([0x00, 0x01, 0x00]), 10), /old-style/);
});

test('horizontal predictor wraps around like the encoder', () => {
  const u8 = Uint8Array.from([250, 10, 0, 1, /* row 2 */ 5, 255, 255, 1]);
  undoHorizontalPredictor(u8, 4, 2, 1);
  assert.deepEqual([...u8], [250, 4, 4, 5, 5, 4, 3, 4]);
  // Two samples per pixel: each channel is summed on its own.
  const u16 = Uint16Array.from([1000, 60000, 5, 10000, 65535, 1]);
  undoHorizontalPredictor(u16, 3, 1, 2);
  assert.deepEqual([...u16], [1000, 60000, 1005, 4464, 1004, 4465]);
});

test('floating-point predictor: hand-computed row and round trip', () => {
  // Two samples of 1.0 (0x3f800000): planes 3f 3f | 80 80 | 00 00 | 00 00, then byte differences.
  const row = Uint8Array.from([0x3f, 0x00, 0x41, 0x00, 0x80, 0x00, 0x00, 0x00]);
  const out = undoFloatPredictor(row, 2, 1, 1, 4);
  assert.deepEqual([...new Float32Array(out.buffer)], [1, 1]);
  const f = randomSamples(Float32Array, 7 * 3 * 2, 4);
  const enc = floatPredictorEncode(new Uint8Array(f.buffer), 7, 3, 2, 4);
  assert.deepEqual(new Float32Array(undoFloatPredictor(enc, 7, 3, 2, 4).buffer), f);
});

test('byte swapping and inflate', async () => {
  const b = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
  swapBytes(b, 2);
  assert.deepEqual([...b], [2, 1, 4, 3, 6, 5, 8, 7]);
  swapBytes(b, 4);
  assert.deepEqual([...b], [3, 4, 1, 2, 7, 8, 5, 6]);
  const src = randomSamples(Uint8Array, 5000, 2).map((v) => v & 3);
  assert.deepEqual(await inflate(deflateSync(src)), src);
  await assert.rejects(inflate(Uint8Array.from([1, 2, 3])));
});

test('rationals keep resolutions to about 9 significant digits', () => {
  assert.deepEqual(toRational(250), [250, 1]);
  assert.deepEqual(toRational(0.5), [1, 2]);
  for (const x of [1000 / 3.7, 1000 / 4.123456, 0.0123, 123456.789]) {
    const [n, d] = toRational(x);
    assert.ok(n <= 0xffffffff && d <= 0xffffffff);
    assert.ok(Math.abs(n / d - x) / x < 1e-9, `${x} ~ ${n}/${d}`);
  }
});
