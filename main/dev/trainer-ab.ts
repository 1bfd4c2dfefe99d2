// The whole trainer (the bench's configuration: 2 replicas, 4 × 256², elastic; steps per second over steps 10–40)
// with the EMSEG_TF_CONV settings in MODES (default "plain,default": ONNX Runtime's plain and blocked-layout
// convolutions; "per-tap,default" compares the filter gradients), in interleaved rounds (ROUNDS, default 3) so that
// the VM's drift hits both alike. EMSEG_TF_CONV is read by each worker's initTf.
//   node --import tsx main/dev/trainer-ab.ts
import os from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { train } from '../engine/train';
import { DEFAULT_AUGMENT, type TrainingSlice } from '../../ml/train/augment';
import { pseudoRandom } from '../../ml/models/test-helpers';

async function rate(): Promise<number> {
  const dir = await mkdtemp(join(os.tmpdir(), 'emseg-ab-'));
  const slices: TrainingSlice[] = [0, 1].map((s) => ({ width: 512, height: 512, channels: 1, raw: pseudoRandom(512 * 512, 10 + s), target: new Uint8Array(512 * 512).map((_, i) => ((i + s) % 7 === 0 ? 1 : 0)) }));
  const marks = new Map<number, number>();
  await train({
    role: 'membrane', config: { kind: 'unet', baseChannels: 16, depth: 4, inChannels: 1 }, train: slices, val: [], out: dir,
    steps: 41, batchSize: 4, cropPx: 256, lr: 1e-3, workers: 2, seed: 1, augment: { ...DEFAULT_AUGMENT, elasticPx: 3 }, weighting: 'balanced', evalEvery: 1000,
    score: () => Promise.resolve({ vrand: 0 }), onProgress: (p) => marks.set(p.step, performance.now()),
  });
  await rm(dir, { recursive: true, force: true });
  return 30 / ((marks.get(40)! - marks.get(10)!) / 1000);
}

for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) {
  for (const mode of (process.env.MODES ?? 'plain,default').split(',')) {
    process.env.EMSEG_TF_CONV = mode;
    console.log(round, mode, (await rate()).toFixed(3));
  }
}
