// `emseg segment --project <dir>`: a headless run's results go into an existing project the way the app's jobs put
// theirs (api/projects.ts): one Project.storeResults call with every round's membrane map of each slice and its
// labels, which the store takes as the slice's labels where the slice is empty and was never edited, and otherwise
// keeps as a proposal for the user to accept or discard in the app. The project is opened, and so locked, before the
// models run: a wrong or busy project fails at once, not after an hour of inference, and nobody edits it meanwhile.
import { realpath } from 'node:fs/promises';
import { openStack } from '../../io';
import { resolveStackPath } from '../../api/truth';
import type { SliceResult } from '../../engine/pipeline';
import { Project, type SliceResults, type StoredResults } from '../../project/store';
import { UsageError } from '../command';

/**
 * Opens the project in `folder` for results of `stackPath`: it must be a project of that very stack (the resolved path
 * it records, as the app records it) and of its size; a project locked by another process fails with the store's
 * one-line ProjectLockedError.
 */
export async function openProjectFor(folder: string, stackPath: string, notice: (m: string) => void): Promise<Project> {
  const stack = await openStack(stackPath, { cacheBytes: 0, onNotice: notice });
  await stack.close();
  const { width, height, depth } = stack.info;
  const real = await resolveStackPath(await realpath(stackPath));
  const project = await Project.open(folder);
  try {
    const { info } = project;
    // The recorded path is a real path already; resolving it again sees through links made since.
    const recorded = await realpath(info.stackPath).catch(() => info.stackPath);
    if (recorded !== real) throw new UsageError(`${folder}: the project is of the stack ${info.stackPath}, not of ${real}`);
    if (info.width !== width || info.height !== height || info.depth !== depth) {
      throw new UsageError(`${folder}: the project is ${info.width}×${info.height}×${info.depth} but its stack ${real} is now ${width}×${height}×${depth}`);
    }
  } catch (e) {
    await project.close();
    throw e;
  }
  return project;
}

/** The pipeline's results as the store takes them: every round's map (round 0 first) and the labels. */
export async function* pipelineResults(slices: AsyncIterable<SliceResult>): AsyncGenerator<SliceResults> {
  for await (const r of slices) yield { z: r.index, maps: r.rounds.map((m) => m.data), labels: r.labels?.data ?? null };
}

/** The one line saying where the labels went. */
export function storedLine(folder: string, stored: StoredResults): string {
  const n = (k: number) => `${k} slice${k === 1 ? '' : 's'}`;
  return `project ${folder}: labels of ${n(stored.labels.length)} went in directly, ${n(stored.proposals.length)} became proposals (accept or discard them in the app); maps of ${n(stored.maps.length)} stored`;
}
