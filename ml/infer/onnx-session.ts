// ONNX Runtime sessions for EMSeg models: created from bytes (ml/ never touches the file system), all cores by
// default, graph optimisations on. The session's run is asynchronous in onnxruntime-node (it executes on ORT's own
// threads), so inference does not block the caller's event loop.
import * as ort from 'onnxruntime-node';
import os from 'node:os';
import { ONNX_INPUT, ONNX_OUTPUT } from '../onnx/export';

export interface MapModel {
  /** input NCHW (N = 1), returns P(membrane) as H×W. */
  run(input: Float32Array, channels: number, height: number, width: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export async function createOnnxModel(bytes: Uint8Array, opts: { threads?: number } = {}): Promise<MapModel> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: opts.threads ?? os.availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  return {
    async run(input, channels, height, width) {
      const feeds = { [ONNX_INPUT]: new ort.Tensor('float32', input, [1, channels, height, width]) };
      const out = await session.run(feeds);
      const t = out[ONNX_OUTPUT];
      const data = t.data as Float32Array;
      t.dispose();
      return data;
    },
    release: () => session.release(),
  };
}
