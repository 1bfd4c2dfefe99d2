// The pipeline cuts each round's map at the watershed thresholds stored with the models for that round (tuned on
// training slices), unless the caller gives its own; tiny random models, so only the plumbing is under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPipeline, type PipelineOptions } from './pipeline';
import { tinyModel } from './fixtures';
import type { ModelRecord } from './model-store';
import { writeTiffStack } from '../io';
import { initTf } from '../../ml/tfjs/backend';
import { pseudoRandom } from '../../ml/models/test-helpers';
import { segment } from '../../ml/segmentation';
import type { TunedSegmentation } from '../../ml/segmentation/tune';

async function one(opts: PipelineOptions): Promise<{ maps: Float32Array[]; labels: Uint32Array; notices: string[]; w: number; h: number }> {
  const notices: string[] = [];
  for await (const r of runPipeline({ ...opts, onNotice: (m) => notices.push(m) })) {
    return { maps: r.rounds.map((m) => m.data), labels: r.labels!.data as Uint32Array, notices, w: r.rounds[0].width, h: r.rounds[0].height };
  }
  throw new Error('no slice');
}

test('the pipeline segments with the thresholds stored for the rounds it runs; given thresholds win', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-pipeline-'));
  try {
    const membrane = await tinyModel(join(dir, 'membrane'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 1 }, 'membrane', undefined, 3);
    const refiner = await tinyModel(join(dir, 'refiner'), { kind: 'refiner', inChannels: 1, branchLayers: 2, channels: 3, headLayers: 1 }, 'refiner', 1, 4);
    const tuned: TunedSegmentation = {
      method: 'watershed', tunedOn: 'training slices 0-3', maps: 'test',
      perRound: [
        { round: 0, seedThreshold: 0.9, agglomerationThreshold: 0, vrand: 0.5, vinfo: 0.5 },
        { round: 1, seedThreshold: 0.95, agglomerationThreshold: 0.99, vrand: 0.5, vinfo: 0.5 },
      ],
    };
    const path = join(refiner, 'model.json');
    const record = JSON.parse(await readFile(path, 'utf8')) as ModelRecord;
    await writeFile(path, JSON.stringify({ ...record, segmentation: tuned }));
    const [w, h] = [40, 32];
    const stack = join(dir, 'stack.tif');
    await writeTiffStack(stack, [{ width: w, height: h, data: Uint8Array.from(pseudoRandom(w * h, 5, 255).map((v) => Math.abs(v))) }]);

    const r1 = await one({ stack, membraneModel: membrane, refiner, rounds: 1 });
    const map1 = { width: w, height: h, data: r1.maps[1] };
    const expected1 = segment(map1, { seedThreshold: 0.95, agglomerationThreshold: 0.99 });
    assert.notDeepEqual(Array.from(segment(map1).data), Array.from(expected1.data), 'the stored thresholds make a difference here');
    assert.deepEqual(Array.from(r1.labels), Array.from(expected1.data), 'round 1 is cut at its stored thresholds');
    assert.ok(r1.notices.some((n) => n.includes('chosen for round 1 on the training slices 0-3')), r1.notices.join('; '));

    // No refinement: the refiner is not run, but its round-0 row applies to the membrane model's map.
    const r0 = await one({ stack, membraneModel: membrane, refiner, rounds: 0 });
    const map0 = { width: w, height: h, data: r0.maps[0] };
    assert.equal(r0.maps.length, 1);
    assert.deepEqual(Array.from(r0.labels), Array.from(segment(map0, { seedThreshold: 0.9, agglomerationThreshold: 0 }).data));

    // A caller's threshold wins over the stored one; the other stored one still applies.
    const own = await one({ stack, membraneModel: membrane, refiner, rounds: 1, segment: { seedThreshold: 0.2 } });
    assert.deepEqual(Array.from(own.labels), Array.from(segment(map1, { seedThreshold: 0.2, agglomerationThreshold: 0.99 }).data));
    assert.ok(own.notices.some((n) => n.startsWith('segmentation: your thresholds')));

    // A round without a stored row: the defaults, and no notice.
    const r2 = await one({ stack, membraneModel: membrane, refiner, rounds: 2 });
    assert.deepEqual(Array.from(r2.labels), Array.from(segment({ width: w, height: h, data: r2.maps[2] }).data));
    assert.ok(!r2.notices.some((n) => n.startsWith('segmentation:')));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
