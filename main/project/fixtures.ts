// A deterministic sequence of proofreading operations on a small two-slice project, shared by the store tests, the
// crash test's child process and its checker: op i is always the same edit, so any prefix of the sequence can be
// recomputed in memory and compared with what a project on disk holds.
import { applyDelta, paintStroke, revertDelta, type LabelDelta } from '../../ml/proofread';
import type { Labels } from '../../ml/types';

export const FIXTURE = { width: 64, height: 64, depth: 2 } as const;

export type FixtureOp = { kind: 'paint'; z: number; make: (l: Labels, locked: ReadonlySet<number>) => LabelDelta } | { kind: 'undo' } | { kind: 'redo' };

/** Initial labels: vertical stripes of 8 px, ids 1..8, different per slice. */
export function fixtureInitial(z: number): Uint32Array {
  const { width, height } = FIXTURE;
  const out = new Uint32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[y * width + x] = 1 + ((Math.floor(x / 8) + z) % 8);
  return out;
}

function rand(i: number, k: number): number {
  let s = (Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(k + 7, 0x85ebca6b)) >>> 0;
  s = Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) >>> 0;
  s = Math.imul(s ^ (s >>> 12), 0x297a2d39) >>> 0;
  return ((s ^ (s >>> 15)) >>> 0) / 2 ** 32;
}

/** Operation i: mostly brush strokes with changing labels and sizes; every 5th an undo, every 7th a redo. */
export function fixtureOp(i: number): FixtureOp {
  if (i % 5 === 4) return { kind: 'undo' };
  if (i % 7 === 6) return { kind: 'redo' };
  const z = i % FIXTURE.depth;
  const pts: number[] = [];
  for (let k = 0; k < 4; k++) pts.push(rand(i, 2 * k) * FIXTURE.width, rand(i, 2 * k + 1) * FIXTURE.height);
  const label = 1 + Math.floor(rand(i, 99) * 12);
  const radius = 0.5 + rand(i, 98) * 4;
  return { kind: 'paint', z, make: (l, locked) => paintStroke(l, z, pts, radius, label, locked) };
}

/** The first n fixture operations applied in memory, without any store: what a project must hold after them. */
export function fixtureStateAfter(n: number): { slices: Uint32Array[]; undo: number; redo: number } {
  const slices = Array.from({ length: FIXTURE.depth }, (_, z) => fixtureInitial(z));
  const undo: LabelDelta[] = [];
  let redo: LabelDelta[] = [];
  for (let i = 0; i < n; i++) {
    const op = fixtureOp(i);
    if (op.kind === 'paint') {
      const d = op.make({ width: FIXTURE.width, height: FIXTURE.height, data: slices[op.z] }, new Set());
      if (d.indices.length === 0) continue;
      applyDelta(slices[op.z], d);
      undo.push(d);
      redo = [];
    } else {
      const d = (op.kind === 'undo' ? undo : redo).pop();
      if (!d) continue;
      if (op.kind === 'undo') revertDelta(slices[d.z], d);
      else applyDelta(slices[d.z], d);
      (op.kind === 'undo' ? redo : undo).push(d);
    }
  }
  return { slices, undo: undo.length, redo: redo.length };
}
