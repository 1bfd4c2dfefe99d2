// Convolution gradients for tfjs' wasm backend, so that models train at matrix-multiply speed where tfjs-node's native
// library is not installed.
//
// - `Conv2DBackpropFilter` does not exist in tfjs-backend-wasm at all. dW[kh,kw,ci,co] = Σ_{b,y,x} x[b, y·s+kh·d−pt,
//   x·s+kw·d−pl, ci] · dy[b,y,x,co]: we write the im2col matrix of x *transposed* (rows = (kh,kw,ci), columns = output
//   pixels) on the wasm heap and multiply it by dy with the backend's BatchMatMul (XNNPACK). The layout matters:
//   measured here, BatchMatMul runs at ~29 GFLOP/s without transposes but ~2 GFLOP/s with transposeA. Pixels are
//   processed in chunks so the im2col buffer stays below ~64 MB whatever the batch and slice size.
// - `Conv2DBackpropInput` exists but is a scalar loop (~1 GFLOP/s; it took more time than all forward convolutions
//   together). For stride 1 the input gradient is a plain convolution of dy with the spatially flipped, in/out-swapped
//   filter, which the wasm Conv2D (XNNPACK) computes fast; for stride = kernel size with no padding (the U-Net's 2×2
//   up-convolutions) it is one matrix multiply followed by DepthToSpace. Other cases use the original kernel.
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo, KernelConfig, NamedAttrMap, NamedTensorInfoMap, KernelFunc } from '@tensorflow/tfjs';
import { KernelSwap } from './kernel-swap';

/** The part of tfjs' wasm backend that EMSeg's kernels use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  disposeData(dataId: object): boolean;
}

let CHUNK_FLOATS = 16 * 1024 * 1024;

/** Tests shrink the im2col chunk to exercise chunk boundaries that fall inside image rows. */
export function setIm2colChunkFloats(n: number): void {
  CHUNK_FLOATS = n;
}

function kernel(name: string): KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm kernel ${name} missing`);
  return k.kernelFunc;
}

function run(name: string, backend: WasmBackendLike, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): TensorInfo {
  return kernel(name)({ inputs: inputs as NamedTensorInfoMap, backend: backend as unknown as tf.KernelBackend, attrs }) as TensorInfo;
}

function convInfo(xShape: number[], filterShape: number[], attrs: NamedAttrMap): tf.backend_util.Conv2DInfo {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations as number | [number, number] | undefined) ?? 1,
    attrs.pad as 'valid' | 'same' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    (attrs.dataFormat as string | undefined) === 'NCHW' ? 'channelsFirst' : 'channelsLast',
  );
  if (info.dataFormat !== 'channelsLast') throw new Error('EMSeg wasm conv gradients: only NHWC is supported');
  return info;
}

export function conv2dBackpropFilterImpl(backend: WasmBackendLike, x: TensorInfo, dy: TensorInfo, attrs: NamedAttrMap): TensorInfo {
  const filterShape = attrs.filterShape as [number, number, number, number];
  const info = convInfo(x.shape, filterShape, attrs);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const geom: Im2colGeometry = {
    inHeight, inWidth, inChannels, outHeight, outWidth,
    fh: info.filterHeight, fw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth,
    dh: info.dilationHeight, dw: info.dilationWidth, padTop: info.padInfo.top, padLeft: info.padInfo.left,
  };
  const k = geom.fh * geom.fw * inChannels;
  const totalPixels = batchSize * outHeight * outWidth;
  const chunk = Math.max(1, Math.min(totalPixels, Math.floor(CHUNK_FLOATS / k)));
  const acc = new Float32Array(k * outChannels);
  // Stride 1 without dilation (every 3×3 conv of our models): im2col rows are shifted copies of channel planes, so
  // transpose x to planar CHW once (wasm kernel) and build each row from contiguous memcpy-speed segments.
  const planar = geom.sh === 1 && geom.sw === 1 && geom.dh === 1 && geom.dw === 1;
  const xT = planar ? run('Transpose', backend, { x }, { perm: [3, 0, 1, 2] }) : null;
  for (let p0 = 0; p0 < totalPixels; p0 += chunk) {
    const rows = Math.min(chunk, totalPixels - p0);
    // Allocate both buffers before taking any heap view: an allocation can grow (and so detach) the wasm heap.
    const colsT = backend.makeOutput([1, k, rows], 'float32');
    const dyChunk = backend.makeOutput([1, rows, outChannels], 'float32');
    if (xT) fillIm2colPlanar(backend.typedArrayFromHeap(colsT), backend.typedArrayFromHeap(xT), p0, rows, batchSize, geom);
    else fillIm2colTransposed(backend.typedArrayFromHeap(colsT), backend.typedArrayFromHeap(x), p0, rows, geom);
    backend.typedArrayFromHeap(dyChunk).set(backend.typedArrayFromHeap(dy).subarray(p0 * outChannels, (p0 + rows) * outChannels));
    const prod = run('BatchMatMul', backend, { a: colsT, b: dyChunk }, { transposeA: false, transposeB: false });
    const p = backend.typedArrayFromHeap(prod);
    for (let i = 0; i < acc.length; i++) acc[i] += p[i];
    backend.disposeData(prod.dataId);
    backend.disposeData(colsT.dataId);
    backend.disposeData(dyChunk.dataId);
  }
  if (xT) backend.disposeData(xT.dataId);
  const out = backend.makeOutput(filterShape, 'float32');
  backend.typedArrayFromHeap(out).set(acc);
  return out;
}

interface Im2colGeometry {
  inHeight: number; inWidth: number; inChannels: number; outHeight: number; outWidth: number;
  fh: number; fw: number; sh: number; sw: number; dh: number; dw: number; padTop: number; padLeft: number;
}

/**
 * dst[(kh·fw + kw)·C + c][p − p0] = x at tap (kh, kw) of output pixel p, channel c (0 outside the image).
 * Loops run over channels outside and pixels inside, so writes are sequential (reads stride by C).
 */
function fillIm2colTransposed(dst: Float32Array, x: Float32Array, p0: number, n: number, g: Im2colGeometry): void {
  const { inHeight, inWidth, inChannels: c, outHeight, outWidth, fh, fw, sh, sw, dh, dw, padTop, padLeft } = g;
  const perImage = outHeight * outWidth;
  const p1 = p0 + n;
  for (let kh = 0; kh < fh; kh++) {
    for (let kw = 0; kw < fw; kw++) {
      // Output columns whose input column is inside the image, for this tap.
      const oxLo = Math.max(0, Math.ceil((padLeft - kw * dw) / sw));
      const oxHi = Math.min(outWidth, Math.floor((inWidth - 1 + padLeft - kw * dw) / sw) + 1);
      for (let ci = 0; ci < c; ci++) {
        const row = ((kh * fw + kw) * c + ci) * n - p0;
        // Walk output rows (b, oy) that intersect [p0, p1).
        for (let rowStart = p0 - ((p0 % perImage) % outWidth); rowStart < p1; rowStart += outWidth) {
          const b = Math.floor(rowStart / perImage);
          const oy = (rowStart - b * perImage) / outWidth;
          const iy = oy * sh + kh * dh - padTop;
          const jLo = Math.max(rowStart, p0);
          const jHi = Math.min(rowStart + outWidth, p1);
          if (iy < 0 || iy >= inHeight) {
            dst.fill(0, row + jLo, row + jHi);
            continue;
          }
          const src = (b * inHeight + iy) * inWidth * c + ci + (kw * dw - padLeft) * c;
          for (let j = jLo; j < jHi; j++) {
            const ox = j - rowStart;
            dst[row + j] = ox >= oxLo && ox < oxHi ? x[src + ox * sw * c] : 0;
          }
        }
      }
    }
  }
}

/** As fillIm2colTransposed for stride 1 and no dilation, from x in planar [C, B, H, W] layout. */
function fillIm2colPlanar(dst: Float32Array, xT: Float32Array, p0: number, n: number, batch: number, g: Im2colGeometry): void {
  const { inHeight, inWidth, inChannels: c, outHeight, outWidth, fh, fw, padTop, padLeft } = g;
  const perImage = outHeight * outWidth;
  const p1 = p0 + n;
  const plane = inHeight * inWidth;
  for (let kh = 0; kh < fh; kh++) {
    for (let kw = 0; kw < fw; kw++) {
      const shift = kw - padLeft;
      const oxLo = Math.max(0, -shift);
      const oxHi = Math.min(outWidth, inWidth - shift);
      for (let ci = 0; ci < c; ci++) {
        const row = ((kh * fw + kw) * c + ci) * n - p0;
        for (let rowStart = p0 - ((p0 % perImage) % outWidth); rowStart < p1; rowStart += outWidth) {
          const b = Math.floor(rowStart / perImage);
          const oy = (rowStart - b * perImage) / outWidth;
          const iy = oy + kh - padTop;
          const jLo = Math.max(rowStart, p0);
          const jHi = Math.min(rowStart + outWidth, p1);
          if (iy < 0 || iy >= inHeight) {
            dst.fill(0, row + jLo, row + jHi);
            continue;
          }
          // Output columns [a, z) of this row come from input columns [a + shift, z + shift).
          const a = Math.max(jLo - rowStart, oxLo);
          const z = Math.min(jHi - rowStart, oxHi);
          if (a > jLo - rowStart) dst.fill(0, row + jLo, row + rowStart + a);
          if (z > a) {
            const src = (ci * batch + b) * plane + iy * inWidth + shift;
            dst.set(xT.subarray(src + a, src + z), row + rowStart + a);
          }
          if (jHi - rowStart > Math.max(z, a)) dst.fill(0, row + rowStart + Math.max(z, a), row + jHi);
        }
      }
    }
  }
}

export function conv2dBackpropInputImpl(backend: WasmBackendLike, dy: TensorInfo, filter: TensorInfo, attrs: NamedAttrMap): TensorInfo {
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = convInfo(inputShape, filter.shape, attrs);
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, inChannels: ci, outChannels: co } = info;
  const { top, left } = info.padInfo;
  const dilated = info.dilationHeight !== 1 || info.dilationWidth !== 1;
  if (!dilated && sh === 1 && sw === 1) {
    const pt = fh - 1 - top;
    const pl = fw - 1 - left;
    const pb = info.inHeight - info.outHeight - pt + fh - 1;
    const pr = info.inWidth - info.outWidth - pl + fw - 1;
    if (pt >= 0 && pl >= 0 && pb >= 0 && pr >= 0) {
      // Flipped, in/out-swapped filter: wt[kh, kw, o, i] = w[fh−1−kh, fw−1−kw, i, o].
      const wt = backend.makeOutput([fh, fw, co, ci], 'float32');
      const w = backend.typedArrayFromHeap(filter);
      const t = backend.typedArrayFromHeap(wt);
      for (let kh = 0; kh < fh; kh++)
        for (let kw = 0; kw < fw; kw++)
          for (let o = 0; o < co; o++)
            for (let i = 0; i < ci; i++) t[((kh * fw + kw) * co + o) * ci + i] = w[(((fh - 1 - kh) * fw + (fw - 1 - kw)) * ci + i) * co + o];
      const dx = run('Conv2D', backend, { x: dy, filter: wt }, {
        strides: 1, dilations: 1, pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]] as unknown as number, dataFormat: 'NHWC', dimRoundingMode: undefined as unknown as string,
      });
      backend.disposeData(wt.dataId);
      return dx;
    }
  }
  if (!dilated && sh === fh && sw === fw && top === 0 && left === 0 && info.inHeight === info.outHeight * sh && info.inWidth === info.outWidth * sw) {
    // dx[n, y·s+a, x·s+b, i] = Σ_o dy[n, y, x, o] · w[a, b, i, o]: dy (pixels × o) · W' (o × (a, b, i)), then DepthToSpace.
    const n = info.batchSize * info.outHeight * info.outWidth;
    const wt = backend.makeOutput([1, co, fh * fw * ci], 'float32');
    const w = backend.typedArrayFromHeap(filter);
    const t = backend.typedArrayFromHeap(wt);
    for (let a = 0; a < fh; a++)
      for (let b = 0; b < fw; b++)
        for (let i = 0; i < ci; i++)
          for (let o = 0; o < co; o++) t[o * fh * fw * ci + (a * fw + b) * ci + i] = w[((a * fw + b) * ci + i) * co + o];
    const dy3 = run('Reshape', backend, { x: dy }, { shape: [1, n, co] });
    const prod = run('BatchMatMul', backend, { a: dy3, b: wt }, { transposeA: false, transposeB: false });
    const prod4 = run('Reshape', backend, { x: prod }, { shape: [info.batchSize, info.outHeight, info.outWidth, fh * fw * ci] });
    const dx =
      fh === fw
        ? run('DepthToSpace', backend, { x: prod4 }, { blockSize: fh, dataFormat: 'NHWC' })
        : undefined;
    backend.disposeData(wt.dataId);
    backend.disposeData(dy3.dataId);
    backend.disposeData(prod.dataId);
    if (dx) {
      backend.disposeData(prod4.dataId);
      return dx;
    }
    backend.disposeData(prod4.dataId);
  }
  return backpropInput.original('Conv2DBackpropInput')({ inputs: { dy, filter }, backend: backend as unknown as tf.KernelBackend, attrs }) as TensorInfo;
}

export const wasmConv2DBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    return conv2dBackpropFilterImpl(backend as unknown as WasmBackendLike, x, dy, attrs ?? {});
  },
};

const backpropInput = new KernelSwap('wasm', {
  Conv2DBackpropInput: ({ inputs, backend, attrs }) => {
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    return conv2dBackpropInputImpl(backend as unknown as WasmBackendLike, dy, filter, attrs ?? {});
  },
});

/** Register EMSeg's wasm gradient kernels (idempotent). Requires tfjs-backend-wasm to be imported. */
export function registerWasmGradientKernels(): void {
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) tf.registerKernel(wasmConv2DBackpropFilterConfig);
  backpropInput.use(true);
}
