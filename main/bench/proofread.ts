// Benchmark of proofreading on a 4096×4096 label slice (the size): brush stroke latency (tool + journal append
// + apply, what the main side does between pointer-up and the answer), merge, split by seeded watershed, autosave
// (a compaction writing the 64 MiB slice and the history) and reopening (snapshot and history).
// The slice is synthetic: square cells of 64 px separated by 1-px boundaries, with a membrane map that is 1 on the
// boundaries and noisy below 0.3 inside, so split has real basins to flood. Prints JSON when run directly:
//   node --import tsx main/bench/proofread.ts
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mergeSegments, paintStroke, splitSegment, strokePixels } from '../../ml/proofread';
import { maxLabel } from '../../ml/segmentation';
import type { MembraneMap } from '../../ml/types';
import { Project } from '../project/store';

const SIZE = 4096;
const CELL = 64;
const STROKES = 30;

function cells(): Uint32Array {
  const out = new Uint32Array(SIZE * SIZE);
  const perRow = SIZE / CELL;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      out[y * SIZE + x] = x % CELL === 0 || y % CELL === 0 ? 0 : 1 + Math.floor(y / CELL) * perRow + Math.floor(x / CELL);
    }
  }
  return out;
}

function membrane(): MembraneMap {
  const data = new Float32Array(SIZE * SIZE);
  let s = 7;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[y * SIZE + x] = x % CELL === 0 || y % CELL === 0 ? 1 : 0.3 * (s / 2 ** 32);
    }
  }
  return { width: SIZE, height: SIZE, data };
}

const ms = (x: number): number => Math.round(x * 100) / 100;

function percentile(xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

export async function benchProofread(): Promise<Record<string, number | string>> {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-bench-proofread-'));
  try {
    const initial = cells();
    const map = membrane();
    // No timers: the benchmark compacts when it measures compaction.
    const opts = { syncIntervalMs: 3_600_000, compactIntervalMs: 3_600_000 };
    const p = await Project.create(dir, { stackPath: '/bench/stack.tif', width: SIZE, height: SIZE, depth: 1, initial: async (layer) => (layer === 'labels' ? initial : null) }, opts);
    const out: Record<string, number | string> = { slice: `${SIZE}×${SIZE} uint32, ${(SIZE / CELL) ** 2} cells` };

    // Strokes of 60 pointer samples over ~600 px with a 10 px brush: a quick proofreading stroke.
    const times: number[] = [];
    let px = 0;
    for (let k = 0; k < STROKES; k++) {
      const pts: number[] = [];
      const x0 = 200 + ((k * 977) % 3200);
      const y0 = 200 + ((k * 613) % 3200);
      for (let i = 0; i < 60; i++) pts.push(x0 + i * 10, y0 + 40 * Math.sin(i / 6));
      const t0 = performance.now();
      const e = await p.edit('labels', 0, (l, locked) => paintStroke(l, 0, pts, 10, 100_000 + k, locked));
      times.push(performance.now() - t0);
      px += e?.deltas[0].indices.length ?? 0;
    }
    out['stroke.medianMs'] = ms(percentile(times, 0.5));
    out['stroke.p95Ms'] = ms(percentile(times, 0.95));
    out['stroke.meanPx'] = Math.round(px / STROKES);

    // Merge an 8×8 block of cells (64 segments, ~260 000 px) into one, then split it back along the map with two seeds.
    const ids: number[] = [];
    const perRow = SIZE / CELL;
    for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) ids.push(1 + (40 + r) * perRow + 40 + c);
    let t0 = performance.now();
    await p.edit('labels', 0, (l, locked) => mergeSegments(l, 0, ids, locked));
    out['merge64.ms'] = ms(performance.now() - t0);
    const cx = 40 * CELL;
    const cy = 40 * CELL;
    const seedA = strokePixels(SIZE, SIZE, [cx + 30, cy + 30], 1.5);
    const seedB = strokePixels(SIZE, SIZE, [cx + 7 * CELL + 30, cy + 7 * CELL + 30], 1.5);
    t0 = performance.now();
    const e = await p.edit('labels', 0, (l, locked) => splitSegment(l, map, 0, ids[0], [seedA, seedB], maxLabel(l.data) + 1, locked));
    out['split.ms'] = ms(performance.now() - t0);
    out['split.segmentPx'] = e ? (await p.slice('labels', 0)).data.filter((v) => v === ids[0]).length + e.deltas[0].indices.length : 0;

    t0 = performance.now();
    await p.compact();
    out['autosave.ms'] = ms(performance.now() - t0);
    out['history.MiB'] = Math.round((p.historyBytes() / 2 ** 20) * 10) / 10;
    await p.close();
    // Reopening: project.json, the history with every delta above, and the 64 MiB slice (checksum verified).
    t0 = performance.now();
    const q = await Project.open(dir, opts);
    await q.slice('labels', 0);
    out['reopen.ms'] = ms(performance.now() - t0);
    await q.close();
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(JSON.stringify(await benchProofread(), null, 2));
}
