// The ONNX export must compute what the tfjs model computes (batch norm folded, NHWC → NCHW), for both EMSeg model
// kinds, on a slice size that is not square.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf } from '../tfjs/backend';
import { buildModel, sizeMultiple, type ModelConfig } from '../models';
import { exportOnnx, halveWeights, modelToOnnxGraph } from './export';
import { TensorType } from './proto';
import { createOnnxModel } from '../infer/onnx-session';
import { predictTf } from '../infer/predict-tf';
import { perturbBatchNorm, pseudoRandom } from '../models/test-helpers';

const configs: ModelConfig[] = [
  { kind: 'unet', baseChannels: 4, depth: 2, inChannels: 1 },
  { kind: 'refiner', inChannels: 2, branchLayers: 3, channels: 4, headLayers: 1 },
  { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 4, headLayers: 1, rawPath: 'open', rawLayers: 3 },
];

for (const cfg of configs) {
  test(`ONNX export of the ${cfg.kind}${cfg.kind === 'refiner' && cfg.rawPath === 'open' ? ' with an open raw path' : ''} matches tfjs`, async () => {
    await initTf('cpu');
    const model = buildModel(cfg);
    perturbBatchNorm(model);
    const [h, w] = [24, 36];
    const x = pseudoRandom(h * w * cfg.inChannels, 5, 2);
    const ref = predictTf(model, x, w, h, cfg.inChannels, sizeMultiple(cfg));
    // ONNX takes NCHW: de-interleave the channels.
    const nchw = new Float32Array(x.length);
    for (let i = 0; i < h * w; i++) for (let c = 0; c < cfg.inChannels; c++) nchw[c * h * w + i] = x[i * cfg.inChannels + c];
    const session = await createOnnxModel(exportOnnx(model), { threads: 1 });
    const got = await session.run(nchw, cfg.inChannels, h, w);
    await session.release();
    let maxErr = 0;
    let mean = 0;
    for (let i = 0; i < ref.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
      mean += ref[i] / ref.length;
    }
    let varSum = 0;
    for (const v of ref) varSum += (v - mean) ** 2;
    assert.ok(Math.sqrt(varSum / ref.length) > 1e-3, 'outputs are not constant (the comparison means something)');
    assert.ok(maxErr < 1e-5, `max |onnx − tfjs| = ${maxErr}`);
    // Half-precision storage: a smaller file, float32 compute, outputs within weight-rounding error.
    const graph = modelToOnnxGraph(model);
    const weightBytes = (g: typeof graph) => g.initializers.filter((t) => t.type === TensorType.FLOAT || t.type === TensorType.FLOAT16).reduce((a, t) => a + t.data.byteLength, 0);
    assert.equal(weightBytes(halveWeights(graph)) * 2, weightBytes(graph), 'every float weight is stored in half the bytes');
    const halfBytes = exportOnnx(model, {}, { halfWeights: true });
    const hs = await createOnnxModel(halfBytes, { threads: 1 });
    const gotHalf = await hs.run(nchw, cfg.inChannels, h, w);
    await hs.release();
    let halfErr = 0;
    for (let i = 0; i < ref.length; i++) halfErr = Math.max(halfErr, Math.abs(gotHalf[i] - ref[i]));
    assert.ok(halfErr > 0 && halfErr < 5e-3, `max |half − tfjs| = ${halfErr}`);
    model.dispose();
  });
}
