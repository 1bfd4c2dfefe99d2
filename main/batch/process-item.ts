// One batch item, inside a worker process: check whether its recorded outputs still hold, else run the pipeline
// (segmentStack streams the slices, so memory does not grow with the stack), score the labels against ground truth,
// hash the outputs, and only then rename the finished output folder into place. A worker killed at any point leaves
// at most a folder under .emseg/partial — never an item folder that looks finished. Any error of the item becomes a
// failed record with one line; the worker goes on with the next item.
import { randomBytes, createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { openStack } from '../io';
import { segmentStack } from '../engine/segment-stack';
import { asGroundTruth, meanScores, scoreLabels, SCORE_KEYS, type SegmentationScores } from '../../ml/metrics';
import type { Labels } from '../../ml/types';
import { contentHash, fingerprint, hashFile } from './hash';
import { outputsIntact, type ItemMetrics, type ManifestRecord, type OutputFile } from './manifest';
import { baseRecord, failedRecord, type ItemOutcome, type ItemTask } from './task';

export interface ItemHooks {
  onNotice?: (message: string) => void;
}

const seconds = (t0: number): number => Math.round(performance.now() - t0) / 1000;

/**
 * The mean ISBI scores of a labels stack against ground truth, one slice pair in memory at a time. Ground truth must
 * have the item's slices and size: anything else is the user's mistake and fails the item, by name.
 */
export async function scoreItem(labelsPath: string, gtPath: string, membraneValue: number): Promise<ItemMetrics> {
  const labels = await openStack(labelsPath, { cacheBytes: 0 });
  try {
    const gt = await openStack(gtPath, { cacheBytes: 0 });
    try {
      const { width, height, depth } = labels.info;
      if (gt.info.depth !== depth) throw new Error(`ground truth ${gtPath} has ${gt.info.depth} slice(s), the item ${depth}`);
      if (gt.info.width !== width || gt.info.height !== height) {
        throw new Error(`ground truth ${gtPath} is ${gt.info.width}×${gt.info.height}, the item ${width}×${height}`);
      }
      if (gt.info.pixelType === 'float32') throw new Error(`ground truth ${gtPath} is float32: expected a binary membrane image or uint32 labels`);
      const perSlice: SegmentationScores[] = [];
      for (let z = 0; z < depth; z++) {
        const seg = (await labels.readSlice(z)) as Labels;
        perSlice.push(scoreLabels(seg, asGroundTruth(await gt.readSlice(z), membraneValue)));
      }
      const mean = meanScores(perSlice);
      const out = { slices: depth } as ItemMetrics;
      for (const k of SCORE_KEYS) out[k] = Number.isFinite(mean[k]) ? Math.round(mean[k] * 1e6) / 1e6 : null;
      return out;
    } finally {
      await gt.close();
    }
  } finally {
    await labels.close();
  }
}

/**
 * Renames a finished output folder to its place. An older folder there (outputs of other parameters) is moved aside
 * first and deleted after, so a kill between the two renames leaves no folder rather than a mixed one.
 */
async function placeOutputs(tmp: string, dest: string, partialDir: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  try {
    await rename(tmp, dest);
    return;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EISDIR') throw e;
  }
  const old = join(partialDir, `old-${randomBytes(6).toString('hex')}`);
  await rename(dest, old);
  await rename(tmp, dest);
  await rm(old, { recursive: true, force: true });
}

async function listOutputs(dir: string): Promise<OutputFile[]> {
  const names = (await readdir(dir)).sort();
  const out: OutputFile[] = [];
  for (const file of names) out.push({ file, ...(await hashFile(join(dir, file))) });
  return out;
}

function sameGroundTruth(a: ManifestRecord['gt'], b: ManifestRecord['gt']): boolean {
  if (!a || !b) return !a && !b;
  return a.path === b.path && a.hash === b.hash;
}

export async function processItem(task: ItemTask, hooks: ItemHooks = {}): Promise<ItemOutcome> {
  const start = new Date();
  const t0 = performance.now();
  const { item, previous: prev } = task;
  const partial: Partial<ManifestRecord> = {};
  let tmp: string | null = null;
  try {
    const th = performance.now();
    const inputFingerprint = await fingerprint(item.input).catch(() => {
      throw new Error(`${item.input}: no such file or folder`);
    });
    const inputHash = !task.verify && prev?.inputHash && prev.input === item.input && prev.inputFingerprint === inputFingerprint ? prev.inputHash : await contentHash(item.input);
    Object.assign(partial, { inputHash, inputFingerprint });
    let gt: ManifestRecord['gt'];
    if (item.gt) {
      const gtFingerprint = await fingerprint(item.gt);
      const reuse = !task.verify && prev?.gt?.path === item.gt && prev.gt.fingerprint === gtFingerprint;
      gt = { path: item.gt, hash: reuse ? prev!.gt!.hash : await contentHash(item.gt), fingerprint: gtFingerprint };
    }
    const hashSeconds = seconds(th);

    const sameWork =
      prev?.status === 'done' &&
      prev.inputHash === inputHash &&
      prev.paramsHash === task.paramsHash &&
      prev.model.hash === task.model.hash &&
      (await outputsIntact(task.outDir, prev, task.verify));
    if (sameWork && prev) {
      if (sameGroundTruth(prev.gt, gt)) return { record: { ...prev, input: item.input, inputFingerprint, ...(gt ? { gt } : {}) }, unchanged: true };
      // Only the ground truth changed (or appeared): score the labels already there instead of segmenting again.
      const tm = performance.now();
      const metrics = gt ? await scoreItem(join(task.outDir, item.key, 'labels.tif'), gt.path, task.gtMembraneValue) : undefined;
      const end = new Date();
      const { gt: _oldGt, metrics: _oldMetrics, ...kept } = prev;
      return {
        record: {
          ...kept,
          ...baseRecord(task, start),
          inputHash,
          inputFingerprint,
          status: 'done',
          end: end.toISOString(),
          seconds: { total: seconds(t0), hash: hashSeconds, metrics: seconds(tm) },
          ...(gt ? { gt, metrics } : {}),
        },
        unchanged: false,
      };
    }

    const probe = await openStack(item.input, { cacheBytes: 0, onNotice: hooks.onNotice });
    const { width, height, depth } = probe.info;
    await probe.close();
    Object.assign(partial, { width, height, slices: depth });

    const id = createHash('sha1').update(item.key).digest('hex').slice(0, 12);
    tmp = join(task.partialDir, `item-${id}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    const ts = performance.now();
    const rounds = task.params.refineRounds;
    await segmentStack({
      stack: item.input,
      out: tmp,
      membraneModel: task.model.membrane,
      refiner: task.model.refiner,
      rounds: rounds ?? undefined,
      segment: task.params.segment,
      tta: task.params.tta,
      tilePx: task.params.tilePx,
      writeRounds: task.params.writeRounds,
      pixelSizeNm: task.params.pixelSizeNm,
      noRescale: task.params.noRescale,
      threads: task.threads,
      onNotice: hooks.onNotice,
    });
    const segmentSeconds = seconds(ts);

    let metrics: ItemMetrics | undefined;
    let metricsSeconds: number | undefined;
    if (gt) {
      const tm = performance.now();
      metrics = await scoreItem(join(tmp, 'labels.tif'), gt.path, task.gtMembraneValue);
      metricsSeconds = seconds(tm);
    }
    const outputs = await listOutputs(tmp);
    await placeOutputs(tmp, join(task.outDir, item.key), task.partialDir);
    tmp = null;
    const end = new Date();
    return {
      record: {
        ...baseRecord(task, start),
        inputHash,
        inputFingerprint,
        width,
        height,
        slices: depth,
        status: 'done',
        end: end.toISOString(),
        seconds: { total: seconds(t0), hash: hashSeconds, segment: segmentSeconds, ...(metricsSeconds !== undefined ? { metrics: metricsSeconds } : {}) },
        outputs,
        ...(gt ? { gt, metrics } : {}),
      },
      unchanged: false,
    };
  } catch (e) {
    if (tmp) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    return { record: failedRecord(task, e, start, partial), unchanged: false };
  }
}
