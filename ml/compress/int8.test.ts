// int8 QDQ quantisation: the parameter arithmetic exactly, and on small random models (both EMSeg kinds) that the
// QDQ graph loads in ONNX Runtime, stores its convolution weights in int8, and computes nearly what the float graph
// computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf } from '../tfjs/backend';
import { buildModel, type ModelConfig } from '../models';
import { modelToOnnxGraph } from '../onnx/export';
import { encodeModel, TensorType } from '../onnx/proto';
import { createOnnxModel } from '../infer/onnx-session';
import { perturbBatchNorm, pseudoRandom, seedWeights } from '../models/test-helpers';
import { activationParams, convTransposeAsConv, planQuantization, quantizeInt8, quantizeWeightsPerChannel } from './int8';

test('uint8 activation parameters represent float 0 exactly', () => {
  const r = activationParams({ min: 0, max: 2.55 });
  assert.ok(Math.abs(r.scale - 0.01) < 1e-12);
  assert.equal(r.zeroPoint, 0);
  const p = activationParams({ min: -1, max: 3 });
  assert.ok(Math.abs(p.scale - 4 / 255) < 1e-12);
  assert.equal(p.zeroPoint, 64);
  // A range that excludes 0 is widened to include it.
  assert.equal(activationParams({ min: 1, max: 2 }).zeroPoint, 0);
  assert.equal(activationParams({ min: -2, max: -1 }).zeroPoint, 255);
});

test('per-channel symmetric int8 weights along axis 0 and axis 1', () => {
  // dims [2, 3]: channel 0 = (1, -0.3, 0.25), channel 1 = (0, 0, 0).
  const a = quantizeWeightsPerChannel(Float32Array.of(1, -0.3, 0.25, 0, 0, 0), [2, 3], 0);
  assert.deepEqual([...a.q], [127, -38, 32, 0, 0, 0]);
  assert.ok(Math.abs(a.scales[0] - 1 / 127) < 1e-9);
  assert.equal(a.scales[1], 1, 'an all-zero channel gets a harmless scale');
  // Same values along axis 1 of [3, 2] (transposed layout): channel = index % 2.
  const b = quantizeWeightsPerChannel(Float32Array.of(1, 0, -0.3, 0, 0.25, 0), [3, 2], 1, true);
  assert.deepEqual([...b.q], [63, 0, -19, 0, 16, 0]);
});

const configs: ModelConfig[] = [
  { kind: 'unet', baseChannels: 4, depth: 2, inChannels: 1 },
  { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 4, headLayers: 1 },
];

for (const cfg of configs) {
  test(`int8 QDQ ${cfg.kind} runs in ONNX Runtime close to float`, async () => {
    await initTf('cpu');
    const model = buildModel(cfg);
    // Seeded weights: the same model every run (tfjs' initialisers are not seeded, and an unlucky draw made this flaky).
    seedWeights(model, 41);
    perturbBatchNorm(model);
    const graph = modelToOnnxGraph(model);
    model.dispose();
    const c = cfg.inChannels;
    const [h, w] = [32, 48];
    const crops = [1, 2, 3, 4].map((seed) => ({ data: pseudoRandom(c * h * w, seed, 4), channels: c, height: h, width: w }));
    const { graph: q } = await quantizeInt8(graph, crops, { threads: 1 });

    // Every weight of a convolution that feeds a quantised tensor is int8; the logits stay float.
    const plan = planQuantization(graph);
    assert.ok(plan.calibrated.includes('input'));
    const int8Weights = q.initializers.filter((t) => t.type === TensorType.INT8 && t.dims.length === 4);
    const floatWeights = q.initializers.filter((t) => t.type === TensorType.FLOAT && t.dims.length === 4);
    const convs = graph.nodes.filter((n) => n.op === 'Conv' || n.op === 'ConvTranspose').length;
    assert.equal(int8Weights.length, convs - 1);
    assert.deepEqual(floatWeights.map((t) => t.name), ['logits.W']);
    assert.ok(q.nodes.some((n) => n.op === 'QuantizeLinear') && q.nodes.some((n) => n.op === 'DequantizeLinear'));

    const x = pseudoRandom(c * h * w, 99, 4);
    const fs = await createOnnxModel(encodeModel(graph, { opset: 13, producer: 'test' }), { threads: 1 });
    const ref = await fs.run(x, c, h, w);
    await fs.release();
    // The up-sampling rewrite alone is exact (float rounding).
    const rewritten = convTransposeAsConv(graph);
    assert.equal(rewritten.nodes.filter((n) => n.op === 'ConvTranspose').length, 0);
    const rs = await createOnnxModel(encodeModel(rewritten, { opset: 13, producer: 'test' }), { threads: 1 });
    const same = await rs.run(x, c, h, w);
    await rs.release();
    assert.ok(same.every((v, i) => Math.abs(v - ref[i]) < 1e-5), 'ConvTranspose as Conv + DepthToSpace computes the same');
    const qs = await createOnnxModel(encodeModel(q, { opset: 13, producer: 'test' }), { threads: 1 });
    const got = await qs.run(x, c, h, w);
    await qs.release();
    let mean = 0;
    for (const v of ref) mean += v / ref.length;
    let sd = 0;
    let err = 0;
    let maxErr = 0;
    for (let i = 0; i < ref.length; i++) {
      sd += (ref[i] - mean) ** 2 / ref.length;
      err += Math.abs(got[i] - ref[i]) / ref.length;
      maxErr = Math.max(maxErr, Math.abs(got[i] - ref[i]));
    }
    sd = Math.sqrt(sd);
    assert.ok(sd > 0.02, `the float output varies (sd ${sd}), so the comparison means something`);
    assert.ok(err > 0, 'the int8 graph really is quantised');
    console.log(`${cfg.kind}: mean |int8 − float| ${err.toExponential(2)}, max ${maxErr.toFixed(4)}, output sd ${sd.toFixed(4)}`);
    assert.ok(err < 0.1 * sd && maxErr < 0.1, `mean |int8 − float| ${err.toExponential(2)}, max ${maxErr.toFixed(4)}, output sd ${sd.toFixed(4)}`);
  });
}
