// Proofreading compute: label deltas (the unit of undo), the editing tools and live slice quality. Pure functions on
// typed arrays; the project store (main/project/) owns the label state and applies what these return.
export { applyDelta, revertDelta, applyDeltas, revertDeltas, deltaBetween, deltaFromChanges, deltaBytes, DeltaMismatchError, type LabelDelta } from './delta';
export { strokePixels, paintStroke, fillRegion, mergeSegments, deleteSegment, splitSegment, cutSegment, replaceLabels, membraneFromRaw, ProofreadError } from './tools';
export { sliceQuality, type QualityError, type SliceQuality } from './quality';
