// Where a training step's time goes: one U-Net replica step (batch of 256² crops) on tfjs' wasm backend, timed over
// four steps (wall and CPU time), then tf.profile's time per kernel, largest first, and per kernel and input shape
// for the element-wise and reduction kernels. BS=<n> sets the batch (default 2, one replica's share of 4 on 2 cores);
// NOPROF=1 skips the profile. The convolutions run in ONNX Runtime on one thread, as in a training worker;
// EMSEG_TF_CONV=wasm times tfjs-wasm's own instead.
//   node --import tsx main/dev/prof-train.ts
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../../ml/tfjs/backend';
import { unetTrainingStep } from '../bench/models';

const ELEMENTWISE = new Set(['Sum', 'Multiply', 'Mean', 'Identity', 'Sub', 'Add', 'RealDiv']);

function table(rows: Map<string, { ms: number; n: number }>, width: number, limit: number): void {
  for (const [name, e] of [...rows.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, limit)) {
    console.log(`${name.padEnd(width)} ${e.ms.toFixed(0).padStart(6)} ms ${String(e.n).padStart(5)} calls`);
  }
}

async function main() {
  await initTf('wasm');
  const batchSize = Number(process.env.BS ?? 2);
  const step = unetTrainingStep(batchSize);
  step();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 4; i++) {
    const t = performance.now();
    const c = process.cpuUsage();
    step();
    wall.push(performance.now() - t);
    const u = process.cpuUsage(c);
    cpu.push((u.user + u.system) / 1000);
  }
  console.log(`step wall ms ${wall.map((x) => x.toFixed(0)).join(' ')}, cpu ms ${cpu.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`samples/s (best step) ${(batchSize / (Math.min(...wall) / 1000)).toFixed(3)}`);
  if (process.env.NOPROF) return;
  const prof = await tf.profile(() => step());
  const byKernel = new Map<string, { ms: number; n: number }>();
  const byShape = new Map<string, { ms: number; n: number }>();
  for (const k of prof.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const add = (m: Map<string, { ms: number; n: number }>, key: string) => {
      const e = m.get(key) ?? { ms: 0, n: 0 };
      e.ms += ms;
      e.n++;
      m.set(key, e);
    };
    add(byKernel, k.name);
    if (ELEMENTWISE.has(k.name)) add(byShape, `${k.name} ${JSON.stringify(k.inputShapes)}`);
  }
  table(byKernel, 28, 30);
  console.log('');
  table(byShape, 60, 20);
}
void main();
