// Refiner training plumbing on tiny data: training maps chosen among the membrane model's snapshots, two stages (the
// second also trains on round-1 maps), the number of rounds chosen on validation and stored with an exported model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainRefiner } from './refiner-training';
import { orderTrainingMaps } from './training-maps';
import { saveModel, weightEntries, type ModelRecord } from './model-store';
import type { LabelledSlice } from './datasets';
import { buildModel, type UNetConfig } from '../../ml/models';
import { initTf } from '../../ml/tfjs/backend';
import { getWeights } from '../../ml/train/trainer';
import { perturbBatchNorm } from '../../ml/models/test-helpers';
import { Rng } from '../../ml/train/rng';
import { DEFAULT_TUNING_GRID } from '../../ml/segmentation/tune';

function slice(index: number, size = 48): LabelledSlice {
  const rng = new Rng(index);
  const raw = new Uint8Array(size * size);
  const label = new Uint8Array(size * size);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const m = x % 12 < 2 || y % 12 < 2;
      label[y * size + x] = m ? 0 : 255;
      raw[y * size + x] = Math.max(0, Math.min(255, (m ? 60 : 170) + 30 * rng.normal()));
    }
  return { index, raw: { width: size, height: size, data: raw }, label: { width: size, height: size, data: label } };
}

/** A tiny membrane training folder: the final model and two snapshots of different weights (+ `copies` of the final one). */
async function membraneRun(membrane: string, copies: string[] = []): Promise<void> {
  const config: UNetConfig = { kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1 };
  for (const [i, sub] of ['snapshots/step-000010', 'snapshots/step-000020', ''].entries()) {
    const m = buildModel(config);
    perturbBatchNorm(m);
    const record: ModelRecord = { format: 'emseg-model', version: 1, role: 'membrane', config, weights: weightEntries(m), training: { note: `model ${i}` } };
    for (const dir of sub ? [sub] : ['', ...copies]) await saveModel(join(membrane, dir), record, getWeights(m));
    m.dispose();
  }
}

test('refiner training: matched training maps, staged rounds, rounds chosen on validation', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-refiner-'));
  try {
    const membrane = join(dir, 'membrane');
    await membraneRun(membrane);
    const logs: string[] = [];
    const out = join(dir, 'refiner');
    const result = await trainRefiner({
      membrane, trainSet: [0, 1, 2].map((i) => slice(i)), valSet: [7, 8].map((i) => slice(i)), membraneValue: 0, out, useRaw: true,
      config: { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 3, headLayers: 1 }, stages: 2, stepsPerStage: 4, maxRounds: 2,
      batchSize: 2, cropPx: 24, lr: 1e-3, workers: 1, seed: 1, evalEvery: 2, log: (l) => logs.push(l),
    });
    assert.ok(logs.filter((l) => l.startsWith('snapshot step-')).length === 2, 'both snapshots were scored');
    assert.ok(logs.some((l) => l.startsWith('stage 2/2: 6 training maps')), 'stage 2 trains on rounds 0 and 1');
    assert.equal(result.perRound.length, 3);
    assert.ok(result.rounds >= 0 && result.rounds <= 2);
    for (const r of result.perRound) assert.ok(r.labelsVrand > 0 && r.labelsVrand <= 1, 'every round\'s labels are scored at its tuned thresholds');
    const best = Math.max(...result.perRound.map((r) => r.labelsVrand));
    assert.equal(result.perRound[result.rounds].labelsVrand, best, 'the chosen number of rounds has the best validation V_rand of the labels');
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as ModelRecord;
    assert.equal(record.role, 'refiner');
    assert.equal(record.rounds, result.rounds);
    assert.equal(record.onnx, 'model.onnx');
    await access(join(out, 'model.onnx'));
    assert.ok(typeof (record.training as Record<string, unknown>).trainingMapsVrand === 'number');
    // The watershed's thresholds, chosen on the training maps for rounds 0..maxRounds, stored with the model.
    assert.deepEqual(record.segmentation?.perRound.map((r) => r.round), [0, 1, 2]);
    for (const r of record.segmentation!.perRound) {
      assert.ok(DEFAULT_TUNING_GRID.seedThreshold.includes(r.seedThreshold) && DEFAULT_TUNING_GRID.agglomerationThreshold.includes(r.agglomerationThreshold));
      assert.ok(r.vrand > 0 && r.vrand <= 1);
    }
    assert.match(record.segmentation!.tunedOn, /training slices 0-2/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('refiner training on the maps of several membrane snapshots, the final model counted once', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-refiner-'));
  try {
    const membrane = join(dir, 'membrane');
    // step-000030 holds the final model's own weights (a training run's best step is also a snapshot).
    await membraneRun(membrane, ['snapshots/step-000030']);
    const logs: string[] = [];
    const out = join(dir, 'refiner');
    await trainRefiner({
      membrane, trainSet: [0, 1].map((i) => slice(i)), valSet: [7].map((i) => slice(i)), membraneValue: 0, out, useRaw: false,
      config: { kind: 'refiner', inChannels: 1, branchLayers: 2, channels: 3, headLayers: 1 }, stages: 2, stepsPerStage: 2, maxRounds: 1,
      batchSize: 2, cropPx: 24, lr: 1e-3, workers: 1, seed: 1, evalEvery: 2, mapSources: 4, log: (l) => logs.push(l),
    });
    assert.ok(logs.some((l) => l.startsWith('snapshot step-000030:') && l.endsWith(', the final model itself')));
    assert.ok(logs.includes('only 3 set(s) of training maps available (asked for 4)'));
    assert.equal(logs.filter((l) => l.startsWith('training maps from ')).length, 3);
    // Three sets of two slices each, then their round-1 maps as well.
    assert.ok(logs.some((l) => l.startsWith('stage 1/2: 6 training maps')));
    assert.ok(logs.some((l) => l.startsWith('stage 2/2: 12 training maps')));
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as ModelRecord;
    const training = record.training as Record<string, unknown>;
    assert.equal(training.trainingMapSets, 3);
    assert.equal((training.trainingMapsFrom as string).split(', ').length, 3);
    assert.ok(!(training.trainingMapsFrom as string).includes('step-000030'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("training maps: the snapshot closest to the validation score, or with ownMaps the final model's own when they are no better than that", () => {
  const set = (source: string, trainVrand: number) => ({ maps: [], source, trainVrand });
  const own = set('final', 0.99);
  const snaps = [set('s100', 0.95), set('s200', 0.962), set('s300', 0.97)];
  assert.deepEqual(orderTrainingMaps([own, ...snaps], 0.96, 2).map((s) => s.source), ['s200', 's100'], 'its own maps are too good: the closest snapshots');
  const weak = set('final', 0.955);
  assert.deepEqual(orderTrainingMaps([weak, ...snaps], 0.96, 2).map((s) => s.source), ['s200', 'final'], 'by default the closest, whatever their model');
  assert.deepEqual(orderTrainingMaps([weak, ...snaps], 0.96, 2, true).map((s) => s.source), ['final', 's200'], 'its own maps are as wrong as unseen ones: they come first');
  assert.deepEqual(orderTrainingMaps([set('final', 0.96), ...snaps], 0.96, 1, true).map((s) => s.source), ['final']);
  assert.deepEqual(orderTrainingMaps([own, ...snaps], 0.96, 1, true).map((s) => s.source), ['s200'], 'too good: not preferred even when asked');
});
