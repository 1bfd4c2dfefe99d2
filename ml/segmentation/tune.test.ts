// Tuning the watershed's thresholds: every grid point scored, the best kept, and a stored table looked up by round.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tuneSegmentation, tunedParams, type TunedSegmentation } from './tune';
import { asGroundTruth, type GroundTruthInput } from '../metrics';

// Two cells side by side (a true membrane at x = 15..16, P 0.7) and, inside the left cell, a faint spurious line at
// y = 10 (P 0.45) that cuts it in two unless it is merged away or seeded through.
function scene(): { map: { width: number; height: number; data: Float32Array }; gt: GroundTruthInput } {
  const [w, h] = [32, 24];
  const map = new Float32Array(w * h).fill(0.05);
  const gt = new Uint8Array(w * h).fill(255);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (x === 15 || x === 16) {
        map[i] = 0.7;
        gt[i] = 0;
      } else if (y === 10 && x < 15) {
        map[i] = 0.45;
      }
    }
  return { map: { width: w, height: h, data: map }, gt: asGroundTruth({ width: w, height: h, data: gt }, 0) };
}

test('tuneSegmentation scores every grid point and keeps the best; merging repairs a split a low seed threshold makes', () => {
  const { map, gt } = scene();
  const grid = { seedThreshold: [0.3, 0.5], agglomerationThreshold: [0, 0.5, 0.8] };
  const { best, points } = tuneSegmentation([{ map, gt }], grid, { minSeedSizePx: 4, minSizePx: 4 });
  assert.equal(points.length, 6);
  const at = (s: number, a: number) => points.find((p) => p.seedThreshold === s && p.agglomerationThreshold === a)!;
  assert.ok(at(0.3, 0).vrand < 0.99, `seeds below 0.3 split the left cell (${at(0.3, 0).vrand})`);
  assert.ok(at(0.3, 0).vrandSplit < at(0.3, 0).vrandMerge);
  assert.ok(at(0.3, 0.5).vrand > 0.99, 'merging below 0.5 removes the spurious line, keeps the membrane');
  assert.ok(at(0.3, 0.8).vrandMerge < 0.9, 'merging below 0.8 merges the two cells too');
  assert.equal(best.vrand, Math.max(...points.map((p) => p.vrand)));
  assert.deepEqual([best.seedThreshold, best.agglomerationThreshold], [0.3, 0.5], 'ties go to the first point in grid order');
  assert.throws(() => tuneSegmentation([], grid), /no slices/);
});

test('tunedParams finds the row of the rounds run, or none', () => {
  const tuned: TunedSegmentation = {
    method: 'watershed', tunedOn: 'training slices 0-19', maps: 'm',
    perRound: [{ round: 0, seedThreshold: 0.2, agglomerationThreshold: 0.8, vrand: 0.98, vinfo: 0.99 }, { round: 2, seedThreshold: 0.1, agglomerationThreshold: 0.75, vrand: 0.98, vinfo: 0.99 }],
  };
  assert.deepEqual(tunedParams(tuned, 2), { seedThreshold: 0.1, agglomerationThreshold: 0.75 });
  assert.deepEqual(tunedParams(tuned, 0), { seedThreshold: 0.2, agglomerationThreshold: 0.8 });
  assert.equal(tunedParams(tuned, 1), null);
  assert.equal(tunedParams(undefined, 0), null);
});
