// `emseg bench --only batch`: batch throughput and memory, each figure from a real `emseg batch` CLI run (coordinator
// plus worker processes) reading its --json summary.
//   - items/s and Mpx/s over the sample data (10 × 512² ISBI slices) with 1 and 2 workers (threads per worker =
//     CPUs / workers, the default);
//   - peak RSS of the coordinator and of a worker for 10 versus 100 items, and for one 30- versus 300-slice stack
//     (128² synthetic slices, 1 worker): flat figures mean memory is bounded by a slice, not by the batch;
//   - the time a rerun takes to skip 100 unchanged items.
// Uses the shipped models when sample-data/models holds them, else tiny random-weight models (then the figures measure
// the batch machinery — process start, model load, IO, segmentation — more than inference).
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SAMPLE_DATA, SAMPLE_STACK } from '../engine/models';
import { writePngs, writeStack, writeTinyModels } from '../batch/fixtures';
import type { BatchSummary } from '../batch/run';

const EMSEG = fileURLToPath(new URL('../cli/emseg.mjs', import.meta.url));
const SMALL_PX = 128;

function batch(args: string[]): Promise<BatchSummary> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EMSEG, 'batch', ...args, '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      const json = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !json) reject(new Error(`emseg batch exited with ${code}: ${err.trim().split('\n').pop() ?? ''}`));
      else resolve(JSON.parse(json) as BatchSummary);
    });
  });
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

export async function benchBatch(): Promise<Record<string, number | string>> {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-bench-batch-'));
  try {
    const shipped = join(SAMPLE_DATA, 'models');
    const haveShipped = await exists(join(shipped, 'membrane', 'model.json'));
    const model = haveShipped ? shipped : await writeTinyModels(join(dir, 'models'));
    const res: Record<string, number | string> = {
      model: haveShipped ? 'sample-data/models (shipped)' : 'tiny random-weight U-Net + refiner (shipped models not found)',
      throughputInput: 'sample-data/isbi2012-val/image: 10 items, 512×512',
    };
    for (const workers of [1, 2]) {
      const s = await batch([SAMPLE_STACK, '--out', join(dir, `out-w${workers}`), '--model', model, '--workers', String(workers)]);
      res[`workers${workers}.itemsPerSecond`] = s.itemsPerSecond;
      res[`workers${workers}.mpxPerSecond`] = s.mpxPerSecond;
      res[`workers${workers}.threadsPerWorker`] = s.threads;
    }
    res.speedup2Workers = Math.round(((res['workers2.itemsPerSecond'] as number) / (res['workers1.itemsPerSecond'] as number)) * 100) / 100;

    for (const n of [10, 100]) {
      const input = join(dir, `items-${n}`);
      await writePngs(input, n, SMALL_PX, SMALL_PX, 1);
      const out = join(dir, `out-items-${n}`);
      const s = await batch([input, '--out', out, '--model', model, '--workers', '1']);
      res[`items${n}.peakWorkerRssMiB`] = s.peakRssMiB.worker;
      res[`items${n}.peakCoordinatorRssMiB`] = s.peakRssMiB.coordinator;
      res[`items${n}.itemsPerSecond`] = s.itemsPerSecond;
      if (n === 100) {
        const again = await batch([input, '--out', out, '--model', model, '--workers', '1']);
        res['items100.resumeAllUnchangedSeconds'] = again.seconds;
      }
    }
    for (const depth of [30, 300]) {
      const input = join(dir, `stack-${depth}`);
      await mkdir(input, { recursive: true });
      await writeStack(join(input, 'stack.tif'), depth, SMALL_PX, SMALL_PX, 1);
      const s = await batch([input, '--out', join(dir, `out-stack-${depth}`), '--model', model, '--workers', '1']);
      res[`slices${depth}.peakWorkerRssMiB`] = s.peakRssMiB.worker;
      res[`slices${depth}.peakCoordinatorRssMiB`] = s.peakRssMiB.coordinator;
      res[`slices${depth}.mpxPerSecond`] = s.mpxPerSecond;
    }
    res.memoryInput = `${SMALL_PX}×${SMALL_PX} synthetic uint8 slices, 1 worker`;
    return res;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
