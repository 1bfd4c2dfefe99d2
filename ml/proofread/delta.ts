// The unit of undo: one edit of one slice as the pixels it changed, with their values before and after. A brush
// stroke, a fill, a merge or a split is one delta, however many pixels it touches; applying and reverting are exact
// inverses, so unbounded undo costs memory in proportion to what was edited, never to the slice size.
//
// Apply and revert check that the pixels hold the values the delta expects: a delta replayed onto the wrong state
// (a damaged project, a bug in the order of replay) fails loudly instead of silently corrupting labels.
//
// Some steps change several slices at once (accepting a job's labels on every slice that has a proposal): their
// deltas are undone and redone together by applyDeltas / revertDeltas, all or nothing.

export interface LabelDelta {
  /** Slice index. */
  z: number;
  /** Changed pixel indices (y·width + x), strictly increasing. */
  indices: Uint32Array;
  before: Uint32Array;
  after: Uint32Array;
}

export class DeltaMismatchError extends Error {
  override name = 'DeltaMismatchError';
}

/**
 * The delta that sets `values[k]` at `indices[k]` (strictly increasing, each < data.length), keeping only the pixels
 * whose value really changes.
 */
export function deltaFromChanges(z: number, data: Uint32Array, indices: ArrayLike<number>, values: ArrayLike<number> | number): LabelDelta {
  const constant = typeof values === 'number';
  let count = 0;
  for (let k = 0; k < indices.length; k++) if (data[indices[k]] !== (constant ? values : values[k])) count++;
  const out = { z, indices: new Uint32Array(count), before: new Uint32Array(count), after: new Uint32Array(count) };
  let prev = -1;
  for (let k = 0, m = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i > prev) || i >= data.length) throw new RangeError(`deltaFromChanges: index ${i} out of order or outside the slice`);
    prev = i;
    const v = constant ? values : values[k];
    if (data[i] === v) continue;
    out.indices[m] = i;
    out.before[m] = data[i];
    out.after[m] = v;
    m++;
  }
  return out;
}

/** The delta between two states of one slice. */
export function deltaBetween(z: number, before: Uint32Array, after: Uint32Array): LabelDelta {
  if (before.length !== after.length) throw new RangeError('deltaBetween: slices differ in size');
  let count = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) count++;
  const d = { z, indices: new Uint32Array(count), before: new Uint32Array(count), after: new Uint32Array(count) };
  for (let i = 0, m = 0; i < before.length; i++) {
    if (before[i] === after[i]) continue;
    d.indices[m] = i;
    d.before[m] = before[i];
    d.after[m] = after[i];
    m++;
  }
  return d;
}

function swap(data: Uint32Array, d: LabelDelta, from: Uint32Array, to: Uint32Array, what: string): void {
  const { indices } = d;
  if (from.length !== indices.length || to.length !== indices.length) throw new RangeError(`${what}: delta arrays differ in length`);
  // Check everything before writing anything, so a mismatch leaves the slice as it was.
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (i >= data.length) throw new RangeError(`${what}: pixel ${i} outside the slice`);
    if (data[i] !== from[k]) throw new DeltaMismatchError(`${what}: slice ${d.z} pixel ${i} holds ${data[i]}, the delta expects ${from[k]}`);
  }
  for (let k = 0; k < indices.length; k++) data[indices[k]] = to[k];
}

export function applyDelta(data: Uint32Array, d: LabelDelta): void {
  swap(data, d, d.before, d.after, 'applyDelta');
}

export function revertDelta(data: Uint32Array, d: LabelDelta): void {
  swap(data, d, d.after, d.before, 'revertDelta');
}

/**
 * Applies a group of deltas in order, all or none: when one does not fit its slice, the ones applied before it are
 * reverted before the error is thrown. `slice(z)` gives the pixels of slice z (a group may touch one slice twice).
 */
export function applyDeltas(slice: (z: number) => Uint32Array, ds: readonly LabelDelta[]): void {
  inTurn(ds, (d) => applyDelta(slice(d.z), d), (d) => revertDelta(slice(d.z), d));
}

/** Reverts a group of deltas in reverse order, all or none (the inverse of applyDeltas). */
export function revertDeltas(slice: (z: number) => Uint32Array, ds: readonly LabelDelta[]): void {
  inTurn([...ds].reverse(), (d) => revertDelta(slice(d.z), d), (d) => applyDelta(slice(d.z), d));
}

function inTurn(ds: readonly LabelDelta[], step: (d: LabelDelta) => void, undo: (d: LabelDelta) => void): void {
  let k = 0;
  try {
    for (; k < ds.length; k++) step(ds[k]);
  } catch (e) {
    // Delta k changed nothing (swap checks before it writes): undo the ones before it, newest first.
    for (let j = k - 1; j >= 0; j--) undo(ds[j]);
    throw e;
  }
}

/** Bytes a delta holds in memory (three uint32 per pixel). */
export function deltaBytes(d: LabelDelta): number {
  return d.indices.byteLength + d.before.byteLength + d.after.byteLength;
}
