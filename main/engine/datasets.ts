// Turning stacks into training and validation data: normalised raw slices with membrane targets.
import { openStack, StackError } from '../io';
import type { Image2D } from '../../ml/types';
import { normalizeSlice, membraneTarget } from '../../ml/train/normalize';
import type { TrainingSlice } from '../../ml/train/augment';
import type { ValidationSlice } from './train';
import { resample } from '../../ml/infer/resample';
import { contextIndices, interleaved } from '../../ml/infer/z-context';

export interface LabelledSlice {
  index: number;
  raw: Image2D;
  label: Image2D;
}

/** What a model's training record says about its data (and its model card shows). */
export interface TrainingDataRecord {
  images: string;
  labels: string;
  trainSlices: string;
  valSlices: string;
  labelMembraneValue: 0 | 255;
}

/** Reads the given slices of an image stack and its label stack, checking that they match. */
export async function loadLabelledSlices(images: string, labels: string, indices: number[] | 'all'): Promise<LabelledSlice[]> {
  const img = await openStack(images);
  const lab = await openStack(labels);
  try {
    if (img.info.depth !== lab.info.depth) {
      throw new StackError(labels, `has ${lab.info.depth} slices but the image stack ${images} has ${img.info.depth}`);
    }
    if (img.info.width !== lab.info.width || img.info.height !== lab.info.height) {
      throw new StackError(labels, `slices are ${lab.info.width}×${lab.info.height} but the image stack's are ${img.info.width}×${img.info.height}`);
    }
    const list = indices === 'all' ? Array.from({ length: img.info.depth }, (_, i) => i) : indices;
    const out: LabelledSlice[] = [];
    for (const z of list) {
      if (z >= img.info.depth) throw new StackError(images, `slice ${z} requested but the stack has ${img.info.depth} (0-${img.info.depth - 1})`);
      out.push({ index: z, raw: await img.readSlice(z), label: await lab.readSlice(z) });
    }
    return out;
  } finally {
    await img.close();
    await lab.close();
  }
}

/**
 * A labelled slice resized by (fx, fy): the raw slice with the linear resampler the pipeline uses, the labels as a
 * membrane mask resampled the same way and cut at ½ when enlarging, at ¼ when shrinking (a one-pixel membrane halved
 * keeps ⅜ of its weight, so it stays a membrane). Labels come back in the stack's convention (membraneValue and
 * 255 − membraneValue).
 */
export function resizeLabelled(s: LabelledSlice, fx: number, fy: number, membraneValue: 0 | 255): LabelledSlice {
  const { width: w, height: h } = s.raw;
  const ow = Math.max(1, Math.round(w * fx));
  const oh = Math.max(1, Math.round(h * fy));
  const raw = resample(Float32Array.from(s.raw.data), 1, h, w, oh, ow);
  const mask = resample(Float32Array.from(membraneTarget(s.label, membraneValue)), 1, h, w, oh, ow);
  const cut = fx * fy < 1 ? 0.25 : 0.5;
  const label = Uint8Array.from(mask, (v) => (v >= cut ? membraneValue : 255 - membraneValue));
  return { index: s.index, raw: { width: ow, height: oh, data: raw }, label: { width: ow, height: oh, data: label } };
}

export function toTrainingSlice(s: LabelledSlice, membraneValue: number): TrainingSlice {
  return { width: s.raw.width, height: s.raw.height, channels: 1, raw: normalizeSlice(s.raw), target: membraneTarget(s.label, membraneValue) };
}

export function toValidationSlice(s: LabelledSlice): ValidationSlice {
  return { index: s.index, width: s.raw.width, height: s.raw.height, channels: 1, input: normalizeSlice(s.raw) };
}

/**
 * Each slice's z-context planes (ml/infer/z-context.ts): its normalised neighbours z − k … z + k taken from the same
 * set only, so that a training slice never reads a validation slice and the validation slices are read as a stack of
 * their own (as `emseg segment` reads the sample stack of slices 20–29).
 */
export function contextPlanes(set: LabelledSlice[], k: number): Float32Array[][] {
  const norm = new Map(set.map((s) => [s.index, normalizeSlice(s.raw)] as const));
  return set.map((s) => contextIndices(s.index, k, (i) => norm.has(i)).map((i) => norm.get(i) as Float32Array));
}

/** Training slices for a membrane model with z-context k (0: the slice alone). */
export function toTrainingSlices(set: LabelledSlice[], membraneValue: number, k = 0): TrainingSlice[] {
  return contextPlanes(set, k).map((planes, j) => {
    const s = set[j];
    return { width: s.raw.width, height: s.raw.height, channels: planes.length, raw: interleaved(planes), target: membraneTarget(s.label, membraneValue) };
  });
}

/** Validation slices for a membrane model with z-context k (0: the slice alone). */
export function toValidationSlices(set: LabelledSlice[], k = 0): ValidationSlice[] {
  return contextPlanes(set, k).map((planes, j) => ({ index: set[j].index, width: set[j].raw.width, height: set[j].raw.height, channels: planes.length, input: interleaved(planes) }));
}

/** Interleave a map and a normalised raw slice (HWC, 2 channels) — the refiner's training input layout. */
export function interleave(map: Float32Array, raw: Float32Array | null): { data: Float32Array; channels: number } {
  const planes = raw ? [map, raw] : [map];
  return { data: interleaved(planes), channels: planes.length };
}
