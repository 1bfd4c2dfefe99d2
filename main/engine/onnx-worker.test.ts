// Inference through the worker thread gives the in-thread result, and the caller's event loop keeps running meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initTf } from '../../ml/tfjs/backend';
import { buildModel } from '../../ml/models';
import { exportOnnx } from '../../ml/onnx/export';
import { createOnnxModel } from '../../ml/infer/onnx-session';
import { createWorkerOnnxModel } from './onnx-worker';
import { pseudoRandom, perturbBatchNorm } from '../../ml/models/test-helpers';

test('worker-thread inference equals in-thread inference and leaves the event loop free', async () => {
  await initTf('cpu');
  const model = buildModel({ kind: 'unet', baseChannels: 8, depth: 3, inChannels: 1 });
  perturbBatchNorm(model);
  const bytes = exportOnnx(model);
  const [h, w] = [512, 512];
  const x = pseudoRandom(h * w, 2);
  const local = await createOnnxModel(bytes, { threads: 1 });
  const ref = await local.run(x, 1, h, w);
  await local.release();
  const remote = await createWorkerOnnxModel(bytes, { threads: 1 });
  let ticks = 0;
  const iv = setInterval(() => ticks++, 1);
  const t = performance.now();
  const got = await remote.run(x, 1, h, w);
  const ms = performance.now() - t;
  clearInterval(iv);
  await remote.release();
  assert.deepEqual(Array.from(got), Array.from(ref));
  assert.equal(x.length, h * w, 'the caller keeps its input array');
  // A blocked loop would fire no timer at all during the run.
  assert.ok(ticks >= Math.min(5, ms / 4), `timer fired ${ticks} times during a ${ms.toFixed(0)} ms inference`);
  model.dispose();
});
