// The app: toolbar (open, sample, recent, view), the viewer, the side panels (layers, jobs), the slice bar and the
// status bar. React state holds only small things: the open stack's summary, the slice index, layer settings, the
// job list. Pixels live in the scene's pixel store; the view transform lives in the scene.
import { useCallback, useEffect, useMemo, useState, type DragEvent } from 'react';
import type { AppInfo, JobInfo, JobKind, JobParams, ProjectSummary, RecentEntry, StackSummary } from '../main/api/contract';
import { api, ApiCallError, pathOfDroppedFile } from './api';
import { BatchPanel } from './components/BatchPanel';
import { FolderBrowser } from './components/FolderBrowser';
import { JobsPanel } from './components/JobsPanel';
import { LayersPanel } from './components/LayersPanel';
import { SliceBar } from './components/SliceBar';
import { StatusBar } from './components/StatusBar';
import { Viewer } from './components/Viewer';
import { defaultRaw, layerRows, sceneInput, type LayerSetting, type ProjectView, type RawDisplay } from './layers';
import { ProofreadPanel } from './proofread/ProofreadPanel';
import { autoLevels, type TilePixels } from './scene/colorize';
import type { Scene } from './scene/scene';
import { tileKey } from './scene/tile-store';

function message(e: unknown): string {
  return e instanceof ApiCallError || e instanceof Error ? e.message : String(e);
}

/** A path from a drop in browser mode: a file:// URI or an absolute path dragged as text (never the file itself). */
function droppedPathFromText(dt: DataTransfer): string | null {
  const uri = dt.getData('text/uri-list').split(/\r?\n/).find((l) => l.startsWith('file://'));
  if (uri) return decodeURIComponent(new URL(uri).pathname);
  const text = dt.getData('text/plain').trim();
  return text.startsWith('/') && !text.includes('\n') ? text : null;
}

const IMAGE_FILE = /\.(tiff?|png|jpe?g)$/i;

/** The image files of a drop, a dropped folder's included (one level: a folder of slices). */
async function droppedImageFiles(dt: DataTransfer): Promise<File[]> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  // Without file-system entries (a drop made by a script, older browsers) the plain file list is all there is.
  const files: File[] = entries.length === 0 ? [...dt.files] : [];
  for (const entry of entries) {
    if (entry.isFile) {
      files.push(await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries returns at most ~100 entries per call: read until it returns none.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
        if (batch.length === 0) break;
        for (const e of batch) if (e.isFile) files.push(await new Promise<File>((resolve, reject) => (e as FileSystemFileEntry).file(resolve, reject)));
      }
    }
  }
  return files.filter((f) => IMAGE_FILE.test(f.name) && !f.name.startsWith('.'));
}

function isTyping(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  if (!el) return false;
  if (el.tagName === 'TEXTAREA' || el.isContentEditable) return true;
  return el.tagName === 'INPUT' && !['range', 'checkbox', 'radio', 'button'].includes((el as HTMLInputElement).type);
}

export function App() {
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [stack, setStack] = useState<StackSummary | null>(null);
  const [z, setZ] = useState(0);
  const [jobs, setJobs] = useState<JobInfo[]>([]);
  const [recent, setRecent] = useState<RecentEntry[]>([]);
  const [settings, setSettings] = useState<Record<string, LayerSetting>>({});
  const [raw, setRaw] = useState<RawDisplay>(defaultRaw(null));
  const [scene, setScene] = useState<Scene | null>(null);
  const [notice, setNotice] = useState<{ text: string; error: boolean } | null>(null);
  const [browsing, setBrowsing] = useState(false);
  const [recentOpen, setRecentOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [project, setProject] = useState<ProjectSummary | null>(null);
  const [projectRev, setProjectRev] = useState(0);
  const [batchOpen, setBatchOpen] = useState(false);

  const fail = useCallback((e: unknown) => setNotice({ text: message(e), error: true }), []);

  useEffect(() => {
    api.appInfo({}).then(setInfo, fail);
    api.listRecent({}).then(setRecent, () => undefined);
    api.listJobs({}).then(setJobs, () => undefined);
    return api.onEvent((e) => {
      if (e.type !== 'job') return;
      setJobs((js) => {
        const i = js.findIndex((j) => j.jobId === e.job.jobId);
        if (i < 0) return [...js, e.job];
        const next = js.slice();
        next[i] = e.job;
        return next;
      });
    });
  }, [fail]);

  const opened = useCallback((s: StackSummary) => {
    setStack(s);
    setZ(0);
    setRaw(defaultRaw(s));
    setNotice(null);
    document.title = `${s.name} — EMSeg`;
    api.listRecent({}).then(setRecent, () => undefined);
  }, []);

  const openPath = useCallback(
    (path: string) => {
      setBusy(true);
      setBrowsing(false);
      setRecentOpen(false);
      api
        .openStack({ path })
        .then(opened, fail)
        .finally(() => setBusy(false));
    },
    [opened, fail],
  );

  const openSample = useCallback(() => {
    setBusy(true);
    api
      .sampleStack({})
      .then(opened, fail)
      .finally(() => setBusy(false));
  }, [opened, fail]);

  const pick = useCallback(
    (mode: 'file' | 'folder') => {
      if (!info?.nativePicker) {
        setBrowsing(true);
        return;
      }
      api.pickPath({ mode }).then((r) => r && openPath(r.path), fail);
    },
    [info, openPath, fail],
  );

  /** Browser mode: a page never learns where dropped files live, so their bytes go to the server and open there. */
  const uploadAndOpen = useCallback(
    async (files: File[]) => {
      const uploadId = `u${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('')}`;
      setBusy(true);
      try {
        let last: { folder: string; file: string } | null = null;
        for (const [i, f] of files.entries()) {
          setNotice({ text: `Uploading ${f.name} (${i + 1} of ${files.length})…`, error: false });
          last = await api.uploadFile({ uploadId, name: f.name, data: await f.arrayBuffer() });
        }
        if (last) openPath(files.length === 1 ? last.file : last.folder);
      } catch (err) {
        fail(err);
      } finally {
        setBusy(false);
      }
    },
    [openPath, fail],
  );

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const file = e.dataTransfer.files[0] as File | undefined;
    const path = (file && pathOfDroppedFile(file)) ?? droppedPathFromText(e.dataTransfer);
    if (path) {
      openPath(path);
      return;
    }
    // Read the drop now: the DataTransfer is emptied when this handler returns.
    droppedImageFiles(e.dataTransfer).then(
      (files) => (files.length > 0 ? uploadAndOpen(files) : setNotice({ text: 'Nothing to open in that drop: drop TIFF, PNG or JPEG files, or a folder of them.', error: true })),
      fail,
    );
  };

  const goTo = useCallback((next: number) => setZ((cur) => (stack ? Math.max(0, Math.min(stack.depth - 1, next)) : cur)), [stack]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!stack || isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      const steps: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, PageDown: 10, PageUp: -10 };
      if (e.key === ' ') {
        // Space + drag pans (drag alone does too); space must not also press the focused button.
        e.preventDefault();
        return;
      }
      if (e.key in steps) {
        // A focused slider would also move on arrows: let the app own slice keys everywhere, once.
        e.preventDefault();
        setZ((cur) => Math.max(0, Math.min(stack.depth - 1, cur + steps[e.key])));
      } else if (e.key === 'Home') setZ(0);
      else if (e.key === 'End') setZ(stack.depth - 1);
      // With a project open, F is the fill tool (napari's key); 0 fits in either case.
      else if ((e.key === 'f' && !project) || e.key === '0') scene?.fit();
      else if (e.key === '1') scene?.oneToOne();
      else if (e.key === '+' || e.key === '=') scene?.zoomBy(1.25);
      else if (e.key === '-') scene?.zoomBy(0.8);
      else return;
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [stack, scene, project]);

  const onProject = useCallback(
    (p: ProjectSummary | null) => {
      setProject(p);
      // Opening a project opens its stack: show it unless it is already on screen.
      if (p && p.stack.stackId !== stack?.stackId) opened(p.stack);
    },
    [stack, opened],
  );
  const onProjectEdited = useCallback(() => setProjectRev((r) => r + 1), []);
  const projectView: ProjectView | null = useMemo(() => (project ? { project, rev: projectRev } : null), [project, projectRev]);

  const startJob = useCallback(
    (kind: JobKind, params: JobParams) => {
      if (!stack) return;
      api.startJob({ stackId: stack.stackId, kind, params }).then(() => undefined, fail);
    },
    [stack, fail],
  );
  const cancelJob = useCallback((jobId: string) => api.cancelJob({ jobId }).then(() => undefined, fail), [fail]);

  const doAutoLevels = useCallback(() => {
    if (!scene || !stack) return;
    const level = scene.stats.level;
    const source = { kind: 'raw' as const, stackId: stack.stackId, pixelType: stack.pixelType };
    const arrays: TilePixels[] = [];
    const n = Math.ceil(stack.width / 2 ** level / stack.tileSizePx) * Math.ceil(stack.height / 2 ** level / stack.tileSizePx);
    const cols = Math.ceil(stack.width / 2 ** level / stack.tileSizePx);
    for (let i = 0; i < n && arrays.length < 64; i++) {
      const t = scene.tiles.peek(tileKey(source, { z, level, tx: i % cols, ty: Math.floor(i / cols) }));
      if (t) arrays.push(t.data);
    }
    const l = autoLevels(arrays);
    if (l) setRaw((r) => ({ ...r, ...l, brightness: 0, contrast: 1 }));
  }, [scene, stack, z]);

  const rows = useMemo(() => layerRows(stack, jobs, z, projectView), [stack, jobs, z, projectView]);
  const input = useMemo(() => sceneInput(stack, z, jobs, settings, raw, 0x5eed, projectView), [stack, z, jobs, settings, raw, projectView]);
  const stackJobs = jobs;
  const labelsShown = input.layers.some((l) => l.id === 'labels' || l.id === 'truth');

  return (
    <div
      className={`app${dragging ? ' dragging' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <header className="toolbar">
        <strong className="brand">EMSeg</strong>
        <button type="button" onClick={() => pick('file')} data-testid="open-file">
          Open file…
        </button>
        <button type="button" onClick={() => pick('folder')} data-testid="open-folder">
          Open folder…
        </button>
        <div className="menu">
          <button type="button" onClick={() => setRecentOpen((o) => !o)} disabled={recent.length === 0} data-testid="recent">
            Recent ▾
          </button>
          {recentOpen && (
            <ul className="menu-list" data-testid="recent-list">
              {recent.map((r) => (
                <li key={r.path}>
                  <button type="button" onClick={() => openPath(r.path)} title={r.path}>
                    {r.name}
                    {r.depth !== undefined ? <span className="hint"> {`${r.width}×${r.height}×${r.depth}`}</span> : null}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
        <button type="button" onClick={openSample} disabled={info?.samplePath === null} data-testid="open-sample" title={info?.samplePath ?? 'The sample stack is not installed'}>
          Sample stack
        </button>
        <button type="button" onClick={() => setBatchOpen(true)} data-testid="open-batch" title="Segment a folder of stacks or images">
          Batch…
        </button>
        <span className="sep" />
        <button type="button" onClick={() => scene?.fit()} disabled={!stack} title="Fit the slice (F)" data-testid="fit">
          Fit
        </button>
        <button type="button" onClick={() => scene?.oneToOne()} disabled={!stack} title="One data pixel per screen pixel (1)" data-testid="one-to-one">
          1:1
        </button>
        <button type="button" onClick={() => scene?.zoomBy(1.25)} disabled={!stack} title="Zoom in (+)">
          +
        </button>
        <button type="button" onClick={() => scene?.zoomBy(0.8)} disabled={!stack} title="Zoom out (−)">
          −
        </button>
        <span className="spacer" />
        {busy && <span className="hint">opening…</span>}
        {stack && (
          <span className="stack-title" title={stack.path} data-testid="stack-title">
            {stack.name} · {stack.width}×{stack.height}×{stack.depth} {stack.pixelType}
          </span>
        )}
      </header>
      {notice && (
        <div className={`notice${notice.error ? ' error' : ''}`} role="alert" data-testid="notice">
          {notice.text}
          <button type="button" onClick={() => setNotice(null)} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
      <main className="workspace">
        <Viewer api={api} input={input} onScene={setScene} showLabelOnHover={labelsShown} />
        <aside className="sidebar">
          <LayersPanel
            rows={rows}
            settings={settings}
            onSetting={(id, s) => setSettings((all) => ({ ...all, [id]: s }))}
            raw={raw}
            onRaw={setRaw}
            onAutoLevels={doAutoLevels}
            onResetLevels={() => setRaw(defaultRaw(stack))}
          />
          <ProofreadPanel
            api={api}
            scene={scene}
            stack={stack}
            z={z}
            jobs={jobs}
            project={project}
            rev={projectRev}
            onProject={onProject}
            onEdited={onProjectEdited}
            onError={fail}
            onNotice={(text) => setNotice({ text, error: false })}
          />
          <JobsPanel api={api} nativePicker={info?.nativePicker === true} stack={stack} z={z} jobs={stackJobs} onStart={startJob} onCancel={cancelJob} onError={fail} />
        </aside>
      </main>
      {stack && <SliceBar stack={stack} z={z} onZ={goTo} />}
      {scene && <StatusBar scene={scene} stack={stack} />}
      {browsing && <FolderBrowser api={api} onOpen={openPath} onClose={() => setBrowsing(false)} />}
      {batchOpen && (
        <BatchPanel
          api={api}
          defaultInput={info?.samplePath ? `${info.samplePath}/image` : ''}
          nativePicker={info?.nativePicker === true}
          onOpened={opened}
          onError={fail}
          onClose={() => setBatchOpen(false)}
        />
      )}
    </div>
  );
}
