// The blocked-layout (NCHWc) convolutions against transposes around a plain Conv in a real training step: the shipped
// U-Net's shape (16 base channels, depth 4) with the same starting weights, batches of 2 × PX² (default 256), STEPS
// steps (default 1) of Adam each way; prints both loss curves and every variable whose first-step gradient differs by
// more than 1e-4 of the largest gradient. CPU=1 runs the second pass on the cpu backend instead (slow; use PX=64).
//   STEPS=20 node --import tsx main/dev/nchwc-check.ts
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../../ml/tfjs/backend';
import { useNchwc, nchwcBlock } from '../../ml/tfjs/ort-conv-kernels';
import { buildModel } from '../../ml/models';
import { Replica, makeBatch, getWeights, setWeights } from '../../ml/train/trainer';
import type { TrainingSlice } from '../../ml/train/augment';
import { DEFAULT_AUGMENT } from '../../ml/train/augment';

function pseudo(n: number, seed: number) { return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed * 78.233) * 0.5 + Math.sin(i * 0.01) * 0.5); }

async function main() {
  const be = await initTf('wasm');
  console.log('backend', be, 'block', nchwcBlock());
  const size = Number(process.env.PX ?? 256);
  const steps = Number(process.env.STEPS ?? 1);
  const slice: TrainingSlice = { width: 512, height: 512, channels: 1, raw: pseudo(512 * 512, 4), target: new Uint8Array(512 * 512).map((_, i) => (((i >> 9) % 13 === 0 || (i % 512) % 11 === 0) ? 1 : 0)) };
  const spec = { batchSize: 2, cropPx: size, augment: DEFAULT_AUGMENT, weighting: 'balanced' as const, membraneFraction: 0.2 };
  const model = buildModel({ kind: 'unet', baseChannels: 16, depth: 4, inChannels: 1 });
  const w0 = getWeights(model).map((a) => a.slice());
  const res: Record<string, { losses: number[]; grads: Float32Array[] }> = {};
  for (const on of [false, true]) {
    useNchwc(on);
    if (process.env.CPU && on) await tf.setBackend('cpu');
    setWeights(model, w0);
    const r = new Replica(model, 1e-3);
    const losses: number[] = [];
    let first: Float32Array[] = [];
    for (let s = 0; s < steps; s++) {
      const b = makeBatch([slice], spec, 100 + s);
      const { loss, grads } = r.gradients(b);
      if (s === 0) first = grads.map((g) => g.slice());
      losses.push(loss);
      r.applyGradients(grads);
      tf.dispose([b.x, b.y, b.w]);
    }
    res[on ? 'nchwc' : 'plain'] = { losses, grads: first };
    console.log(on ? 'nchwc' : 'plain', losses.map((l) => l.toFixed(5)).join(' '));
  }
  const a = res.plain.grads, b = res.nchwc.grads;
  const scale = Math.max(...a.map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  a.forEach((g, i) => {
    const err = g.reduce((m, v, j) => Math.max(m, Math.abs(v - b[i][j])), 0);
    const gm = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    if (err > 1e-4 * scale) console.log(`var ${i} len ${g.length}: max err ${err.toExponential(2)} (its max ${gm.toExponential(2)}, model max ${scale.toExponential(2)})`);
  });
  console.log('done; model max grad', scale);
}
void main();
