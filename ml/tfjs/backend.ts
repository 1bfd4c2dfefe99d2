// Picks the tfjs backend for training and tfjs inference, and says in one line which one is in use.
//
// Order: tfjs-node (native TensorFlow, multi-threaded) where its native library is installed; otherwise tfjs' wasm
// backend (XNNPACK, one thread in Node) with the Conv2D filter gradient EMSeg supplies; the pure-JS cpu backend only
// when asked for (it is ~40× slower than wasm here and used as the reference in tests).
import * as tf from '@tensorflow/tfjs';
import { registerWasmGradientKernels } from './wasm-conv-gradients';
import { registerLeanBatchNormGradient } from './batchnorm-gradient';

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

async function useWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmGradientKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend failed to initialise');
  await tf.ready();
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
    await useWasm();
    const why = wanted === 'wasm' ? 'requested' : 'tfjs-node is not installed';
    current = { name: 'wasm', note: `tfjs backend: wasm (${why}; convolution gradients supplied by EMSeg)` };
  }
  return current;
}

/** Make sure the wasm backend (with EMSeg's extra kernel) is registered without switching to it. */
export async function registerWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmGradientKernels();
}

export { tf };
