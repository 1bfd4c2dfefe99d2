// Temporary launcher used while the CLI is being built: trains the membrane model on ISBI 0-19, validates on 20-29.
import sharp from 'sharp';
import { train } from '../engine/train';
import { toTrainingSlice, toValidationSlice, type LabelledSlice } from '../engine/datasets';
import { DEFAULT_UNET } from '../../ml/models/unet';
import { DEFAULT_AUGMENT } from '../../ml/train/augment';
import type { Image2D, MembraneMap } from '../../ml/types';

const root = new URL('../../../shared/data/isbi2012/train/', import.meta.url);
async function png(path: URL): Promise<Image2D> {
  const { data, info } = await sharp(path.pathname).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, info.width * info.height) };
}
const all: LabelledSlice[] = [];
for (let i = 0; i < 30; i++) all.push({ index: i, raw: await png(new URL(`image/${i}.png`, root)), label: await png(new URL(`label/${i}.png`, root)) });
const trainSet = all.filter((s) => s.index < 20).map((s) => toTrainingSlice(s, 0));
const valSet = all.filter((s) => s.index >= 20);
const out = process.argv[2] ?? '/tmp/emseg-train/membrane';
const steps = Number(process.argv[3] ?? 3000);

async function score(maps: MembraneMap[]): Promise<Record<string, number>> {
  // Pixel error at 0.5 always; V_rand through ml/metrics once it exists.
  let err = 0;
  let n = 0;
  maps.forEach((m, k) => {
    const gt = valSet[k].label.data;
    for (let i = 0; i < m.data.length; i++) {
      err += (m.data[i] > 0.5 ? 1 : 0) !== (gt[i] === 0 ? 1 : 0) ? 1 : 0;
      n++;
    }
  });
  const res: Record<string, number> = { pixelError: err / n, vrand: 1 - err / n };
  try {
    const path = '../../ml/metrics/index';
    const metrics = (await import(path)) as Record<string, unknown>;
    const fn = metrics.scoreMembraneStack as undefined | ((m: MembraneMap[], gt: Image2D[]) => Promise<Record<string, number>> | Record<string, number>);
    if (fn) Object.assign(res, await fn(maps, valSet.map((v) => v.label)));
  } catch {
    // metrics not available yet
  }
  return res;
}

const result = await train({
  role: 'membrane', config: DEFAULT_UNET, train: trainSet, val: valSet.map(toValidationSlice), out, steps, batchSize: 4, cropPx: 256,
  lr: 2e-3, workers: 2, seed: 1, augment: { ...DEFAULT_AUGMENT, elasticPx: 3 }, weighting: 'balanced', evalEvery: 200, score,
  record: { training: { data: 'ISBI 2012 training slices 0-19 (Cardona et al. 2010; Arganda-Carreras et al. 2015)', validation: 'slices 20-29' } },
  log: (l) => console.log(new Date().toISOString(), l),
  onProgress: (p) => { if (p.step % 10 === 0) console.log(`step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.samplesPerS.toFixed(2)} samples/s eta ${(p.etaS / 60).toFixed(1)} min`); },
});
console.log(JSON.stringify(result));
