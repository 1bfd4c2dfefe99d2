// A membrane model's validation V_rand (ISBI slices 20–29, best threshold) with its batch-norm running averages and
// with statistics recomputed for its weights (ml/train/precise-bn.ts) over BATCHES training batches (default 100) of
// slices 0–19, drawn as `emseg train` draws them (CLEAN=1: without intensity jitter and elastic deformation).
//   node --import tsx main/dev/precise-bn.ts <model dir> [<model dir> …]
import { initTf } from '../../ml/tfjs/backend';
import { buildModel, sizeMultiple, type ModelConfig } from '../../ml/models';
import { fileURLToPath } from 'node:url';
import { setWeights } from '../../ml/train/trainer';
import { recomputeBatchNormStatistics, trainingInputs } from '../../ml/train/precise-bn';
import { DEFAULT_AUGMENT } from '../../ml/train/augment';
import { predictTf } from '../../ml/infer/predict-tf';
import { scoreMembraneStack } from '../../ml/metrics';
import { loadLabelledSlices, toTrainingSlices, toValidationSlices } from '../engine/datasets';
import { loadModel } from '../engine/model-store';

const isbi = fileURLToPath(new URL('../../../shared/data/isbi2012/train', import.meta.url));
console.log((await initTf()).note);
const trainSet = await loadLabelledSlices(`${isbi}/image`, `${isbi}/label`, Array.from({ length: 20 }, (_, i) => i));
const valSet = await loadLabelledSlices(`${isbi}/image`, `${isbi}/label`, Array.from({ length: 10 }, (_, i) => 20 + i));
const slices = toTrainingSlices(trainSet, 0);
const val = toValidationSlices(valSet);
const gts = valSet.map((s) => s.label);
const batches = Number(process.env.BATCHES ?? 100);
const clean = process.env.CLEAN === '1';

for (const dir of process.argv.slice(2)) {
  const { record, weights } = await loadModel(dir);
  const config = record.config as ModelConfig;
  const model = buildModel(config);
  setWeights(model, weights);
  const score = () => {
    const maps = val.map((v) => ({ width: v.width, height: v.height, data: predictTf(model, v.input, v.width, v.height, v.channels, sizeMultiple(config)) }));
    const r = scoreMembraneStack(maps, gts);
    return `vrand ${r.vrand.toFixed(4)} (split ${r.vrandSplit.toFixed(4)} merge ${r.vrandMerge.toFixed(4)}) t ${r.threshold}`;
  };
  const before = score();
  const spec = { batchSize: 2, cropPx: 256, augment: clean ? { ...DEFAULT_AUGMENT, intensity: false } : { ...DEFAULT_AUGMENT, elasticPx: 3 }, weighting: 'balanced' as const, membraneFraction: 0.2 };
  recomputeBatchNormStatistics(model, batches, trainingInputs(slices, spec, 1));
  console.log(`${dir}: running statistics ${before}; recomputed over ${batches} batches${clean ? ' (clean crops)' : ''} ${score()}`);
  model.dispose();
}
