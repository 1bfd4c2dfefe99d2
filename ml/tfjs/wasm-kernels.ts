// Four of tfjs-wasm's kernels that a U-Net training step calls on every activation, replaced by ones that give the
// same numbers, bit for bit (wasm-kernels.test.ts checks them against the cpu backend), for less work:
// - Identity shares the tensor's data (one more reference) instead of copying it, as tfjs' cpu backend does. tfjs-core
//   clones every tensor a kernel saves for its gradient, so a training step copied each activation once or twice;
//   tensors are immutable and wasm's own Reshape already shares data the same way;
// - Concat and SplitV along the channel axis (the U-Net's skip connections and their gradients) are strided copies on
//   the wasm heap, with the SIMD module of wasm-simd.ts when the channel counts are multiples of 4: tfjs-wasm
//   concatenates with a typed-array `set` per pixel (131,072 calls for a pair of 256² crops) and splits through a
//   generic strided Slice;
// - MaxPoolGrad for 2×2 windows with stride 2 sends each output's gradient to the first maximum of its window in
//   row-major order, as tfjs' cpu backend does (ties are common: ReLU zeros), in one pass. tfjs-wasm's own kernel walks
//   every window of every output for every input pixel, and sends nothing out of a window whose values are all
//   negative — the binarized U-Net pools ±1.
// Profiled on a 2-core Intel Xeon (main/dev/prof-train.ts), a U-Net training step on 2 × 256² crops spent 72 ms in
// Identity, 170 ms in MaxPoolGrad, 95 ms in SplitV and 74 ms in Concat before, about 17 % of the step. Other cases
// (other axes, dtypes and pooling geometries; strings) go to the kernel that was replaced.
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { KernelSwap } from './kernel-swap';
import type { WasmBackendLike } from './wasm-conv-gradients';
import { heapAddress, simdKernels } from './wasm-simd';

function fallback(name: string, args: Parameters<KernelFunc>[0]): TensorInfo | TensorInfo[] {
  return swap.original(name)(args);
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Whether `axis` (possibly negative, possibly an array of one) names the last axis. */
function lastAxis(axis: unknown, rank: number): boolean {
  const a = Array.isArray(axis) ? axis[0] : axis;
  if (typeof a !== 'number') return false;
  return (a < 0 ? a + rank : a) === rank - 1;
}

/**
 * Copies `c` channels of every pixel between channels-last tensors of `srcTotal` and `dstTotal` channels, from channel
 * `srcAt` to channel `dstAt`: with the SIMD module when every count is a multiple of 4, else in a loop.
 */
function copyChannels(backend: WasmBackendLike, src: TensorInfo, srcTotal: number, srcAt: number, dst: TensorInfo, dstTotal: number, dstAt: number, c: number, pixels: number): void {
  if (c % 4 === 0 && srcTotal % 4 === 0 && dstTotal % 4 === 0 && srcAt % 4 === 0 && dstAt % 4 === 0) {
    const simd = simdKernels(backend);
    simd.copy(heapAddress(backend, src) + 4 * srcAt, heapAddress(backend, dst) + 4 * dstAt, pixels, c, 4 * srcTotal, 4 * dstTotal);
    return;
  }
  const x = backend.typedArrayFromHeap(src);
  const o = backend.typedArrayFromHeap(dst);
  for (let p = 0, s = srcAt, d = dstAt; p < pixels; p++, s += srcTotal, d += dstTotal) {
    for (let j = 0; j < c; j++) o[d + j] = x[s + j];
  }
}

/** Concatenation along the channel axis: each input's channels copied into its column range of every pixel. */
export function concatChannels(backend: WasmBackendLike, inputs: TensorInfo[]): TensorInfo {
  const rank = inputs[0].shape.length;
  const widths = inputs.map((t) => t.shape[rank - 1]);
  const total = widths.reduce((a, b) => a + b, 0);
  const out = backend.makeOutput([...inputs[0].shape.slice(0, -1), total], 'float32');
  const pixels = size(out.shape) / total;
  let offset = 0;
  for (let k = 0; k < inputs.length; k++) {
    copyChannels(backend, inputs[k], widths[k], 0, out, total, offset, widths[k], pixels);
    offset += widths[k];
  }
  return out;
}

/** Splitting along the channel axis into the given widths. */
export function splitChannels(backend: WasmBackendLike, x: TensorInfo, widths: number[]): TensorInfo[] {
  const rank = x.shape.length;
  const total = x.shape[rank - 1];
  const outs = widths.map((c) => backend.makeOutput([...x.shape.slice(0, -1), c], 'float32'));
  const pixels = size(x.shape) / total;
  let offset = 0;
  for (let k = 0; k < outs.length; k++) {
    copyChannels(backend, x, total, offset, outs[k], widths[k], 0, widths[k], pixels);
    offset += widths[k];
  }
  return outs;
}

/**
 * The gradient of 2×2 max pooling with stride 2 and no padding on NHWC data of even height and width: each output
 * pixel's gradient goes to the first maximum of its window (row-major), the other three get 0.
 */
export function maxPool2x2Grad(backend: WasmBackendLike, input: TensorInfo, dy: TensorInfo): TensorInfo {
  const [n, h, w, c] = input.shape;
  const dx = backend.makeOutput(input.shape, 'float32');
  const d = backend.typedArrayFromHeap(dx);
  const x = backend.typedArrayFromHeap(input);
  const g = backend.typedArrayFromHeap(dy);
  d.fill(0);
  const oh = h / 2;
  const ow = w / 2;
  const row = w * c;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const top = (b * h + 2 * oy) * row;
      let gi = ((b * oh + oy) * ow) * c;
      for (let ox = 0; ox < ow; ox++) {
        const i00 = top + 2 * ox * c;
        for (let ch = 0; ch < c; ch++, gi++) {
          const a = i00 + ch;
          let best = a;
          let m = x[a];
          // The same comparisons as tfjs' window walk from −∞: a NaN never wins, so the first non-NaN maximum does.
          if (!(m > -Infinity)) {
            m = -Infinity;
            best = -1;
          }
          const a01 = a + c;
          if (x[a01] > m) {
            m = x[a01];
            best = a01;
          }
          const a10 = a + row;
          if (x[a10] > m) {
            m = x[a10];
            best = a10;
          }
          const a11 = a10 + c;
          if (x[a11] > m) best = a11;
          if (best >= 0) d[best] += g[gi];
        }
      }
    }
  }
  return dx;
}

function isPool2x2(input: TensorInfo, attrs: NamedAttrMap): boolean {
  const pair = (v: unknown) => (Array.isArray(v) ? v : [v, v]);
  const [fh, fw] = pair(attrs.filterSize);
  const [sh, sw] = pair(attrs.strides);
  return input.shape.length === 4 && fh === 2 && fw === 2 && sh === 2 && sw === 2 && attrs.pad === 'valid' && !attrs.dimRoundingMode &&
    input.shape[1] % 2 === 0 && input.shape[2] % 2 === 0;
}

const replacements: Record<string, KernelFunc> = {
  Identity: (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return fallback('Identity', args);
    (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
  Concat: (args) => {
    const inputs = (args.inputs as unknown as TensorInfo[]).filter((t) => size(t.shape) > 0);
    const rank = inputs[0]?.shape.length ?? 0;
    const ok = inputs.length > 1 && rank > 1 && lastAxis(args.attrs?.axis, rank) && inputs.every((t) => t.dtype === 'float32');
    return ok ? concatChannels(args.backend as unknown as WasmBackendLike, inputs) : fallback('Concat', args);
  },
  SplitV: (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const rank = x.shape.length;
    const splits = args.attrs?.numOrSizeSplits;
    const ok = rank > 1 && x.dtype === 'float32' && lastAxis(args.attrs?.axis, rank) && size(x.shape) > 0;
    if (!ok) return fallback('SplitV', args);
    const total = x.shape[rank - 1];
    let widths: number[];
    if (typeof splits === 'number') {
      if (total % splits !== 0) return fallback('SplitV', args);
      widths = new Array<number>(splits).fill(total / splits);
    } else {
      widths = (splits as number[]).slice();
      const unknown = widths.indexOf(-1);
      if (unknown >= 0) widths[unknown] = total - widths.reduce((a, b) => a + (b === -1 ? 0 : b), 0);
      if (widths.reduce((a, b) => a + b, 0) !== total || widths.some((c) => c < 0)) return fallback('SplitV', args);
    }
    return splitChannels(args.backend as unknown as WasmBackendLike, x, widths);
  },
  MaxPoolGrad: (args) => {
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const ok = input.dtype === 'float32' && isPool2x2(input, args.attrs ?? {});
    return ok ? maxPool2x2Grad(args.backend as unknown as WasmBackendLike, input, dy) : fallback('MaxPoolGrad', args);
  },
};

const swap = new KernelSwap('wasm', replacements);

/**
 * Use the kernels above on the wasm backend (on = true) or tfjs-wasm's own again (for comparisons). The wasm backend
 * must be registered.
 */
export function useWasmDataKernels(on = true): void {
  swap.use(on);
}
