// A hand-assembled WebAssembly SIMD module that works on tfjs-wasm's own heap (it imports the backend's memory), so
// that EMSeg's wasm kernels read and write tensors where they are, four floats per instruction:
//   sums(u, v, m, s1, s2, pixels, C):        s1[c] = Σ_p u[p, c],  s2[c] = Σ_p u[p, c] · (v[p, c] − m[c]);
//   affine(u, v, out, k, a, o, pixels, C):   out[p, c] = u[p, c] · k[c] + v[p, c] · a[c] + o[c];
//   copy(src, dst, pixels, c, ss, ds):       c floats per pixel from src to dst, pixel strides ss and ds in bytes;
//   adam(w, m, v, g, wo, mo, vo, quads, k):  one Adam update of 4 · quads weights (k: its coefficients, ADAM_COEFFICIENTS).
// Addresses are byte offsets in the heap; channel counts must be multiples of 4. batch norm (wasm-batchnorm.ts) uses
// the first two, channel concatenation and splitting (wasm-kernels.ts) the third, the fused Adam (wasm-adam.ts) the last.
import { I32, OP, SIMD, V128, forLoop, get, i32, section, set, str, uleb, wasmApi, type WasmMemory } from '../wasm/assembler';
import type { TensorInfo } from '@tensorflow/tfjs';
import type { WasmBackendLike } from './wasm-conv-gradients';

const v128 = (addr: number[]) => [...addr, ...SIMD.load];
const add = (a: number[], b: number[]) => [...a, ...b, OP.add];

/** sums(u, v, m, s1, s2, pixels, C): one channel group of four at a time, its accumulators in registers. */
function sumsBody(): number[] {
  const [U, V, M, S1, S2, PIXELS, C] = [0, 1, 2, 3, 4, 5, 6];
  const [G, P, PU, PV, STRIDE, CB] = [7, 8, 9, 10, 11, 12];
  const [ACC1, ACC2, MM, A] = [13, 14, 15, 16];
  const pixel = [
    ...v128(get(PU)), ...set(A),
    ...get(ACC1), ...get(A), ...SIMD.f32Add, ...set(ACC1),
    ...get(ACC2), ...get(A), ...v128(get(PV)), ...get(MM), ...SIMD.f32Sub, ...SIMD.f32Mul, ...SIMD.f32Add, ...set(ACC2),
    ...add(get(PU), get(STRIDE)), ...set(PU),
    ...add(get(PV), get(STRIDE)), ...set(PV),
  ];
  const group = [
    ...get(G), ...i32(4), OP.shl, ...set(CB),
    ...SIMD.zero, ...set(ACC1), ...SIMD.zero, ...set(ACC2),
    ...v128(add(get(M), get(CB))), ...set(MM),
    ...add(get(U), get(CB)), ...set(PU),
    ...add(get(V), get(CB)), ...set(PV),
    ...forLoop(P, get(PIXELS), pixel),
    ...add(get(S1), get(CB)), ...get(ACC1), ...SIMD.store,
    ...add(get(S2), get(CB)), ...get(ACC2), ...SIMD.store,
  ];
  const body = [...get(C), ...i32(2), OP.shl, ...set(STRIDE), ...forLoop(G, [...get(C), ...i32(2), OP.shrU], group), OP.end];
  return [2, ...uleb(6), I32, ...uleb(4), V128, ...body];
}

/** affine(u, v, out, k, a, o, pixels, C): pixel after pixel, channel groups of four. */
function affineBody(): number[] {
  const [U, V, OUT, K, A, O, PIXELS, C] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [P, G, ROW, CB, OFF] = [8, 9, 10, 11, 12];
  const group = [
    ...get(G), ...i32(4), OP.shl, OP.tee, CB, ...get(ROW), OP.add, ...set(OFF),
    ...add(get(OUT), get(OFF)),
    ...v128(add(get(U), get(OFF))), ...v128(add(get(K), get(CB))), ...SIMD.f32Mul,
    ...v128(add(get(V), get(OFF))), ...v128(add(get(A), get(CB))), ...SIMD.f32Mul, ...SIMD.f32Add,
    ...v128(add(get(O), get(CB))), ...SIMD.f32Add,
    ...SIMD.store,
  ];
  const pixel = [...get(P), ...get(C), OP.mul, ...i32(2), OP.shl, ...set(ROW), ...forLoop(G, [...get(C), ...i32(2), OP.shrU], group)];
  return [1, ...uleb(5), I32, ...forLoop(P, get(PIXELS), pixel), OP.end];
}

/** copy(src, dst, pixels, c, srcStride, dstStride): c floats (a multiple of 4) per pixel, strides in bytes. */
function copyBody(): number[] {
  const [SRC, DST, PIXELS, C, SS, DS] = [0, 1, 2, 3, 4, 5];
  const [P, G, PS, PD] = [6, 7, 8, 9];
  const group = [...add(get(PD), [...get(G), ...i32(4), OP.shl]), ...v128(add(get(PS), [...get(G), ...i32(4), OP.shl])), ...SIMD.store];
  const pixel = [
    ...forLoop(G, [...get(C), ...i32(2), OP.shrU], group),
    ...add(get(PS), get(SS)), ...set(PS),
    ...add(get(PD), get(DS)), ...set(PD),
  ];
  return [1, ...uleb(4), I32, ...get(SRC), ...set(PS), ...get(DST), ...set(PD), ...forLoop(P, get(PIXELS), pixel), OP.end];
}

/** The coefficient vectors adam() reads from k, in order, each splatted over 4 floats. */
export const ADAM_COEFFICIENTS = ['beta1', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'biasCorrection1', 'biasCorrection2', 'epsilon', 'minusLr'] as const;

/**
 * adam(w, m, v, g, wo, mo, vo, quads, k), four weights at a time, in tfjs' AdamOptimizer's order of operations:
 *   mo = β1·m + (1 − β1)·g;  vo = β2·v + (1 − β2)·g²;  wo = (mo / c1) / (√(vo / c2) + ε) · (−lr) + w.
 */
function adamBody(): number[] {
  const [W, M, V, G, WO, MO, VO, QUADS, K] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [I, OFF] = [9, 10];
  const [B1, OB1, B2, OB2, C1, C2, EPS, NLR, GV, MV, VV] = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  const coefficients = [B1, OB1, B2, OB2, C1, C2, EPS, NLR].flatMap((local, j) => [...v128(add(get(K), i32(16 * j))), ...set(local)]);
  const quad = [
    ...get(I), ...i32(4), OP.shl, ...set(OFF),
    ...v128(add(get(G), get(OFF))), ...set(GV),
    ...get(B1), ...v128(add(get(M), get(OFF))), ...SIMD.f32Mul, ...get(OB1), ...get(GV), ...SIMD.f32Mul, ...SIMD.f32Add, ...set(MV),
    ...add(get(MO), get(OFF)), ...get(MV), ...SIMD.store,
    ...get(B2), ...v128(add(get(V), get(OFF))), ...SIMD.f32Mul, ...get(OB2), ...get(GV), ...get(GV), ...SIMD.f32Mul, ...SIMD.f32Mul, ...SIMD.f32Add, ...set(VV),
    ...add(get(VO), get(OFF)), ...get(VV), ...SIMD.store,
    ...add(get(WO), get(OFF)),
    ...get(MV), ...get(C1), ...SIMD.f32Div,
    ...get(VV), ...get(C2), ...SIMD.f32Div, ...SIMD.f32Sqrt, ...get(EPS), ...SIMD.f32Add,
    ...SIMD.f32Div, ...get(NLR), ...SIMD.f32Mul, ...v128(add(get(W), get(OFF))), ...SIMD.f32Add,
    ...SIMD.store,
  ];
  return [2, ...uleb(2), I32, ...uleb(11), V128, ...coefficients, ...forLoop(I, get(QUADS), quad), OP.end];
}

export function simdWasmBytes(): Uint8Array {
  const f0 = sumsBody();
  const f1 = affineBody();
  const f2 = copyBody();
  const f3 = adamBody();
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [4, 0x60, 7, ...Array(7).fill(I32), 0, 0x60, 8, ...Array(8).fill(I32), 0, 0x60, 6, ...Array(6).fill(I32), 0, 0x60, 9, ...Array(9).fill(I32), 0]),
    ...section(2, [1, ...str('env'), ...str('mem'), 0x02, 0x00, 1]),
    ...section(3, [4, 0, 1, 2, 3]),
    ...section(7, [4, ...str('sums'), 0x00, 0, ...str('affine'), 0x00, 1, ...str('copy'), 0x00, 2, ...str('adam'), 0x00, 3]),
    ...section(10, [4, ...uleb(f0.length), ...f0, ...uleb(f1.length), ...f1, ...uleb(f2.length), ...f2, ...uleb(f3.length), ...f3]),
  ]);
}

/** The parts of tfjs-wasm's backend used here beyond WasmBackendLike: its Emscripten module. */
interface WasmModuleLike {
  asm: { memory: WasmMemory };
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

export interface SimdInstance {
  memory: WasmMemory;
  sums: (...args: number[]) => void;
  affine: (...args: number[]) => void;
  copy: (...args: number[]) => void;
  adam: (...args: number[]) => void;
  /** Scratch on the heap: m, s1, s2, k, a, o, `capacity` floats each. */
  scratch: number;
  capacity: number;
}

let compiled: object | null = null;
let instance: SimdInstance | null = null;

/** The module bound to the backend's heap, with scratch for at least `channels` floats per array. */
export function simdKernels(backend: WasmBackendLike, channels = 0): SimdInstance {
  const wasm = (backend as unknown as { wasm: WasmModuleLike }).wasm;
  // One instance per backend heap (a worker thread has its own).
  if (instance?.memory !== wasm.asm.memory) {
    compiled ??= new wasmApi.Module(simdWasmBytes());
    const memory = wasm.asm.memory;
    const inst = new wasmApi.Instance(compiled, { env: { mem: memory } });
    instance = { memory, sums: inst.exports.sums as SimdInstance['sums'], affine: inst.exports.affine as SimdInstance['affine'], copy: inst.exports.copy as SimdInstance['copy'], adam: inst.exports.adam as SimdInstance['adam'], scratch: 0, capacity: 0 };
  }
  if (instance.capacity < channels) {
    if (instance.scratch) wasm._free(instance.scratch);
    instance.capacity = Math.max(channels, 256);
    instance.scratch = wasm._malloc(6 * 4 * instance.capacity);
  }
  return instance;
}

/** Heap views of the scratch arrays (taken after every allocation). */
export function scratchViews(inst: SimdInstance) {
  const at = (i: number) => inst.scratch + i * 4 * inst.capacity;
  const view = (i: number) => new Float32Array(inst.memory.buffer, at(i), inst.capacity);
  return { at, m: view(0), s1: view(1), s2: view(2), k: view(3), a: view(4), o: view(5) };
}

/** Heap byte offset of a tensor's data. */
export const heapAddress = (backend: WasmBackendLike, t: TensorInfo) => backend.typedArrayFromHeap(t).byteOffset;
