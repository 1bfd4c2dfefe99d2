// A minimal WebAssembly assembler: the opcodes of the binary format that EMSeg's hand-written kernels use
// (ml/compress/xnor-wasm.ts, ml/tfjs/wasm-batchnorm.ts), LEB128 numbers, a counted loop, sections. Modules are emitted
// as bytes here — no toolchain, no download — and compiled synchronously.

export const OP = {
  block: 0x02, loop: 0x03, if: 0x04, end: 0x0b, br: 0x0c, brIf: 0x0d, void: 0x40,
  get: 0x20, set: 0x21, tee: 0x22, load: 0x28, store: 0x36, const: 0x41,
  geU: 0x4f, ltU: 0x49, eq: 0x46, select: 0x1b, popcnt: 0x69, add: 0x6a, sub: 0x6b, mul: 0x6c, and: 0x71, xor: 0x73, shl: 0x74, shrU: 0x76,
} as const;

/** SIMD (0xfd-prefixed) instructions; load and store with alignment 2^0 and offset 0. */
export const SIMD = {
  load: [0xfd, 0x00, 0, 0], store: [0xfd, 0x0b, 0, 0], splat: [0xfd, 0x11], not: [0xfd, 0x4d], and: [0xfd, 0x4e], xor: [0xfd, 0x51],
  popcnt: [0xfd, 0x62], addPairs8: [0xfd, 0x7d], addPairs16: [0xfd, 0x7f], add32: [0xfd, 0xae, 0x01],
  f32Sqrt: [0xfd, 0xe3, 0x01], f32Add: [0xfd, 0xe4, 0x01], f32Sub: [0xfd, 0xe5, 0x01], f32Mul: [0xfd, 0xe6, 0x01], f32Div: [0xfd, 0xe7, 0x01],
  zero: [0xfd, 0x0c, ...Array(16).fill(0)],
} as const;

/** Value types. */
export const I32 = 0x7f;
export const V128 = 0x7b;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

export const get = (l: number) => [OP.get, l];
export const set = (l: number) => [OP.set, l];
export const i32 = (v: number) => [OP.const, ...sleb(v)];
export const load = (addr: number[]) => [...addr, OP.load, 2, 0];

/** for (i = 0; i < n; i++) body — n is code leaving an i32 on the stack, evaluated every iteration. */
export function forLoop(i: number, n: number[], body: number[]): number[] {
  return [
    ...i32(0), ...set(i),
    OP.block, OP.void, OP.loop, OP.void,
    ...get(i), ...n, OP.geU, OP.brIf, 1,
    ...body,
    ...get(i), ...i32(1), OP.add, ...set(i),
    OP.br, 0, OP.end, OP.end,
  ];
}

export function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

export const str = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];

// The runtime's WebAssembly API, typed here: the Node-side tsconfig has no DOM library, which is where its types live.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (d: { initial: number }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}
export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
