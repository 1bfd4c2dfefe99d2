// A batch cuts its maps at the watershed thresholds stored with the model for the rounds it runs, as `emseg segment`
// does — also with --refine-rounds 0 (the refiner's round-0 row) — unless the user gives thresholds; the notice that
// says so is shown once, with the number of further items that gave it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBatch } from './run';
import type { BatchParams } from './manifest';
import { writePngs, writeTinyModels } from './fixtures';
import type { ModelRecord } from '../engine/model-store';
import type { TunedSegmentation } from '../../ml/segmentation/tune';
import type { CommandContext } from '../cli/command';
import { batchParams } from '../cli/commands/batch';

test('batch uses the thresholds stored for the rounds it runs, round 0 included; given thresholds win', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-batch-thresholds-'));
  try {
    const models = await writeTinyModels(join(dir, 'models'));
    const refiner = join(models, 'refiner');
    const tuned: TunedSegmentation = {
      method: 'watershed', tunedOn: 'training slices 0-3', maps: 'test',
      perRound: [
        { round: 0, seedThreshold: 0.9, agglomerationThreshold: 0, vrand: 0.5, vinfo: 0.5 },
        { round: 1, seedThreshold: 0.95, agglomerationThreshold: 0.99, vrand: 0.5, vinfo: 0.5 },
      ],
    };
    const record = JSON.parse(await readFile(join(refiner, 'model.json'), 'utf8')) as ModelRecord;
    await writeFile(join(refiner, 'model.json'), JSON.stringify({ ...record, segmentation: tuned }));
    const input = join(dir, 'in');
    await writePngs(input, 3, 40, 32);

    const run = async (name: string, params: Partial<BatchParams>): Promise<string[]> => {
      const notices: string[] = [];
      const summary = await runBatch({
        input, outDir: join(dir, name), models: { membrane: join(models, 'membrane'), refiner },
        params: { refineRounds: null, segment: {}, tta: false, tilePx: 1024, writeRounds: false, ...params },
        workers: 1, threads: 1, onNotice: (m) => notices.push(m),
      });
      assert.equal(summary.done, 3);
      return notices.filter((n) => n.includes('segmentation:'));
    };

    const stored = await run('stored', {});
    assert.equal(stored.length, 2, stored.join('\n'));
    assert.match(stored[0], /^\d: segmentation: watershed seeds at P < 0.95, agglomeration below 0.99 \(chosen for round 1 on the training slices 0-3/);
    assert.match(stored[1], /^2 more item\(s\): segmentation: watershed seeds at P < 0.95/);

    const round0 = await run('round0', { refineRounds: 0 });
    assert.match(round0[0], /segmentation: watershed seeds at P < 0.9, agglomeration below 0 \(chosen for round 0/);

    const own = await run('own', { segment: { seedThreshold: 0.2 } });
    assert.match(own[0], /segmentation: your thresholds, not the ones stored with the model/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('emseg batch passes on only the segmentation options given, so the stored thresholds are not overridden by defaults', () => {
  const ctx = (values: CommandContext['values']): CommandContext => ({ values, positionals: [], quiet: true, out: () => undefined, err: () => undefined });
  assert.deepEqual(batchParams(ctx({})).segment, {});
  assert.deepEqual(batchParams(ctx({ 'seed-threshold': '0.2', 'min-size': '4' })).segment, { seedThreshold: 0.2, minSizePx: 4 });
});
