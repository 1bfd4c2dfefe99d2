// `emseg segment` with models: runs the pipeline over a stack and streams every output to its own TIFF in the output
// folder — membrane.tif (final map), membrane-round-<r>.tif for r = 0…N (round 0 = the membrane model's output) and
// labels.tif (uint32, 0 = boundary), and with a stochastic ensemble (--ensemble K) uncertainty.tif (the per-pixel
// variance across the members' maps) — one slice in memory per output, each file written atomically. A caller may
// add one more consumer of the results (`emseg segment --project` stores them in a project), fed in step with the files.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openStack, writeTiffStack } from '../io';
import type { Image2D } from '../../ml/types';
import { SliceChannel } from './channel';
import { MEMBRANE_FILE, membraneRoundFile } from './outputs';
import { loadPipelineModels, releaseModels, runPipeline, type PipelineOptions, type SliceResult } from './pipeline';

export interface SegmentStackOptions extends Omit<PipelineOptions, 'skipSegmentation'> {
  out: string;
  /** Write membrane-round-<r>.tif for every round (default true). */
  writeRounds?: boolean;
  /** One more consumer of every slice's results, in step with the TIFF writers; its failure stops the run as theirs does. */
  results?: (slices: AsyncIterable<SliceResult>) => Promise<unknown>;
}

export interface SegmentStackResult {
  files: string[];
  slices: number;
  rounds: number;
  segments: number;
}

export async function segmentStack(opts: SegmentStackOptions): Promise<SegmentStackResult> {
  const probe = await openStack(opts.stack, { cacheBytes: 0, onNotice: opts.onNotice });
  await probe.close();
  // Models passed in (batch workers keep them across items) are the caller's to release.
  const models = opts.models ?? (await loadPipelineModels(opts));
  try {
    await mkdir(opts.out, { recursive: true });
    const rounds = models.rounds;
    // The outputs carry the stack's pixel size (the one given with --pixel-size first).
    const pixelSizeNm = opts.pixelSizeNm ? { ...probe.info.pixelSizeNm, x: opts.pixelSizeNm, y: opts.pixelSizeNm } : probe.info.pixelSizeNm;
    type Picked = { rounds: Image2D[]; labels: Image2D | null; uncertainty?: Image2D };
    const outputs: Array<{ path: string; channel: SliceChannel<Image2D>; pick: (r: Picked) => Image2D; description: string }> = [];
    const add = (name: string, pick: (r: Picked) => Image2D, description: string) =>
      outputs.push({ path: join(opts.out, name), channel: new SliceChannel<Image2D>(), pick, description });
    add(MEMBRANE_FILE, (r) => r.rounds[r.rounds.length - 1], `EMSeg membrane map after ${rounds} refinement round(s) (float32, 1 = membrane)`);
    if (opts.writeRounds !== false) {
      for (let k = 0; k <= rounds; k++) add(membraneRoundFile(k), (r) => r.rounds[k], `EMSeg membrane map, round ${k} (float32, 1 = membrane)`);
    }
    add('labels.tif', (r) => r.labels!, 'EMSeg labels (uint32, 0 = boundary)');
    const members = models.membrane.members?.length ?? 0;
    if (members > 0) add('uncertainty.tif', (r) => r.uncertainty!, `EMSeg uncertainty: per-pixel variance of ${members} sampled binary networks' membrane maps (float32)`);
    const writers = outputs.map((o) =>
      writeTiffStack(o.path, o.channel, { pixelSizeNm, compression: 'deflate', description: `${o.description}; from ${opts.stack}` }),
    );
    const consumers: Promise<unknown>[] = [...writers];
    let resultChannel: SliceChannel<SliceResult> | null = null;
    if (opts.results) {
      resultChannel = new SliceChannel<SliceResult>();
      consumers.push(opts.results(resultChannel));
    }
    // A failed consumer must stop the producer rather than leave it waiting for a consumer that is gone.
    let failure: unknown;
    consumers.forEach((w) => w.catch((e: unknown) => (failure ??= e)));
    // One promise for "some consumer has ended", made once: a race built per slice would keep every slice's results
    // alive until the end of the stack (memory growing with stack length).
    const writerEnded = Promise.race(consumers.map((w) => w.then(() => undefined, () => undefined)));
    let slices = 0;
    let segments = 0;
    try {
      for await (const r of runPipeline({ ...opts, models })) {
        if (failure) throw failure;
        slices++;
        for (let i = 0; i < r.labels!.data.length; i++) if (r.labels!.data[i] > segments) segments = Math.max(segments, r.labels!.data[i]);
        await Promise.race([Promise.all([...outputs.map((o) => o.channel.push(o.pick(r))), resultChannel?.push(r)]), writerEnded]);
        if (failure) throw failure;
      }
    } finally {
      for (const o of outputs) o.channel.close();
      resultChannel?.close();
    }
    await Promise.all(consumers);
    return { files: outputs.map((o) => o.path), slices, rounds, segments };
  } finally {
    if (!opts.models) await releaseModels(models);
  }
}
