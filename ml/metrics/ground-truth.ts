// Ground truth in the two forms EMSeg meets it, and the segments the metrics compare against.
//  - 'membrane': a binary label image (ISBI 2012: 0 = membrane, 255 = interior). Segments are the 4-connected
//    components of the non-membrane pixels, as in the ISBI challenge's Fiji scoring code.
//  - 'instance': a uint32 label image, 0 = boundary, any other id = one neuron (ids are used as given, so one id in
//    two disconnected pieces stays one segment, as in 3D ground truth cut into slices).
// Only pixels inside ground-truth segments are counted by the Rand and information scores ("foreground-restricted").
import type { Image2D, Labels } from '../types';
import { checkImageSize, connectedComponents, relabelConsecutive } from '../segmentation/components';

export type GroundTruth =
  | { kind: 'membrane'; image: Image2D; /** Value of the membrane pixels (ISBI: 0). */ membraneValue: number }
  | { kind: 'instance'; labels: Labels };

/** Ground truth turned into segments once, to score many predictions against it (threshold sweeps). */
export interface GroundTruthSegments {
  kind: 'segments';
  width: number;
  height: number;
  /** Segment id per pixel, 1..count; 0 = ground-truth boundary, not counted. */
  segments: Uint32Array;
  count: number;
  /** Number of counted (non-boundary) pixels. */
  pixels: number;
}

export type GroundTruthInput = GroundTruth | GroundTruthSegments;

/**
 * Wraps a bare image: uint32 data is instance ground truth, anything else a binary membrane image whose membrane
 * pixels have membraneValue (default 0, the ISBI convention).
 */
export function asGroundTruth(image: Image2D, membraneValue = 0): GroundTruth {
  if (image.data instanceof Uint32Array) return { kind: 'instance', labels: image as Labels };
  return { kind: 'membrane', image, membraneValue };
}

export function groundTruthSegments(gt: GroundTruthInput): GroundTruthSegments {
  if (gt.kind === 'segments') return gt;
  let width: number;
  let height: number;
  let segments: Uint32Array;
  let count: number;
  if (gt.kind === 'membrane') {
    ({ width, height } = gt.image);
    const data = gt.image.data;
    checkImageSize(data.length, width, height, 'ground truth');
    const interior = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) interior[i] = data[i] === gt.membraneValue ? 0 : 1;
    ({ labels: segments, count } = connectedComponents(interior, width, height, 4));
  } else {
    ({ width, height } = gt.labels);
    checkImageSize(gt.labels.data.length, width, height, 'ground truth');
    segments = Uint32Array.from(gt.labels.data);
    count = relabelConsecutive(segments);
  }
  let pixels = 0;
  for (let i = 0; i < segments.length; i++) if (segments[i] !== 0) pixels++;
  return { kind: 'segments', width, height, segments, count, pixels };
}
