// The proofreading calls behind the door: projects (main/project/store.ts) opened for a stack, their tiles, and the
// edits, computed by ml/proofread on the main side, where the authoritative labels live. The renderer sends what the
// user did (a stroke's polyline, a click); this file turns it into a delta, and the store journals and applies it.
//
//   createProject / openProject ─> AccessGuard ─> Project (folder) + the stack it refers to (backend's open())
//   readProject ─> PyramidCache (key carries the slice's revision, so an edit never serves a stale tile) ─> cutTile
//   editProject ─> ml/proofread tool ─> Project.edit (journal, apply, undo stack) ─> EditResult
//   sliceQuality ─> ml/proofread sliceQuality against the project's ground truth
//   a job ends (JobManager onEnd) ─> jobEnded ─> each open project of the job's stack stores the job's maps (every
//     round) and labels (taken on empty slices, else proposed: resolveProposal accepts those of any number of slices
//     as one undoable step) and
//     snapshots; every other open project snapshots too ─> a 'project' event with the new summary
import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { groundTruthSegments } from '../../ml/metrics';
import {
  cutSegment,
  deleteSegment,
  fillRegion,
  membraneFromRaw,
  mergeSegments,
  paintStroke,
  replaceLabels,
  sliceQuality,
  splitSegment,
  strokePixels,
  type LabelDelta,
} from '../../ml/proofread';
import { maxLabel } from '../../ml/segmentation';
import type { Image2D, Labels, MembraneMap } from '../../ml/types';
import type { Stack } from '../io';
import { exportProject } from '../project/export';
import { Project, type HistoryEntry, type SliceResults } from '../project/store';
import type { AccessGuard } from './access';
import {
  tileRect,
  type ApiEvent,
  type EditResult,
  type JobInfo,
  type ProjectReadLayer,
  type ProjectSummary,
  type ProofreadEdit,
  type StackSummary,
  type StoredJobResults,
  type TileArgs,
} from './contract';
import { ApiError, type Handlers } from './door';
import { cutTile, type PyramidCache } from './pyramid';
import { truthToLabels } from './truth';

type ProjectCalls =
  | 'createProject'
  | 'openProject'
  | 'closeProject'
  | 'readProject'
  | 'editProject'
  | 'undoEdit'
  | 'redoEdit'
  | 'newLabel'
  | 'lockSegment'
  | 'setSliceStatus'
  | 'sliceQuality'
  | 'exportProject'
  | 'resolveProposal';

/** A job of this session as the projects see it: its state and its results, slice by slice. */
export interface JobResults {
  info: JobInfo;
  /** Every round's map and the labels (when the job makes them) of a ready slice. */
  read(z: number): Promise<SliceResults>;
  /** The last round's map of a ready slice: the best map the job made. */
  lastMap(z: number): Promise<MembraneMap>;
}

/** What the project calls need of the rest of the backend. */
export interface ProjectDeps {
  guard: AccessGuard;
  pyramid: PyramidCache;
  /** Opens (or finds) a stack by path, as openStack does. */
  openStack(path: string): Promise<StackSummary>;
  stackOf(stackId: string): { summary: StackSummary; stack: Stack; truth: Stack | null };
  /** Labels of slice z of a job, when the job has them. */
  jobLabels(jobId: string, stackId: string, z: number): Promise<Image2D | null>;
  /** The session's jobs of a stack. */
  jobsOf(stackId: string): JobInfo[];
  /** A job's results (null: no such job). */
  jobResults(jobId: string): JobResults | null;
  /** Pushes an event to the renderer. */
  emit(e: ApiEvent): void;
}

interface OpenProject {
  id: string;
  project: Project;
  stackId: string;
}

function toUint32(img: Image2D): Uint32Array {
  if (img.data instanceof Uint32Array) return img.data.slice();
  const out = new Uint32Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.round(img.data[i]));
  return out;
}

/** Ids present after the deltas that were not on their slices before (the pieces a split or cut created). */
function newIds(deltas: readonly LabelDelta[], maxBefore: (z: number) => number): number[] {
  const ids = new Set<number>();
  for (const d of deltas) {
    const max = maxBefore(d.z);
    for (let k = 0; k < d.after.length; k++) if (d.after[k] > max) ids.add(d.after[k]);
  }
  return [...ids].sort((a, b) => a - b);
}

/** The ready slices of a job as storeResults takes them (labels left out when not wanted). */
async function* sliceResults(job: JobResults, withLabels: boolean): AsyncGenerator<SliceResults> {
  for (const z of job.info.readySlices) {
    const r = await job.read(z);
    yield withLabels ? r : { ...r, labels: null };
  }
}

/** The newest job of the list with maps for slice z (all ready slices when z is absent), or undefined. */
function newestWithMaps(jobs: JobInfo[], z?: number): JobInfo | undefined {
  return jobs.filter((j) => j.rounds > 0 && (z === undefined ? j.readySlices.length > 0 : j.readySlices.includes(z))).sort((a, b) => b.createdAt - a.createdAt)[0];
}

export function projectHandlers(deps: ProjectDeps): {
  handlers: Pick<Handlers, ProjectCalls>;
  /** A job ended: store its results in the open projects of its stack and snapshot every open project. */
  jobEnded(jobId: string): void;
  close(): Promise<void>;
} {
  const projects = new Map<string, OpenProject>();
  const byFolder = new Map<string, OpenProject>();
  /** Saves started by jobEnded and not finished yet: close() waits for them. */
  const saving = new Set<Promise<void>>();
  let counter = 0;

  function get(projectId: string): OpenProject {
    const p = projects.get(projectId);
    if (!p) throw new ApiError('not-found', `no open project ${projectId}`);
    return p;
  }

  function checkZ(p: OpenProject, z: number): void {
    if (z >= p.project.info.depth) throw new ApiError('not-found', `slice ${z} of ${p.project.info.depth}`);
  }

  function summary(p: OpenProject): ProjectSummary {
    const info = p.project.info;
    const truthSlices: number[] = [];
    for (let z = 0; z < info.depth; z++) if (p.project.hasSlice('truth', z)) truthSlices.push(z);
    return {
      projectId: p.id,
      folder: p.project.folder,
      stack: deps.stackOf(p.stackId).summary,
      undoDepth: p.project.undoDepth,
      redoDepth: p.project.redoDepth,
      sliceStatus: info.sliceStatus.slice(),
      locked: { ...info.locked },
      truthSlices,
      maps: Object.fromEntries(Object.entries(info.maps).map(([z, files]) => [z, files.length])),
      proposals: Object.keys(info.proposals)
        .map(Number)
        .sort((a, b) => a - b),
      resultsStoredAt: info.resultsStoredAt === null ? null : Date.parse(info.resultsStoredAt),
    };
  }

  async function register(project: Project): Promise<ProjectSummary> {
    let stack: StackSummary;
    try {
      stack = await deps.openStack(project.info.stackPath);
    } catch (e) {
      await project.close().catch(() => undefined);
      throw new ApiError('user', `${project.folder}: its stack ${project.info.stackPath} cannot be opened (${e instanceof Error ? e.message : String(e)})`);
    }
    if (stack.width !== project.info.width || stack.height !== project.info.height || stack.depth !== project.info.depth) {
      await project.close().catch(() => undefined);
      throw new ApiError('user', `${project.folder}: the project is ${project.info.width}×${project.info.height}×${project.info.depth} but its stack is now ${stack.width}×${stack.height}×${stack.depth}`);
    }
    const p = { id: `p${++counter}`, project, stackId: stack.stackId };
    projects.set(p.id, p);
    byFolder.set(project.folder, p);
    return summary(p);
  }

  /** A folder where a project may be created: absent (its parent inside an allowed folder) or empty. */
  async function newProjectFolder(folder: string): Promise<string> {
    const exists = await stat(folder).then(
      (s) => s,
      () => null,
    );
    if (exists) {
      const real = await deps.guard.check(folder);
      if (!exists.isDirectory()) throw new ApiError('user', `${folder}: not a folder`);
      if ((await readdir(real)).length > 0) throw new ApiError('user', `${folder}: the folder is not empty (open it if it is a project)`);
      return real;
    }
    const parent = await deps.guard.check(dirname(folder));
    const real = join(parent, basename(folder));
    await mkdir(real);
    return real;
  }

  async function result(p: OpenProject, entry: HistoryEntry | null, t0: number, created: number[] = []): Promise<EditResult> {
    const deltas = entry?.deltas ?? [];
    // Every level of those slices' tiles is stale now; the next read cuts them from the edited labels.
    if (entry) for (const d of entry.deltas) deps.pyramid.drop(`proj:${p.id}:${entry.layer}:${d.z}:`);
    return {
      slices: [...new Set(deltas.map((d) => d.z))],
      layer: entry?.layer ?? null,
      changedPx: deltas.reduce((s, d) => s + d.indices.length, 0),
      undoDepth: p.project.undoDepth,
      redoDepth: p.project.redoDepth,
      newIds: created,
      ms: performance.now() - t0,
    };
  }

  /**
   * The map a split floods: the newest of the project's stored map and the session's newest job map of the slice (the
   * same rule the viewer follows for what it shows), each at its last refinement round.
   */
  async function mapFor(p: OpenProject, z: number): Promise<MembraneMap> {
    const storedAt = p.project.mapRounds(z) > 0 && p.project.info.resultsStoredAt !== null ? Date.parse(p.project.info.resultsStoredAt) : null;
    const job = newestWithMaps(deps.jobsOf(p.stackId), z);
    const jobResults = job && (storedAt === null || (job.finishedAt ?? Infinity) > storedAt) ? deps.jobResults(job.jobId) : null;
    if (jobResults) return jobResults.lastMap(z);
    const stored = await p.project.map(z);
    if (stored) return stored;
    // No model output for this slice: the raw slice's darkness stands in for P(membrane) (EM membranes are stained).
    return membraneFromRaw(await deps.stackOf(p.stackId).stack.readSlice(z));
  }

  /** Stores a job's results in a project: its maps always, its labels when `withLabels`. */
  async function storeJob(p: OpenProject, job: JobResults, withLabels: boolean): Promise<StoredJobResults> {
    const r = await p.project.storeResults(sliceResults(job, withLabels));
    deps.pyramid.drop(`proj:${p.id}:labels:`);
    return { jobId: job.info.jobId, ...r };
  }

  function jobEnded(jobId: string): void {
    const job = deps.jobResults(jobId);
    const work = (async () => {
      for (const p of [...projects.values()]) {
        let stored: StoredJobResults | null = null;
        let error: string | null = null;
        try {
          if (job && job.info.stackId === p.stackId && job.info.readySlices.length > 0) stored = await storeJob(p, job, job.info.hasLabels);
          else await p.project.snapshot();
        } catch (e) {
          if (!projects.has(p.id)) continue; // closed meanwhile: it saved itself on closing
          error = `${p.project.folder}: job ${jobId} could not be saved in the project (${e instanceof Error ? e.message : String(e)})`;
          console.error(`emseg: ${error}`);
        }
        if (projects.has(p.id)) deps.emit({ type: 'project', project: summary(p), stored, error });
      }
    })();
    saving.add(work);
    void work.finally(() => saving.delete(work));
  }

  function toolDelta(edit: ProofreadEdit, labels: Labels, z: number, locked: ReadonlySet<number>, map: MembraneMap | null, next: number): LabelDelta {
    switch (edit.tool) {
      case 'paint':
        return paintStroke(labels, z, edit.points, edit.radiusPx, edit.label, locked);
      case 'fill':
        return fillRegion(labels, z, edit.x, edit.y, edit.label, locked);
      case 'merge':
        return mergeSegments(labels, z, edit.ids, locked);
      case 'delete':
        return deleteSegment(labels, z, edit.id, locked);
      case 'cut':
        return cutSegment(labels, z, edit.id, strokePixels(labels.width, labels.height, edit.points, edit.radiusPx), next, locked);
      case 'split': {
        if (!map) throw new ApiError('internal', 'split without a membrane map');
        const seeds = edit.seeds.map((g) => strokePixels(labels.width, labels.height, g, edit.radiusPx));
        return splitSegment(labels, map, z, edit.id, seeds, next, locked);
      }
    }
  }

  const handlers: Pick<Handlers, ProjectCalls> = {
    async createProject({ folder, stackId, labelsFrom, jobId }) {
      const s = deps.stackOf(stackId);
      if (labelsFrom === 'truth' && !s.truth) throw new ApiError('user', `stack ${s.summary.name} has no ground truth to start the labels from`);
      const real = await newProjectFolder(folder);
      await deps.guard.addRoot(real);
      const { width, height, depth } = s.summary;
      const truthIds = async (z: number) => (s.truth ? truthToLabels(await s.truth.readSlice(z)).data : null);
      const project = await Project.create(real, {
        stackPath: s.summary.path,
        width,
        height,
        depth,
        async initial(layer, z) {
          // The stack's ground truth as it is (ISBI 0/255 or instance ids): the scores read either kind.
          if (layer === 'truth') return s.truth ? toUint32(await s.truth.readSlice(z)) : null;
          if (labelsFrom === 'truth') return truthIds(z);
          if (labelsFrom === 'job') {
            const img = await deps.jobLabels(jobId ?? '', stackId, z);
            return img ? toUint32(img) : null;
          }
          return null;
        },
      });
      // The project holds the maps too: those of the job the labels came from, else the stack's newest.
      const source = labelsFrom === 'job' ? jobId : newestWithMaps(deps.jobsOf(stackId))?.jobId;
      const job = source === undefined ? null : deps.jobResults(source);
      if (job && job.info.rounds > 0 && job.info.readySlices.length > 0) {
        try {
          await project.storeResults(sliceResults(job, false));
        } catch (e) {
          await project.close().catch(() => undefined);
          throw e;
        }
      }
      return register(project);
    },

    async openProject({ folder }) {
      const real = await deps.guard.check(folder);
      const open = byFolder.get(real);
      if (open) return summary(open);
      const project = await Project.open(real);
      return register(project);
    },

    async closeProject({ projectId }) {
      const p = get(projectId);
      projects.delete(projectId);
      byFolder.delete(p.project.folder);
      deps.pyramid.drop(`proj:${p.id}:`);
      await p.project.close();
      return { closed: true };
    },

    async readProject(a: { projectId: string; layer: ProjectReadLayer } & TileArgs) {
      const p = get(a.projectId);
      checkZ(p, a.z);
      const g = deps.stackOf(p.stackId).summary;
      if (!tileRect(g, a.level, a.tx, a.ty)) throw new ApiError('not-found', `no tile ${a.tx},${a.ty} at level ${a.level}`);
      const { layer, z } = a;
      let img: Image2D;
      if (layer === 'labels' || layer === 'truth') {
        img = await deps.pyramid.level(`proj:${p.id}:${layer}:${z}:r${p.project.revision(layer, z)}`, a.level, () => p.project.slice(layer, z), 'pick');
      } else {
        // Stored results: the file name changes with every job that stores them, so it keys the cache.
        const round = layer === 'proposal' ? 0 : Number(layer.slice('round-'.length));
        const file = p.project.resultFile(layer === 'proposal' ? 'proposal' : 'map', z, round);
        if (!file) throw new ApiError('not-found', `project ${p.id} has no ${layer} for slice ${z}`);
        const load = async (): Promise<Image2D> => {
          const data = layer === 'proposal' ? await p.project.proposal(z) : await p.project.map(z, round);
          if (!data) throw new ApiError('not-found', `project ${p.id} has no ${layer} for slice ${z}`);
          return data;
        };
        img = await deps.pyramid.level(`proj:${p.id}:${layer}:${z}:${file}`, a.level, load, layer === 'proposal' ? 'pick' : 'mean');
      }
      const buf = cutTile(img, g, a.level, a.tx, a.ty);
      if (!buf) throw new ApiError('not-found', 'tile outside the slice');
      return buf;
    },

    async editProject({ projectId, z, layer, edit }) {
      const t0 = performance.now();
      const p = get(projectId);
      checkZ(p, z);
      // The membrane map is read before the edit is queued: reading a stack slice may take a while.
      const map = edit.tool === 'split' ? await mapFor(p, z) : null;
      // Only split and cut make new ids; a brush stroke must not pay for a scan of the whole slice.
      const makesIds = edit.tool === 'split' || edit.tool === 'cut';
      let maxBefore = 0;
      const entry = await p.project.edit(layer, z, (labels, locked) => {
        if (makesIds) maxBefore = maxLabel(labels.data);
        // Ground truth has no locks: locking is about protecting proofread segments.
        return toolDelta(edit, labels, z, layer === 'labels' ? locked : new Set(), map, maxBefore + 1);
      });
      return result(p, entry, t0, entry && makesIds ? newIds(entry.deltas, () => maxBefore) : []);
    },

    async undoEdit({ projectId }) {
      const t0 = performance.now();
      const p = get(projectId);
      return result(p, await p.project.undo(), t0);
    },

    async redoEdit({ projectId }) {
      const t0 = performance.now();
      const p = get(projectId);
      return result(p, await p.project.redo(), t0);
    },

    async newLabel({ projectId, z, layer }) {
      const p = get(projectId);
      checkZ(p, z);
      return { label: maxLabel((await p.project.slice(layer, z)).data) + 1 };
    },

    async lockSegment({ projectId, z, id, locked }) {
      const p = get(projectId);
      checkZ(p, z);
      return { locked: await p.project.setLocked(z, id, locked) };
    },

    async setSliceStatus({ projectId, z, status }) {
      const p = get(projectId);
      checkZ(p, z);
      await p.project.setSliceStatus(z, status);
      return { sliceStatus: p.project.info.sliceStatus.slice() };
    },

    async sliceQuality({ projectId, z, maxErrors }) {
      const p = get(projectId);
      checkZ(p, z);
      if (!p.project.hasSlice('truth', z)) return { z, scores: null, errors: [] };
      const truth = truthToLabels(await p.project.slice('truth', z));
      const q = sliceQuality(await p.project.slice('labels', z), groundTruthSegments({ kind: 'instance', labels: truth }), maxErrors ?? 10);
      const { vrand, vrandSplit, vrandMerge, vinfo, vinfoSplit, vinfoMerge } = q.scores;
      return { z, scores: { vrand, vrandSplit, vrandMerge, vinfo, vinfoSplit, vinfoMerge }, errors: q.errors };
    },

    async exportProject({ projectId, folder }) {
      const p = get(projectId);
      let out: string;
      if (folder === undefined) {
        out = join(p.project.folder, 'export');
        await mkdir(out, { recursive: true });
      } else {
        out = await deps.guard.check(folder);
      }
      const r = await exportProject(p.project, out, deps.stackOf(p.stackId).summary.pixelSizeNm);
      return { labels: r.labels, truth: r.truth, membrane: r.membrane, membraneRounds: r.membraneRounds, manifest: r.manifest };
    },

    async resolveProposal({ projectId, slices, accept }) {
      const t0 = performance.now();
      const p = get(projectId);
      // A slice without a proposal fails in the store, before anything changes (a user error: the door says so).
      for (const z of slices) checkZ(p, z);
      const maxBefore = new Map<number, number>();
      const entry = await p.project.resolveProposals(
        slices,
        accept
          ? (labels, proposal, locked, z) => {
              // Pieces of the proposal that would take a locked id get fresh ids above everything on either slice.
              const max = Math.max(maxLabel(labels.data), maxLabel(proposal.data));
              maxBefore.set(z, max);
              return replaceLabels(labels, z, proposal.data, max + 1, locked);
            }
          : null,
      );
      return { edit: await result(p, entry, t0, entry ? newIds(entry.deltas, (z) => maxBefore.get(z) ?? 0) : []), proposals: summary(p).proposals };
    },
  };

  return {
    handlers,
    jobEnded,
    async close() {
      await Promise.all([...saving]);
      for (const p of projects.values()) await p.project.close().catch(() => undefined);
      projects.clear();
      byFolder.clear();
    },
  };
}
