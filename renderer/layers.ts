// From what the user chose in the layers panel to what the scene draws: which job each result layer comes from, in
// which order layers stack, and which sources the status bar reads. Pure functions of app state, no pixels.
import type { JobInfo, ProjectSummary, StackSummary } from '../main/api/contract';
import type { TileStyle } from './scene/colorize';
import type { LayerSpec, SceneInput } from './scene/scene';
import type { TileSource } from './scene/tile-store';

export interface LayerSetting {
  visible: boolean;
  opacity: number;
  /** Round layers (r ≥ 1): show the difference to round r-1 instead of the map. */
  diff?: boolean;
  /** Labels and ground truth: draw only segment edges. */
  boundaryOnly?: boolean;
}

export interface RawDisplay {
  lo: number;
  hi: number;
  brightness: number;
  contrast: number;
}

export interface LayerRow {
  id: string;
  name: string;
  kind: 'raw' | 'map' | 'round' | 'labels' | 'truth' | 'proposal';
  /** Where the data comes from, for the panel's hint ('job j3, slice not ready' …). */
  jobId?: string;
  round?: number;
  /** Data exists for the current slice. */
  available: boolean;
}

// Labels are drawn half transparent by default so the membranes under them stay visible.
export const DEFAULT_SETTINGS: Record<string, LayerSetting> = {
  raw: { visible: true, opacity: 1 },
  map: { visible: true, opacity: 0.8 },
  labels: { visible: true, opacity: 0.5, boundaryOnly: false },
  truth: { visible: false, opacity: 0.9, boundaryOnly: true },
  // A job's proposed labels are shown on demand, as outlines over the labels they would replace.
  proposal: { visible: false, opacity: 0.9, boundaryOnly: true },
};

export function defaultSetting(id: string): LayerSetting {
  return DEFAULT_SETTINGS[id] ?? { visible: false, opacity: 0.8, diff: false };
}

/** Full range of a pixel type: the display window before auto-levels. */
export function defaultRaw(stack: StackSummary | null): RawDisplay {
  const hi = stack?.pixelType === 'uint16' ? 65535 : stack?.pixelType === 'float32' ? 1 : stack?.pixelType === 'uint32' ? 4294967295 : 255;
  return { lo: 0, hi, brightness: 0, contrast: 1 };
}

/** The newest job of this stack that has (or will have) membrane maps, and the newest with labels. */
export function resultJobs(jobs: JobInfo[], stackId: string | undefined): { maps?: JobInfo; labels?: JobInfo } {
  const mine = jobs.filter((j) => j.stackId === stackId && j.state !== 'failed' && (j.readySlices.length > 0 || j.state === 'running')).sort((a, b) => b.createdAt - a.createdAt);
  return { maps: mine.find((j) => j.rounds > 0), labels: mine.find((j) => j.hasLabels) };
}

/** The open project, when it belongs to the stack on screen: its labels and ground truth replace the job's and the stack's. */
export interface ProjectView {
  project: ProjectSummary;
  /** Goes up with every edit (tile keys carry it). */
  rev: number;
}

/**
 * Whether the maps on screen are the project's stored ones: when it has any and they are at least as new as the
 * newest job's (a job's results are stored in the project when it ends; until then its own maps show as they arrive).
 * The main side's split picks its map by the same rule.
 */
export function mapsFromProject(project: ProjectSummary | null, mapsJob: JobInfo | undefined): boolean {
  if (!project || Object.keys(project.maps).length === 0) return false;
  if (!mapsJob) return true;
  return project.resultsStoredAt !== null && mapsJob.finishedAt !== null && project.resultsStoredAt >= mapsJob.finishedAt;
}

function projectMapRounds(project: ProjectSummary): number {
  return Math.max(0, ...Object.values(project.maps));
}

export function layerRows(stack: StackSummary | null, jobs: JobInfo[], z: number, pv: ProjectView | null = null): LayerRow[] {
  if (!stack) return [];
  const { maps, labels } = resultJobs(jobs, stack.stackId);
  const project = pv?.project.stack.stackId === stack.stackId ? pv.project : null;
  const rows: LayerRow[] = [{ id: 'raw', name: 'Raw', kind: 'raw', available: true }];
  if (project && mapsFromProject(project, maps)) {
    const here = project.maps[String(z)] ?? 0;
    rows.push({ id: 'map', name: 'Membrane map (project)', kind: 'map', round: 0, available: here > 0 });
    for (let r = 1; r < projectMapRounds(project); r++) rows.push({ id: `round-${r}`, name: `Refinement round ${r} (project)`, kind: 'round', round: r, available: here > r });
  } else if (maps) {
    const ready = maps.readySlices.includes(z);
    rows.push({ id: 'map', name: 'Membrane map', kind: 'map', jobId: maps.jobId, round: 0, available: ready });
    for (let r = 1; r < maps.rounds; r++) rows.push({ id: `round-${r}`, name: `Refinement round ${r}`, kind: 'round', jobId: maps.jobId, round: r, available: ready });
  }
  if (project) {
    rows.push({ id: 'labels', name: 'Labels (project)', kind: 'labels', available: true });
    rows.push({ id: 'truth', name: 'Ground truth (project)', kind: 'truth', available: project.truthSlices.includes(z) });
    if (project.proposals.length > 0) rows.push({ id: 'proposal', name: 'Proposed labels (job, not accepted)', kind: 'proposal', available: project.proposals.includes(z) });
    return rows;
  }
  if (labels) rows.push({ id: 'labels', name: 'Segmentation', kind: 'labels', jobId: labels.jobId, available: labels.readySlices.includes(z) });
  if (stack.hasTruth) rows.push({ id: 'truth', name: 'Ground truth', kind: 'truth', available: true });
  return rows;
}

const readySets = new WeakMap<JobInfo, Set<number>>();
function readySet(j: JobInfo): Set<number> {
  let s = readySets.get(j);
  if (!s) {
    s = new Set(j.readySlices);
    readySets.set(j, s);
  }
  return s;
}

export function sceneInput(
  stack: StackSummary | null,
  z: number,
  jobs: JobInfo[],
  settings: Record<string, LayerSetting>,
  raw: RawDisplay,
  labelSeed: number,
  pv: ProjectView | null = null,
): SceneInput {
  if (!stack) return { stack: null, z: 0, layers: [], readout: {} };
  const { maps, labels } = resultJobs(jobs, stack.stackId);
  const project = pv?.project.stack.stackId === stack.stackId ? pv.project : null;
  const rawSource: TileSource = { kind: 'raw', stackId: stack.stackId, pixelType: stack.pixelType };
  const layers: LayerSpec[] = [];
  const readout: SceneInput['readout'] = { raw: rawSource };
  const setting = (id: string) => settings[id] ?? defaultSetting(id);
  const add = (id: string, source: TileSource, style: TileStyle, ready?: ReadonlySet<number>, previous?: TileSource) => {
    const s = setting(id);
    if (s.visible && s.opacity > 0) layers.push({ id, source, style, opacity: s.opacity, ready, previous });
  };
  add('raw', rawSource, { kind: 'raw', ...raw });
  if (project && mapsFromProject(project, maps)) {
    // Stored maps change only when a job stores new ones: their tiles are keyed by that time, not by the edit count.
    const rev = project.resultsStoredAt ?? 0;
    const round = (r: number): TileSource => ({ kind: 'project', projectId: project.projectId, layer: `round-${r}`, rev });
    const readyFrom = (r: number) => new Set(Object.entries(project.maps).flatMap(([zs, n]) => (n > r ? [Number(zs)] : [])));
    add('map', round(0), { kind: 'map' }, readyFrom(0));
    readout.map = round(0);
    for (let r = 1; r < projectMapRounds(project); r++) {
      const s = setting(`round-${r}`);
      add(`round-${r}`, round(r), s.diff ? { kind: 'diff' } : { kind: 'map' }, readyFrom(r), s.diff ? round(r - 1) : undefined);
      if (s.visible && !s.diff) readout.map = round(r);
    }
  } else if (maps) {
    const ready = readySet(maps);
    const round = (r: number): TileSource => ({ kind: 'result', jobId: maps.jobId, layer: `round-${r}` });
    add('map', round(0), { kind: 'map' }, ready);
    readout.map = round(0);
    for (let r = 1; r < maps.rounds; r++) {
      const s = setting(`round-${r}`);
      add(`round-${r}`, round(r), s.diff ? { kind: 'diff' } : { kind: 'map' }, ready, s.diff ? round(r - 1) : undefined);
      // The status bar shows the map value of the highest round on screen: what the user is looking at.
      if (s.visible && !s.diff) readout.map = round(r);
    }
  }
  if (project && pv) {
    const labelsSource: TileSource = { kind: 'project', projectId: project.projectId, layer: 'labels', rev: pv.rev };
    const truthSource: TileSource = { kind: 'project', projectId: project.projectId, layer: 'truth', rev: pv.rev };
    add('labels', labelsSource, { kind: 'labels', boundaryOnly: setting('labels').boundaryOnly ?? false, seed: labelSeed });
    add('truth', truthSource, { kind: 'labels', boundaryOnly: setting('truth').boundaryOnly ?? true, seed: labelSeed + 1 });
    if (project.proposals.length > 0) {
      const proposal: TileSource = { kind: 'project', projectId: project.projectId, layer: 'proposal', rev: project.resultsStoredAt ?? 0 };
      add('proposal', proposal, { kind: 'labels', boundaryOnly: setting('proposal').boundaryOnly ?? true, seed: labelSeed + 2 }, new Set(project.proposals));
    }
    // Hover and pick read the layer being edited: labels unless only the ground truth is shown.
    readout.labels = setting('labels').visible || !setting('truth').visible ? labelsSource : truthSource;
    return { stack, z, layers, readout };
  }
  if (labels) {
    const source: TileSource = { kind: 'result', jobId: labels.jobId, layer: 'labels' };
    add('labels', source, { kind: 'labels', boundaryOnly: setting('labels').boundaryOnly ?? false, seed: labelSeed }, readySet(labels));
    readout.labels = source;
  }
  if (stack.hasTruth) {
    const source: TileSource = { kind: 'truth', stackId: stack.stackId };
    add('truth', source, { kind: 'labels', boundaryOnly: setting('truth').boundaryOnly ?? true, seed: labelSeed + 1 });
    if (!readout.labels && setting('truth').visible) readout.labels = source;
  }
  return { stack, z, layers, readout };
}
