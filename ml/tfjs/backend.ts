// Picks the tfjs backend for training and tfjs inference, and says in one line which one is in use.
//
// Order: tfjs-node (native TensorFlow, multi-threaded) where its native library is installed; otherwise tfjs' wasm
// backend (XNNPACK, one thread in Node) with EMSeg's kernels: the Conv2D filter gradient tfjs-wasm lacks
// (wasm-conv-gradients.ts), batch normalization and channel copies in a WebAssembly SIMD module on the backend's heap
// (wasm-batchnorm.ts, wasm-kernels.ts), and the convolutions and their gradients computed by ONNX Runtime where
// onnxruntime-node loads (ort-conv-kernels.ts); together a training step 2.9× as fast as with tfjs-wasm's own
// kernels (npm run bench). The pure-JS cpu backend only when asked for (it is ~40× slower than wasm here and used as
// the reference in tests).
// EMSEG_TF_CONV=wasm keeps tfjs-wasm's own convolutions, EMSEG_TF_CONV=plain ONNX Runtime's without the blocked layout,
// EMSEG_TF_CONV=per-tap its filter gradients as one product per tap everywhere (for comparison).
import * as tf from '@tensorflow/tfjs';
import { registerWasmGradientKernels } from './wasm-conv-gradients';
import { registerLeanBatchNormGradient } from './batchnorm-gradient';
import { nchwcBlock, useNchwc, useOrtConvolutions, useRowShiftFilterGradient } from './ort-conv-kernels';
import { useWasmBatchNorm } from './wasm-batchnorm';
import { useWasmDataKernels } from './wasm-kernels';
import { registerWasmAdam } from './wasm-adam';

export type TfBackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface TfBackendInfo {
  name: TfBackendName;
  /** One line for logs and the CLI: which path is in use and why. */
  note: string;
}

let current: TfBackendInfo | undefined;

async function tryTfjsNode(): Promise<boolean> {
  try {
    // A variable specifier keeps bundlers from resolving this optional dependency at build time.
    const name = '@tensorflow/tfjs-node';
    await import(/* @vite-ignore */ name);
    return tf.findBackend('tensorflow') !== null;
  } catch {
    return false;
  }
}

/** Which kernels compute the wasm backend's convolutions, for the one-line note. */
function wasmConvolutions(): string {
  if (process.env.EMSEG_TF_CONV === 'wasm') {
    useOrtConvolutions(false);
    return 'convolutions by tfjs-wasm, as EMSEG_TF_CONV asks, with gradients supplied by EMSeg';
  }
  try {
    useOrtConvolutions(true);
    const plain = process.env.EMSEG_TF_CONV === 'plain';
    const perTap = process.env.EMSEG_TF_CONV === 'per-tap';
    useNchwc(!plain);
    useRowShiftFilterGradient(!perTap);
    const block = plain ? null : nchwcBlock();
    const layout = block ? `, in its blocked layout (NCHW${block}c) where the channels allow` : plain ? ', without the blocked layout, as EMSEG_TF_CONV asks' : '';
    return `convolutions and their gradients by ONNX Runtime${layout}${perTap ? ', filter gradients one product per tap, as EMSEG_TF_CONV asks' : ''}`;
  } catch (e) {
    return `convolutions by tfjs-wasm with gradients supplied by EMSeg; ONNX Runtime did not load: ${(e as Error).message.split('\n')[0]}`;
  }
}

async function useWasm(): Promise<string> {
  await registerWasm();
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
  await tf.ready();
  return wasmConvolutions();
}

/**
 * Initialise tfjs once per process (or worker). `prefer` forces a backend (tests use 'cpu' as a reference);
 * the environment variable EMSEG_TF_BACKEND does the same from outside.
 */
export async function initTf(prefer?: TfBackendName): Promise<TfBackendInfo> {
  registerLeanBatchNormGradient();
  const wanted = prefer ?? (process.env.EMSEG_TF_BACKEND as TfBackendName | undefined);
  if (current && (!wanted || wanted === current.name)) return current;
  if ((!wanted || wanted === 'tensorflow') && (await tryTfjsNode())) {
    await tf.setBackend('tensorflow');
    await tf.ready();
    current = { name: 'tensorflow', note: 'tfjs backend: tensorflow (tfjs-node native library)' };
  } else if (wanted === 'cpu') {
    await tf.setBackend('cpu');
    await tf.ready();
    current = { name: 'cpu', note: 'tfjs backend: cpu (pure JavaScript, reference only)' };
  } else {
    const convolutions = await useWasm();
    const why = wanted === 'wasm' ? 'requested' : 'tfjs-node is not installed';
    current = { name: 'wasm', note: `tfjs backend: wasm (${why}; ${convolutions})` };
  }
  return current;
}

/** Make sure the wasm backend, with EMSeg's kernels, is registered without switching to it. */
export async function registerWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmGradientKernels();
  useWasmDataKernels();
  useWasmBatchNorm(true);
  registerWasmAdam();
}

export { tf };
