// The bitwise (XNOR–popcount) 3×3 convolution of ml/compress/binary.ts as a hand-assembled WebAssembly module: the
// same packed layouts and the same result (2 · matches − taps · ci, only taps inside the image counted), but the
// popcount is one native instruction (i32.popcnt) instead of ten JavaScript operations. The module's bytes are
// emitted here by a few lines of assembler — no toolchain, no download — and compiled synchronously.
//
// Signature: conv(x, k, out, ci, words, h, w, co, tail) with byte addresses in the module's imported memory;
// x = [h][w][words] packed activations, k = [co][3][3][words] packed weights, out = [co][h][w] int32. conv4 does
// the same four filters at a time with 128-bit SIMD (i8x16.popcnt), which Node has shipped since v16.

import { OP, SIMD, forLoop, get, i32, load, section, set, str, uleb, wasmApi } from '../wasm/assembler';

/** Code of `conv`: one output value at a time, words of one filter against words of one pixel. */
function scalarBody(): number[] {
  // Parameters 0–8, then locals.
  const [X, K, OUT, CI, WORDS, H, W, CO, TAIL] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [O, Y, XX, KY, KX, SY, SX, MATCH, TAPS, A, B, J, WM1] = [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  // popcnt(~(x[a + 4j] ^ k[b + 4j])), ~v as v ^ −1.
  const word = (jBytes: number[], mask: number[] | null) => [
    ...load([...get(A), ...jBytes, OP.add]), ...load([...get(B), ...jBytes, OP.add]), OP.xor, ...i32(-1), OP.xor,
    ...(mask ?? []), ...(mask ? [OP.and] : []), OP.popcnt, ...get(MATCH), OP.add, ...set(MATCH),
  ];
  const tap = [
    // sx = xx + kx − 1; unsigned sx < w rejects both edges at once.
    ...get(XX), ...get(KX), OP.add, ...i32(1), OP.sub, OP.tee, SX, ...get(W), OP.ltU,
    OP.if, OP.void,
    // a = x + ((sy · w + sx) · words) · 4; b = k + (((o · 3 + ky) · 3 + kx) · words) · 4
    ...get(X), ...get(SY), ...get(W), OP.mul, ...get(SX), OP.add, ...get(WORDS), OP.mul, ...i32(2), OP.shl, OP.add, ...set(A),
    ...get(K), ...get(O), ...i32(3), OP.mul, ...get(KY), OP.add, ...i32(3), OP.mul, ...get(KX), OP.add, ...get(WORDS), OP.mul, ...i32(2), OP.shl, OP.add, ...set(B),
    ...forLoop(J, get(WM1), word([...get(J), ...i32(2), OP.shl], null)),
    ...word([...get(WM1), ...i32(2), OP.shl], get(TAIL)),
    ...get(TAPS), ...i32(1), OP.add, ...set(TAPS),
    OP.end,
  ];
  const row = [
    ...get(Y), ...get(KY), OP.add, ...i32(1), OP.sub, OP.tee, SY, ...get(H), OP.ltU,
    OP.if, OP.void, ...forLoop(KX, i32(3), tap), OP.end,
  ];
  const pixel = [
    ...i32(0), ...set(MATCH), ...i32(0), ...set(TAPS),
    ...forLoop(KY, i32(3), row),
    // out[(o · h + y) · w + xx] = 2 · matches − taps · ci
    ...get(OUT), ...get(O), ...get(H), OP.mul, ...get(Y), OP.add, ...get(W), OP.mul, ...get(XX), OP.add, ...i32(2), OP.shl, OP.add,
    ...get(MATCH), ...i32(1), OP.shl, ...get(TAPS), ...get(CI), OP.mul, OP.sub,
    OP.store, 2, 0,
  ];
  const body = [
    ...get(WORDS), ...i32(1), OP.sub, ...set(WM1),
    ...forLoop(O, get(CO), forLoop(Y, get(H), forLoop(XX, get(W), pixel))),
    OP.end,
  ];
  return [1, ...uleb(13), 0x7f, ...body]; // 13 locals of type i32
}

/**
 * Code of `conv4`: four filters per SIMD operation. Weights are laid out [tap][word][co] so that the same word of
 * four consecutive filters is one 128-bit load; the pixel's word is splatted, XNORed, and i8x16.popcnt plus two
 * pairwise widening adds give four 32-bit popcounts. Per-pixel counts accumulate in `acc` (co int32 in memory).
 * Signature: conv4(x, k, out, ci, words, h, w, co, tail, acc), co a multiple of 4.
 */
function simdBody(): number[] {
  const [X, K, OUT, CI, WORDS, H, W, CO, TAIL, ACC] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [Y, XX, KY, KX, SY, SX, TAPS, A, KB, J, OB, P, O, AV, MV] = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24];
  const co4 = [...get(CO), ...i32(2), 0x76]; // co >> 2 (i32.shr_u)
  const block4 = [
    // p = kb + (j · co + 4 · ob) · 4
    ...get(KB), ...get(J), ...get(CO), OP.mul, ...get(OB), ...i32(2), OP.shl, OP.add, ...i32(2), OP.shl, OP.add, ...set(P),
    ...get(ACC), ...get(OB), ...i32(4), OP.shl, OP.add, // store address
    ...get(ACC), ...get(OB), ...i32(4), OP.shl, OP.add, ...SIMD.load,
    ...get(AV), ...get(P), ...SIMD.load, ...SIMD.xor, ...SIMD.not, ...get(MV), ...SIMD.and,
    ...SIMD.popcnt, ...SIMD.addPairs8, ...SIMD.addPairs16, ...SIMD.add32,
    ...SIMD.store,
  ];
  const word = [
    ...get(A), ...get(J), ...i32(2), OP.shl, OP.add, OP.load, 2, 0, ...SIMD.splat, ...set(AV),
    // The last word carries only ci mod 32 channels: mask = j = words − 1 ? tail : −1.
    ...get(TAIL), ...i32(-1), ...get(J), ...get(WORDS), ...i32(1), OP.sub, OP.eq, OP.select, ...SIMD.splat, ...set(MV),
    ...forLoop(OB, co4, block4),
  ];
  const tap = [
    ...get(XX), ...get(KX), OP.add, ...i32(1), OP.sub, OP.tee, SX, ...get(W), OP.ltU,
    OP.if, OP.void,
    ...get(X), ...get(SY), ...get(W), OP.mul, ...get(SX), OP.add, ...get(WORDS), OP.mul, ...i32(2), OP.shl, OP.add, ...set(A),
    ...get(K), ...get(KY), ...i32(3), OP.mul, ...get(KX), OP.add, ...get(WORDS), OP.mul, ...get(CO), OP.mul, ...i32(2), OP.shl, OP.add, ...set(KB),
    ...forLoop(J, get(WORDS), word),
    ...get(TAPS), ...i32(1), OP.add, ...set(TAPS),
    OP.end,
  ];
  const row = [
    ...get(Y), ...get(KY), OP.add, ...i32(1), OP.sub, OP.tee, SY, ...get(H), OP.ltU,
    OP.if, OP.void, ...forLoop(KX, i32(3), tap), OP.end,
  ];
  const pixel = [
    ...forLoop(OB, co4, [...get(ACC), ...get(OB), ...i32(4), OP.shl, OP.add, ...SIMD.zero, ...SIMD.store]),
    ...i32(0), ...set(TAPS),
    ...forLoop(KY, i32(3), row),
    ...forLoop(O, get(CO), [
      ...get(OUT), ...get(O), ...get(H), OP.mul, ...get(Y), OP.add, ...get(W), OP.mul, ...get(XX), OP.add, ...i32(2), OP.shl, OP.add,
      ...get(ACC), ...get(O), ...i32(2), OP.shl, OP.add, OP.load, 2, 0, ...i32(1), OP.shl, ...get(TAPS), ...get(CI), OP.mul, OP.sub,
      OP.store, 2, 0,
    ]),
  ];
  const body = [...forLoop(Y, get(H), forLoop(XX, get(W), pixel)), OP.end];
  return [2, ...uleb(13), 0x7f, ...uleb(2), 0x7b, ...body]; // 13 i32 locals, 2 v128 locals
}

/** The module's bytes: `conv` (scalar) and `conv4` (SIMD, four filters at a time). */
export function xnorWasmBytes(): Uint8Array {
  const i32t = 0x7f;
  const f0 = scalarBody();
  const f1 = simdBody();
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [2, 0x60, 9, ...Array(9).fill(i32t), 0, 0x60, 10, ...Array(10).fill(i32t), 0]),
    ...section(2, [1, ...str('env'), ...str('mem'), 0x02, 0x00, 1]),
    ...section(3, [2, 0, 1]),
    ...section(7, [2, ...str('conv'), 0x00, 0, ...str('conv4'), 0x00, 1]),
    ...section(10, [2, ...uleb(f0.length), ...f0, ...uleb(f1.length), ...f1]),
  ]);
}

let compiled: object | null = null;

/** A reusable kernel instance with its own memory, grown as needed. */
export class XnorWasm {
  private readonly memory = new wasmApi.Memory({ initial: 1 });
  private readonly fn: (...args: number[]) => void;
  private readonly fn4: (...args: number[]) => void;

  constructor() {
    compiled ??= new wasmApi.Module(xnorWasmBytes());
    const inst = new wasmApi.Instance(compiled, { env: { mem: this.memory } });
    this.fn = inst.exports.conv as (...args: number[]) => void;
    this.fn4 = inst.exports.conv4 as (...args: number[]) => void;
  }

  private reserve(bytes: number): Uint32Array {
    const pages = Math.ceil(bytes / 65536);
    const have = this.memory.buffer.byteLength / 65536;
    if (pages > have) this.memory.grow(pages - have);
    return new Uint32Array(this.memory.buffer);
  }

  /**
   * conv with four filters per SIMD operation (co a multiple of 4, else the scalar kernel). Same arguments and
   * result; the weights are re-laid out [tap][word][co] on the way in.
   */
  conv4(x: Uint32Array, ci: number, h: number, w: number, k: Uint32Array, co: number): Int32Array {
    if (co % 4 !== 0) return this.conv(x, ci, h, w, k, co);
    const words = Math.ceil(ci / 32);
    if (x.length !== h * w * words || k.length !== co * 9 * words) throw new RangeError(`packed sizes ${x.length}/${k.length} do not match ${ci} channels, ${h}×${w}, ${co} filters of 3×3`);
    // Byte offsets: x, then k (16-byte aligned for the v128 loads), out, acc.
    const kAt = Math.ceil(x.length / 4) * 4;
    const outAt = kAt + k.length;
    const accAt = Math.ceil((outAt + co * h * w) / 4) * 4;
    const mem = this.reserve(4 * (accAt + co));
    mem.set(x, 0);
    for (let o = 0; o < co; o++) for (let t = 0; t < 9; t++) for (let j = 0; j < words; j++) mem[kAt + (t * words + j) * co + o] = k[(o * 9 + t) * words + j];
    const tail = ci & 31 ? 2 ** (ci & 31) - 1 : 0xffffffff;
    this.fn4(0, 4 * kAt, 4 * outAt, ci, words, h, w, co, tail | 0, 4 * accAt);
    return new Int32Array(this.memory.buffer, 4 * outAt, co * h * w).slice();
  }

  /** Same arguments and result as xnorConv (binary.ts), for 3×3 kernels. */
  conv(x: Uint32Array, ci: number, h: number, w: number, k: Uint32Array, co: number): Int32Array {
    const words = Math.ceil(ci / 32);
    if (x.length !== h * w * words || k.length !== co * 9 * words) throw new RangeError(`packed sizes ${x.length}/${k.length} do not match ${ci} channels, ${h}×${w}, ${co} filters of 3×3`);
    const mem = this.reserve(4 * (x.length + k.length + co * h * w));
    mem.set(x, 0);
    mem.set(k, x.length);
    const outAt = x.length + k.length;
    const tail = ci & 31 ? 2 ** (ci & 31) - 1 : 0xffffffff;
    this.fn(0, 4 * x.length, 4 * outAt, ci, words, h, w, co, tail | 0);
    return new Int32Array(this.memory.buffer, 4 * outAt, co * h * w).slice();
  }
}
