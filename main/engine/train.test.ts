// Training end to end on a task small enough for a test: two worker threads learn that dark grid lines are membrane,
// validation improves, checkpoints are written, and a second run resumes where the first stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastAverage, readCheckpoint, replicaDrift, splitAverage, train, writeCheckpoint, type TrainOptions } from './train';
import { loadModel, loadOptimizer, type ModelRecord } from './model-store';
import { DEFAULT_AUGMENT, type TrainingSlice } from '../../ml/train/augment';
import { scoreMembraneStack } from '../../ml/metrics';
import { Rng } from '../../ml/train/rng';
import { buildModel } from '../../ml/models';
import { seedWeights } from '../../ml/models/test-helpers';
import { getWeights } from '../../ml/train/trainer';
import { initTf } from '../../ml/tfjs/backend';

function gridSlice(seed: number, size = 64): { slice: TrainingSlice; label: Uint8Array } {
  const rng = new Rng(seed);
  const target = new Uint8Array(size * size);
  const raw = new Float32Array(size * size);
  const step = 10 + rng.int(4);
  const ox = rng.int(step);
  const oy = rng.int(step);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const m = (x + ox) % step < 2 || (y + oy) % step < 2 ? 1 : 0;
      target[y * size + x] = m;
      raw[y * size + x] = (m ? -1.5 : 0.5) + 0.4 * rng.normal();
    }
  const label = target.map((m) => (m ? 0 : 255));
  return { slice: { width: size, height: size, channels: 1, raw, target }, label };
}

/** Four grid training slices, two validation slices, and seeded initial weights of a tiny U-Net. */
async function gridTask(): Promise<Pick<TrainOptions, 'config' | 'init' | 'train' | 'val' | 'score'>> {
  const trainSet = [1, 2, 3, 4].map((s) => gridSlice(s).slice);
  const val = [5, 6].map((s) => gridSlice(s));
  const config = { kind: 'unet', baseChannels: 4, depth: 1, inChannels: 1 } as const;
  // Seeded initial weights: tfjs' initialisers are not seeded, and the run has to be the same every time.
  await initTf();
  const m0 = buildModel(config);
  seedWeights(m0, 11);
  const init = getWeights(m0);
  m0.dispose();
  return {
    config, init, train: trainSet,
    val: val.map((v, i) => ({ index: i, width: 64, height: 64, channels: 1, input: v.slice.raw })),
    score: async (maps) => scoreMembraneStack(maps, val.map((v) => ({ width: 64, height: 64, data: v.label }))),
  };
}

test('data-parallel training improves validation, checkpoints, and resumes', async () => {
  const out = await mkdtemp(join(tmpdir(), 'emseg-train-'));
  try {
    const logs: string[] = [];
    const opts: TrainOptions = {
      role: 'membrane', ...(await gridTask()),
      out, steps: 30, batchSize: 4, cropPx: 32, lr: 1e-2, workers: 2, seed: 3, augment: DEFAULT_AUGMENT, weighting: 'balanced', evalEvery: 10,
      log: (l) => logs.push(l),
    };
    const first = await train(opts);
    assert.equal(first.steps, 30);
    assert.ok(!logs.some((l) => l.includes('replicas\' weights differ')), 'the replicas stayed bit-identical');
    const history = (await readFile(join(out, 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; pixelError: number; vrand: number });
    assert.deepEqual(history.map((h) => h.step), [10, 20, 30]);
    assert.ok(history[2].pixelError < 0.2, `pixel error after 30 steps: ${history[2].pixelError}`);
    assert.ok(first.best && first.best.vrand > 0.8, `best V_rand ${first.best?.vrand}`);
    const state = JSON.parse(await readFile(join(out, 'checkpoint', 'state.json'), 'utf8')) as { step: number };
    assert.equal(state.step, 30);

    const second = await train({ ...opts, steps: 40, log: (l) => logs.push(l) });
    assert.equal(second.steps, 40);
    assert.ok(logs.some((l) => l.includes('resuming from step 30 of 40')), 'second run resumed from the checkpoint');
    const lines = (await readFile(join(out, 'history.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 4, 'only one more validation (step 40) was needed');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('a moving average of the weights is the saved model, rides in the checkpoint, and resumes', async () => {
  const out = await mkdtemp(join(tmpdir(), 'emseg-train-average-'));
  try {
    const opts: TrainOptions = {
      role: 'membrane', ...(await gridTask()),
      out, steps: 20, batchSize: 4, cropPx: 32, lr: 1e-2, workers: 2, seed: 3, augment: DEFAULT_AUGMENT, weighting: 'balanced', evalEvery: 10,
      average: 0.9,
    };
    await train(opts);
    const history = (await readFile(join(out, 'history.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { vrand: number; current_vrand: number });
    assert.ok(history.every((h) => Number.isFinite(h.vrand) && Number.isFinite(h.current_vrand)), 'both the average and the current weights are scored');
    const avgAt = async () => {
      const ck = await readCheckpoint(join(out, 'checkpoint'));
      return { state: ck!.state, ...splitAverage(await loadOptimizer(ck!.dir)), weights: (await loadModel(ck!.dir)).weights };
    };
    const at20 = await avgAt();
    assert.equal(at20.average?.updates, 20, 'one update per step');
    assert.ok(at20.optimizer.length > 0 && at20.optimizer.every((e) => !e.name.startsWith('weight-average/')), "Adam's state is kept apart");
    // The snapshot (the model as saved) is the average, not the current weights the checkpoint resumes from.
    const snapshot = (await loadModel(join(out, 'snapshots', 'step-000020'))).weights;
    assert.deepEqual(snapshot.map((w) => Array.from(w)), at20.average!.values.map((w) => Array.from(w)));
    assert.notDeepEqual(snapshot.map((w) => Array.from(w)), at20.weights.map((w) => Array.from(w)));
    // What the refiner's stages keep (lastAverage): the average, not the current weights.
    const kept = await lastAverage((await readCheckpoint(join(out, 'checkpoint')))!.dir, at20.weights);
    assert.deepEqual(kept.map((w) => Array.from(w)), snapshot.map((w) => Array.from(w)));
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as { training: { weightAverage?: number } };
    assert.equal(record.training.weightAverage, 0.9);

    await train({ ...opts, steps: 30 });
    assert.equal((await avgAt()).average?.updates, 30, 'the resumed run continues the average');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('the MALIS term trains through the worker threads and is recorded with the model', async () => {
  const out = await mkdtemp(join(tmpdir(), 'emseg-train-malis-'));
  try {
    const losses: number[] = [];
    const result = await train({
      role: 'membrane', ...(await gridTask()),
      out, steps: 30, batchSize: 4, cropPx: 32, lr: 1e-2, workers: 2, seed: 3, augment: DEFAULT_AUGMENT, weighting: 'balanced', malis: 1, evalEvery: 10,
      onProgress: (p) => losses.push(p.loss),
    });
    assert.equal(result.steps, 30);
    assert.ok(losses.every(Number.isFinite), 'finite losses');
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as { training: { malis?: number; steps: number; stepsPlanned: number }; validation: { vrand: number; pixelError: number; step: number } };
    assert.equal(record.training.malis, 1);
    // The best step and the length of the learning-rate schedule it was cut from are both on the record.
    assert.equal(record.training.steps, record.validation.step);
    assert.equal(record.training.stepsPlanned, 30);
    // The same bar as the plain run above: the term must not stop the network from learning the grid.
    assert.ok(record.validation.pixelError < 0.2, `pixel error after 30 steps: ${record.validation.pixelError}`);
    assert.ok(record.validation.vrand > 0.8, `best V_rand ${record.validation.vrand}`);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('a checkpoint is swapped in whole, and resuming finds it wherever a kill left it', async () => {
  const out = await mkdtemp(join(tmpdir(), 'emseg-ckpt-'));
  try {
    const dir = join(out, 'checkpoint');
    const record: ModelRecord = { format: 'emseg-model', version: 1, role: 'membrane', config: { kind: 'unet', baseChannels: 1, depth: 1, inChannels: 1 }, weights: [{ name: 'w', shape: [2] }] };
    const save = (step: number) =>
      writeCheckpoint(dir, record, [Float32Array.of(step, step)], [{ name: 'm', shape: [2], data: Float32Array.of(-step, -step) }], { step, elapsedS: step, best: null, seed: 1 });
    await save(10);
    await save(20);
    assert.deepEqual((await readdir(out)).sort(), ['checkpoint'], 'no .next or .prev left behind');
    assert.equal((await readCheckpoint(dir))?.state.step, 20);

    // Killed while writing the next one (no state.json yet): the current one stands.
    await cp(dir, `${dir}.next`, { recursive: true });
    await rm(join(`${dir}.next`, 'state.json'));
    assert.deepEqual(await readCheckpoint(dir).then((c) => c && [c.dir, c.state.step]), [dir, 20]);
    // Killed after the next one was complete, before or between the renames: the next one, else the previous one.
    await save(30);
    await cp(dir, `${dir}.next`, { recursive: true });
    await rename(dir, `${dir}.prev`);
    assert.deepEqual(await readCheckpoint(dir).then((c) => c && [c.dir, c.state.step]), [`${dir}.next`, 30]);
    await rm(`${dir}.next`, { recursive: true });
    assert.deepEqual(await readCheckpoint(dir).then((c) => c && [c.dir, c.state.step]), [`${dir}.prev`, 30]);
    // The next write cleans up after the kill.
    await save(40);
    assert.deepEqual((await readdir(out)).sort(), ['checkpoint']);
    assert.equal((await readCheckpoint(dir))?.state.step, 40);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('the same seed trains the same model from scratch; another seed starts from other weights', async () => {
  const dirs: string[] = [];
  try {
    const { init: _unused, ...task } = await gridTask();
    const run = async (seed: number) => {
      const out = await mkdtemp(join(tmpdir(), 'emseg-train-seed-'));
      dirs.push(out);
      await train({
        role: 'membrane', ...task, out, steps: 4, batchSize: 4, cropPx: 32, lr: 1e-2, workers: 2, seed, augment: DEFAULT_AUGMENT, weighting: 'balanced', evalEvery: 4,
      });
      return (await loadModel(out)).weights.map((w) => Array.from(w));
    };
    const [a, b, c] = [await run(5), await run(5), await run(6)];
    assert.deepEqual(a, b, 'two runs with seed 5 end with the same weights, bit for bit');
    assert.notDeepEqual(a, c);
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
});

test('replicaDrift sees a difference in a trainable weight, not in the batch-norm statistics each replica keeps', async () => {
  await initTf();
  const model = buildModel({ kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1 });
  const a = getWeights(model).map((w) => w.slice());
  const statistics = model.weights.findIndex((w) => !w.trainable);
  const b = a.map((w, k) => (k === statistics ? w.map((v) => v + 1) : w.slice()));
  assert.equal(replicaDrift([a, b], model), 0);
  b[0][0] += 0.25;
  assert.ok(Math.abs(replicaDrift([a, b], model) - 0.25) < 1e-6);
  model.dispose();
});

test('with --precise-bn the saved model carries recomputed batch-norm statistics; the checkpoint keeps the running ones', async () => {
  const out = await mkdtemp(join(tmpdir(), 'emseg-train-precise-bn-'));
  try {
    await train({
      role: 'membrane', ...(await gridTask()),
      out, steps: 10, batchSize: 4, cropPx: 32, lr: 1e-2, workers: 2, seed: 3, augment: DEFAULT_AUGMENT, weighting: 'balanced', evalEvery: 10, preciseBn: 4,
    });
    const saved = await loadModel(join(out, 'snapshots', 'step-000010'));
    const ck = await loadModel(join(out, 'checkpoint'));
    assert.equal(saved.record.training?.preciseBnBatches, 4);
    let statistics = 0;
    saved.record.weights.forEach((e, i) => {
      const moving = /moving_(mean|variance)$/.test(e.name);
      if (!moving) return assert.deepEqual(Array.from(saved.weights[i]), Array.from(ck.weights[i]), `${e.name}: the same weights`);
      statistics++;
      assert.notDeepEqual(Array.from(saved.weights[i]), Array.from(ck.weights[i]), `${e.name}: recomputed`);
    });
    assert.ok(statistics > 0);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
