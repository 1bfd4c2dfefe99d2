// Boundary absorption ("border thinning") before scoring: predicted boundary pixels (id 0) take the largest id in their
// 3×3 neighbourhood, repeated until none is left — the grey dilation used by the ISBI 2012 evaluation scripts in
// Python (thin_boundaries: im[zeros] = maximum_filter(im, 3)[zeros] until no zero remains). It makes the scores
// indifferent to how thick a method draws its boundaries. (Fiji's getMaximalVRandAfterThinning thins with a
// watershed instead; both end with every pixel in a segment, and they differ only in which neighbour a boundary pixel
// joins.)
import type { Labels } from '../types';

/**
 * Returns a copy of labels with every 0 pixel absorbed. Each round updates all pixels of the current front at once from
 * the previous round's values, exactly as the repeated maximum filter would, but visits only the front.
 * If the image has no segment at all, nothing can be absorbed and the copy is all 0; the scores then treat every
 * pixel as its own segment (see scoreLabels).
 */
export function absorbBoundaries(labels: Labels): Labels {
  const { width, height } = labels;
  const out = Uint32Array.from(labels.data);
  const n = width * height;
  const queued = new Uint8Array(n);
  let front = new Int32Array(16);
  let frontLength = 0;
  let nextFront = new Int32Array(16);
  let nextLength = 0;
  const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
    const b = new Int32Array(Math.min(n, a.length * 2));
    b.set(a);
    return b;
  };

  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      if (out[i] !== 0 || !hasLabelledNeighbour(out, i, x, y, width, height)) continue;
      queued[i] = 1;
      if (frontLength === front.length) front = grow(front);
      front[frontLength++] = i;
    }
  }
  let values = new Uint32Array(Math.max(16, frontLength));
  while (frontLength > 0) {
    if (values.length < frontLength) values = new Uint32Array(front.length);
    for (let k = 0; k < frontLength; k++) {
      const i = front[k];
      const x = i % width;
      values[k] = neighbourhoodMax(out, i, x, (i - x) / width, width, height);
    }
    for (let k = 0; k < frontLength; k++) out[front[k]] = values[k];
    nextLength = 0;
    for (let k = 0; k < frontLength; k++) {
      const i = front[k];
      const x = i % width;
      const y = (i - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          const j = yy * width + xx;
          if (out[j] !== 0 || queued[j]) continue;
          queued[j] = 1;
          if (nextLength === nextFront.length) nextFront = grow(nextFront);
          nextFront[nextLength++] = j;
        }
      }
    }
    [front, nextFront] = [nextFront, front];
    frontLength = nextLength;
  }
  return { width, height, data: out };
}

function hasLabelledNeighbour(a: Uint32Array, i: number, x: number, y: number, width: number, height: number): boolean {
  return neighbourhoodMax(a, i, x, y, width, height) !== 0;
}

function neighbourhoodMax(a: Uint32Array, i: number, x: number, y: number, width: number, height: number): number {
  let max = 0;
  const x0 = x > 0 ? -1 : 0;
  const x1 = x + 1 < width ? 1 : 0;
  const y0 = y > 0 ? -1 : 0;
  const y1 = y + 1 < height ? 1 : 0;
  for (let dy = y0; dy <= y1; dy++) {
    const row = i + dy * width;
    for (let dx = x0; dx <= x1; dx++) if (a[row + dx] > max) max = a[row + dx];
  }
  return max;
}
