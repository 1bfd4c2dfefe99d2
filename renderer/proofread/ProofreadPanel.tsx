// The proofreading panel: create or open a project, choose a tool (buttons and the shortcuts of shortcuts.ts), brush
// size, label and layer, undo and redo, per-slice ground-truth status, live V_rand / V_info with the largest errors
// (click one to jump there), a job's proposed labels (accept or discard), export; the notice when a finished job's
// results were stored in the project (a 'project' event). Pointer gestures are the controller's (controller.ts), outside React; this
// component holds only settings and the small results the main side returns.
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { EditResult, EmsegApi, JobInfo, ProjectLayer, ProjectSummary, SliceQualityResult, SliceStatus, StackSummary } from '../../main/api/contract';
import type { Scene } from '../scene/scene';
import { ProofreadController, type ToolSettings } from './controller';
import { SHORTCUTS, TOOL_IDS, TOOL_KEYS, TOOLS, VIEW_SHORTCUTS, type Shortcut } from './shortcuts';

interface Props {
  api: EmsegApi;
  scene: Scene | null;
  stack: StackSummary | null;
  z: number;
  jobs: JobInfo[];
  project: ProjectSummary | null;
  /** Goes up with every edit; the scene's project tiles carry it. */
  rev: number;
  onProject: (p: ProjectSummary | null) => void;
  onEdited: () => void;
  onError: (e: unknown) => void;
  onNotice: (text: string) => void;
}

function isTyping(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  if (!el) return false;
  if (el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable) return true;
  return el.tagName === 'INPUT' && !['range', 'checkbox', 'radio', 'button'].includes((el as HTMLInputElement).type);
}

const STATUS_NAMES: Record<SliceStatus, string> = { 'not-started': 'not started', 'in-progress': 'in progress', done: 'done' };

function ShortcutTable({ rows }: { rows: Shortcut[] }) {
  return (
    <table className="shortcuts">
      <tbody>
        {rows.map((s) => (
          <tr key={s.keys}>
            <th>{s.keys}</th>
            <td>{s.what}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function HelpOverlay({ onClose }: { onClose: () => void }) {
  return (
    <div className="modal-backdrop" onClick={onClose} data-testid="help-overlay">
      <div className="modal" role="dialog" aria-label="Keyboard shortcuts" onClick={(e) => e.stopPropagation()}>
        <h2>Proofreading shortcuts</h2>
        <ShortcutTable rows={SHORTCUTS} />
        <h2>Viewer</h2>
        <ShortcutTable rows={VIEW_SHORTCUTS} />
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}

export function ProofreadPanel({ api, scene, stack, z, jobs, project, rev, onProject, onEdited, onError, onNotice }: Props) {
  const [folder, setFolder] = useState('');
  const [labelsFrom, setLabelsFrom] = useState<'truth' | 'empty' | 'job'>('truth');
  const [settings, setSettings] = useState<ToolSettings>({ tool: 'navigate', radiusPx: 4, label: 1, layer: 'labels' });
  const [quality, setQuality] = useState<SliceQualityResult | null>(null);
  const [hint, setHint] = useState('');
  const [help, setHelp] = useState(false);

  // The controller reads the latest values through this ref: it lives as long as the scene, across renders.
  const live = useRef({ project, z, settings, rev });
  useEffect(() => {
    live.current = { project, z, settings, rev };
  }, [project, z, settings, rev]);

  const labelsJob = useMemo(() => jobs.filter((j) => j.stackId === stack?.stackId && j.hasLabels && j.state === 'done').sort((a, b) => b.createdAt - a.createdAt)[0], [jobs, stack]);

  const refreshQuality = useCallback(() => {
    const p = live.current.project;
    if (!p) return;
    const at = live.current.z;
    api.sliceQuality({ projectId: p.projectId, z: at }).then((q) => {
      if (live.current.z === at) setQuality(q);
    }, onError);
  }, [api, onError]);

  const edited = useCallback(
    (r: EditResult, patch: Partial<ProjectSummary> = {}) => {
      const p = live.current.project;
      if (!p) return;
      const added = r.layer === 'truth' ? r.slices.filter((z) => !p.truthSlices.includes(z)) : [];
      const truthSlices = added.length > 0 ? [...p.truthSlices, ...added].sort((a, b) => a - b) : p.truthSlices;
      onProject({ ...p, ...patch, undoDepth: r.undoDepth, redoDepth: r.redoDepth, truthSlices });
      if (r.changedPx > 0) onEdited();
      if (r.newIds.length > 0) setHint(`new segment${r.newIds.length > 1 ? 's' : ''} ${r.newIds.join(', ')}`);
      refreshQuality();
    },
    [onProject, onEdited, refreshQuality],
  );

  const controller = useMemo(() => {
    if (!scene) return null;
    return new ProofreadController({
      api,
      scene,
      project: () => live.current.project,
      z: () => live.current.z,
      settings: () => live.current.settings,
      valueAt: (x, y) => {
        const p = live.current.project;
        if (!p) return null;
        return scene.valueAt({ kind: 'project', projectId: p.projectId, layer: live.current.settings.layer, rev: live.current.rev }, x, y);
      },
      onEdited: edited,
      onPicked: (label) => setSettings((s) => ({ ...s, label })),
      onLocked: (at, locked) => {
        const p = live.current.project;
        if (p) onProject({ ...p, locked: { ...p.locked, [String(at)]: locked } });
      },
      onError,
      onHint: setHint,
    });
  }, [api, scene, edited, onError, onProject]);

  // The scene's tool follows the chosen tool; a half-made gesture does not survive a change of tool, slice or
  // project (but does survive the project summary changing after an edit: that is the same project).
  const projectId = project?.projectId;
  useEffect(() => {
    if (!scene || !controller) return;
    controller.reset();
    scene.setTool(projectId ? controller.tool() : null);
    return () => scene.setTool(null);
  }, [scene, controller, projectId, settings.tool, settings.layer, z]);

  // Only a new project or slice needs new scores here; edits refresh them as their results arrive.
  useEffect(() => {
    setQuality(null);
    if (projectId) refreshQuality();
  }, [projectId, z, refreshQuality]);

  const undoRedo = useCallback(
    (which: 'undo' | 'redo') => {
      const p = live.current.project;
      if (!p || !controller) return;
      void controller.run(async () => edited(await (which === 'undo' ? api.undoEdit({ projectId: p.projectId }) : api.redoEdit({ projectId: p.projectId }))));
    },
    [api, controller, edited],
  );

  /** Accepts or discards the labels a job proposed for these slices: accepting is one undoable step for all of them. */
  const resolveProposals = useCallback(
    (slices: number[], accept: boolean) => {
      const p = live.current.project;
      if (!p || !controller || slices.length === 0) return;
      void controller.run(async () => {
        const r = await api.resolveProposal({ projectId: p.projectId, slices, accept });
        edited(r.edit, { proposals: r.proposals });
      });
    },
    [api, controller, edited],
  );

  // A job ended: the main side stored its results in the project (and saved it). Take the new summary; labels a job
  // put on empty slices and stored maps need their tiles fetched anew.
  useEffect(() => {
    if (!projectId) return;
    return api.onEvent((e) => {
      if (e.type !== 'project' || e.project.projectId !== projectId) return;
      onProject(e.project);
      if (e.error) {
        onError(new Error(e.error));
        return;
      }
      const s = e.stored;
      if (!s) return;
      if (s.labels.length > 0) onEdited();
      refreshQuality();
      const parts = [`membrane maps of ${s.maps.length} slice${s.maps.length === 1 ? '' : 's'}`];
      if (s.labels.length > 0) parts.push(`labels of slices ${s.labels.map((z) => z + 1).join(', ')} (they were empty)`);
      if (s.proposals.length > 0) parts.push(`proposed labels for slices ${s.proposals.map((z) => z + 1).join(', ')}: accept or discard them under Proofreading`);
      onNotice(`Job ${s.jobId} saved in the project: ${parts.join('; ')}.`);
    });
  }, [api, projectId, onProject, onEdited, onError, onNotice, refreshQuality]);

  // The help overlay opens with or without a project: it lists the viewer's keys too.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === '?' || e.key.toLowerCase() === 'h') setHelp((h) => !h);
      else if (e.key === 'Escape') setHelp(false);
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const newLabel = useCallback(() => {
    const p = live.current.project;
    if (!p) return;
    api.newLabel({ projectId: p.projectId, z: live.current.z, layer: 'labels' }).then((r) => setSettings((s) => ({ ...s, label: r.label, tool: s.tool === 'navigate' ? 'paint' : s.tool })), onError);
  }, [api, onError]);

  useEffect(() => {
    if (!project) return;
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target)) return;
      const key = e.key.toLowerCase();
      if ((e.ctrlKey || e.metaKey) && !e.altKey) {
        if (key === 'z') {
          e.preventDefault();
          undoRedo(e.shiftKey ? 'redo' : 'undo');
        } else if (key === 'y') {
          e.preventDefault();
          undoRedo('redo');
        }
        return;
      }
      if (e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === 'Escape') {
        controller?.reset();
        setSettings((s) => ({ ...s, tool: 'navigate' }));
      } else if (e.key === '[') setSettings((s) => ({ ...s, radiusPx: Math.max(0.5, s.radiusPx - 1) }));
      else if (e.key === ']') setSettings((s) => ({ ...s, radiusPx: Math.min(100, s.radiusPx + 1) }));
      else if (key === 'm') newLabel();
      else if (key === 't') setSettings((s) => ({ ...s, layer: s.layer === 'labels' ? 'truth' : 'labels' }));
      else if (key in TOOL_KEYS && !e.shiftKey) setSettings((s) => ({ ...s, tool: TOOL_KEYS[key] }));
      else return;
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [project, controller, undoRedo, newLabel]);

  const create = () => {
    if (!stack || folder.trim() === '') return;
    const args = labelsFrom === 'job' && labelsJob ? { folder: folder.trim(), stackId: stack.stackId, labelsFrom, jobId: labelsJob.jobId } : { folder: folder.trim(), stackId: stack.stackId, labelsFrom };
    api.createProject(args).then(onProject, onError);
  };
  const open = () => {
    if (folder.trim() !== '') api.openProject({ folder: folder.trim() }).then(onProject, onError);
  };
  const close = () => {
    if (!project) return;
    api.closeProject({ projectId: project.projectId }).then(() => onProject(null), onError);
  };
  const exportAll = () => {
    if (!project) return;
    api.exportProject({ projectId: project.projectId }).then((r) => {
      const maps = r.membrane ? `, ${r.membrane} and ${r.membraneRounds.length} membrane-round-<r>.tif` : '';
      onNotice(`Exported ${r.labels}, ${r.truth}${maps}`);
    }, onError);
  };
  const setStatus = (status: SliceStatus) => {
    if (!project) return;
    api.setSliceStatus({ projectId: project.projectId, z, status }).then((r) => onProject({ ...project, sliceStatus: r.sliceStatus }), onError);
  };

  if (!project) {
    return (
      <section className="panel" aria-label="Proofreading">
        <h2>Proofreading</h2>
        <div className="path-row">
          <input
            placeholder={stack ? `${stack.path}-project` : 'project folder'}
            value={folder}
            onChange={(e) => setFolder(e.target.value)}
            aria-label="Project folder"
            data-testid="project-folder"
          />
        </div>
        <div className="buttons">
          <button type="button" disabled={!stack || folder.trim() === ''} onClick={create} data-testid="project-create">
            New project
          </button>
          <button type="button" disabled={folder.trim() === ''} onClick={open} data-testid="project-open">
            Open project
          </button>
        </div>
        <label className="layer-option">
          labels from
          <select value={labelsFrom} onChange={(e) => setLabelsFrom(e.target.value as typeof labelsFrom)} data-testid="project-labels-from">
            <option value="truth" disabled={!stack?.hasTruth}>
              ground truth
            </option>
            <option value="job" disabled={!labelsJob}>
              newest segmentation
            </option>
            <option value="empty">empty</option>
          </select>
        </label>
        <div className="buttons">
          <button type="button" onClick={() => setHelp(true)} title="Shortcuts (?)" data-testid="help">
            Shortcuts (?)
          </button>
        </div>
        {help && <HelpOverlay onClose={() => setHelp(false)} />}
      </section>
    );
  }

  const locked = project.locked[String(z)] ?? [];
  const hasTruth = project.truthSlices.includes(z);
  const hasProposal = project.proposals.includes(z);
  return (
    <section className="panel" aria-label="Proofreading" data-testid="proofread-panel" data-project-id={project.projectId}>
      <h2>Proofreading</h2>
      <div className="hint" title={project.folder}>
        {project.folder}
      </div>
      <div className="tools">
        {TOOL_IDS.map((t) => (
          <button
            key={t}
            type="button"
            className={settings.tool === t ? 'active' : ''}
            aria-pressed={settings.tool === t}
            onClick={() => setSettings((s) => ({ ...s, tool: t }))}
            title={`${TOOLS[t].name} (${TOOLS[t].key.toUpperCase()})`}
            data-testid={`tool-${t}`}
          >
            {TOOLS[t].name}
          </button>
        ))}
      </div>
      <label className="layer-option">
        brush {settings.radiusPx} px
        <input
          type="range"
          min={0.5}
          max={50}
          step={0.5}
          value={settings.radiusPx}
          onChange={(e) => setSettings((s) => ({ ...s, radiusPx: Number(e.target.value) }))}
          data-testid="brush-radius"
        />
      </label>
      <label className="layer-option">
        label
        <input
          type="number"
          min={0}
          className="small"
          value={settings.label}
          onChange={(e) => setSettings((s) => ({ ...s, label: Math.max(0, Math.floor(Number(e.target.value) || 0)) }))}
          // Enter or Escape hands the keyboard back to the tools' shortcuts.
          onKeyDown={(e) => (e.key === 'Enter' || e.key === 'Escape') && e.currentTarget.blur()}
          data-testid="current-label"
        />
        <button type="button" onClick={newLabel} title="New label (M)">
          new
        </button>
      </label>
      <label className="layer-option">
        edit
        <select value={settings.layer} onChange={(e) => setSettings((s) => ({ ...s, layer: e.target.value as ProjectLayer }))} data-testid="edit-layer">
          <option value="labels">labels</option>
          <option value="truth">ground truth</option>
        </select>
      </label>
      <div className="buttons">
        <button type="button" disabled={project.undoDepth === 0} onClick={() => undoRedo('undo')} data-testid="undo" title="Undo (Ctrl+Z)">
          Undo ({project.undoDepth})
        </button>
        <button type="button" disabled={project.redoDepth === 0} onClick={() => undoRedo('redo')} data-testid="redo" title="Redo (Ctrl+Shift+Z)">
          Redo ({project.redoDepth})
        </button>
        <button type="button" onClick={() => setHelp(true)} title="Shortcuts (?)" data-testid="help">
          ?
        </button>
      </div>
      {hint && <div className="hint" data-testid="proofread-hint">{hint}</div>}
      {project.proposals.length > 0 && (
        <div className="proposal" data-testid="proposal">
          <div className="hint">
            {hasProposal ? `A job's labels wait for slice ${z + 1} (layer "Proposed labels")` : `A job's labels wait for slice${project.proposals.length > 1 ? 's' : ''} ${project.proposals.map((s) => s + 1).join(', ')}`}
          </div>
          <div className="buttons">
            <button type="button" disabled={!hasProposal} onClick={() => resolveProposals([z], true)} title="Replace this slice's labels by the job's (one undoable edit; locked segments stay)" data-testid="proposal-accept">
              Accept
            </button>
            <button type="button" disabled={!hasProposal} onClick={() => resolveProposals([z], false)} data-testid="proposal-discard">
              Discard
            </button>
            <button
              type="button"
              onClick={() => resolveProposals(project.proposals, true)}
              title="Replace the labels of every slice with a proposal by the job's (one undoable edit for all of them; locked segments stay)"
              data-testid="proposal-accept-all"
            >
              Accept all ({project.proposals.length})
            </button>
          </div>
        </div>
      )}
      {locked.length > 0 && <div className="hint">locked on this slice: {locked.join(', ')}</div>}
      <label className="layer-option">
        ground truth of slice {z + 1}
        <select value={project.sliceStatus[z]} onChange={(e) => setStatus(e.target.value as SliceStatus)} data-testid="slice-status">
          {(Object.keys(STATUS_NAMES) as SliceStatus[]).map((s) => (
            <option key={s} value={s}>
              {STATUS_NAMES[s]}
            </option>
          ))}
        </select>
      </label>
      {hasTruth && quality?.scores && (
        <div className="quality" data-testid="quality">
          <span data-testid="quality-vrand">V_rand {quality.scores.vrand.toFixed(4)}</span> · <span data-testid="quality-vinfo">V_info {quality.scores.vinfo.toFixed(4)}</span>
          <ol className="errors">
            {quality.errors.map((er, i) => (
              <li key={i}>
                <button type="button" onClick={() => scene?.centerOn(er.x, er.y)} data-testid={`error-${i}`}>
                  {er.kind} {er.ids.join('/')} · {(er.share * 100).toFixed(0)}%
                </button>
              </li>
            ))}
          </ol>
        </div>
      )}
      <div className="buttons">
        <button type="button" onClick={exportAll} data-testid="project-export">
          Export
        </button>
        <button type="button" onClick={close} data-testid="project-close">
          Close project
        </button>
      </div>
      {help && <HelpOverlay onClose={() => setHelp(false)} />}
    </section>
  );
}
