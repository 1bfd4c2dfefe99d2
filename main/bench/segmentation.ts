// Benchmark of the segmentation engine and the ISBI metrics on the 30 ISBI 2012 training slices (512², 7.9 Mpx).
// The input is not a CNN output (none is bundled): it is a soft membrane map made from the ground truth (see
// softMembraneMap), which exercises the same code paths. Prints JSON when run directly:
//   node --import tsx main/bench/segmentation.ts
import { fileURLToPath } from 'node:url';
import { openStack } from '../io';
import { distanceTransform, watershed, agglomerate, segment, DEFAULT_SEGMENT_PARAMS } from '../../ml/segmentation';
import { asGroundTruth, groundTruthSegments, meanScores, scoreLabels, type GroundTruthSegments, type SegmentationScores } from '../../ml/metrics';
import type { Image2D, Labels, MembraneMap } from '../../ml/types';

export const ISBI_TRAIN_LABELS = fileURLToPath(new URL('../../../shared/data/isbi2012/train/label', import.meta.url));

/**
 * A stand-in membrane map from binary ground truth: P = exp(−d²/2σ²) with d the distance (px) to the nearest
 * ground-truth membrane pixel (1 on membranes, fading into the cells), plus seeded uniform noise of ±noise, clamped to
 * [0, 1]. Noise makes the watershed find spurious minima the agglomeration has to clean up, as on a real map.
 */
export function softMembraneMap(gt: Image2D, membraneValue = 0, sigmaPx = 2, noise = 0.15, seed = 1): MembraneMap {
  const { width, height, data } = gt;
  const interior = new Uint8Array(width * height);
  for (let i = 0; i < interior.length; i++) interior[i] = data[i] === membraneValue ? 0 : 1;
  const d = distanceTransform(interior, width, height);
  const out = new Float32Array(width * height);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = Math.exp(-(d[i] * d[i]) / (2 * sigmaPx * sigmaPx)) + noise * (2 * (s / 2 ** 32) - 1);
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return { width, height, data: out };
}

function mpxPerS(pixels: number, ms: number): number {
  return Math.round((pixels / 1e6 / (ms / 1000)) * 100) / 100;
}

export async function benchSegmentation(labelsPath = ISBI_TRAIN_LABELS): Promise<Record<string, number | string>> {
  const stack = await openStack(labelsPath);
  const gts: GroundTruthSegments[] = [];
  const maps: MembraneMap[] = [];
  try {
    for (let z = 0; z < stack.info.depth; z++) {
      const label = await stack.readSlice(z);
      gts.push(groundTruthSegments(asGroundTruth(label, 0)));
      maps.push(softMembraneMap(label, 0, 2, 0.15, z + 1));
    }
  } finally {
    await stack.close();
  }
  const pixels = maps.reduce((a, m) => a + m.width * m.height, 0);
  // Warm-up so that the timings measure optimised code, not the JIT.
  for (let k = 0; k < Math.min(3, maps.length); k++) scoreLabels(segment(maps[k]), gts[k]);

  let t = performance.now();
  const basins: Labels[] = maps.map((m) => watershed(m, DEFAULT_SEGMENT_PARAMS));
  const watershedMs = performance.now() - t;
  t = performance.now();
  basins.forEach((b, k) => agglomerate(b, maps[k], { threshold: DEFAULT_SEGMENT_PARAMS.agglomerationThreshold }));
  const agglomerateMs = performance.now() - t;
  t = performance.now();
  const segs = maps.map((m) => segment(m));
  const segmentMs = performance.now() - t;
  t = performance.now();
  const scores: SegmentationScores[] = segs.map((s, k) => scoreLabels(s, gts[k]));
  const metricsMs = performance.now() - t;
  const mean = meanScores(scores);

  return {
    input: `ISBI 2012 training labels 0-${maps.length - 1}: soft map exp(-d²/2σ²) of the distance d to the ground-truth membrane, σ = 2 px, ±0.15 seeded uniform noise (not a CNN output)`,
    slices: maps.length,
    width: maps[0].width,
    height: maps[0].height,
    megapixels: Math.round((pixels / 1e6) * 100) / 100,
    watershedMpxPerS: mpxPerS(pixels, watershedMs),
    agglomerateMpxPerS: mpxPerS(pixels, agglomerateMs),
    segmentMpxPerS: mpxPerS(pixels, segmentMs),
    metricsMpxPerS: mpxPerS(pixels, metricsMs),
    vrandMean: Math.round(mean.vrand * 1e4) / 1e4,
    vinfoMean: Math.round(mean.vinfo * 1e4) / 1e4,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${JSON.stringify(await benchSegmentation())}\n`);
}
