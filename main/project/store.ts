// A proofreading project: a folder that holds everything a user's corrections depend on, and loses none of it.
//
//   project.json            what the project is (the stack it refers to, never modified; its size), which snapshot
//                           files and which journal are current (the generation), per-slice ground-truth status,
//                           locked segments, settings. Rewritten only by temp file + rename: it is the commit point.
//   slices/<layer>-z<z>-g<g>.u32   label / ground-truth slices of the snapshot (header + CRC-32 + uint32 pixels)
//   history-g<g>.bin        the undo and redo stacks at the snapshot
//   journal-g<g>.log        every edit, undo and redo since the snapshot, appended as it happens (length + CRC-32
//                           records: a record torn by kill -9 is recognised and dropped, with everything after it)
//   maps/round<r>-z<z>-v<v>.f32        membrane maps a job made (round 0 = membrane model, r = refinement round r)
//   slices/proposal-z<z>-v<v>.u32      labels a job made for a slice that had labels already, until the user accepts
//                                      them or discards them; accepting several slices at once is one undoable step
//                                      (one history entry with a delta per slice, one journal record)
//   project.lock            the process that has the project open (lock.ts): one writer at a time
//
// Opening = read project.json, load its snapshot lazily, replay its journal; so undo history survives a restart.
// Compaction (every so often, and on close) writes the slices changed since the last snapshot and the history under
// the next generation, then commits by renaming a new project.json into place, then deletes what the old generation
// no longer shares. A crash before the rename leaves the old generation whole; after it, the new one. Files of a
// generation that never committed are removed on the next open.
//
// A job's results (storeResults) are model output, not edits: they never enter the journal or the undo history. Its
// maps and proposed labels are written as new files (version v, never over a file project.json names), then one
// compaction commits them with everything else; labels for a slice that was empty and never edited become that
// slice's snapshot directly, since there is nothing of the user's to protect.
//
// Edits are appended to the journal before they are acknowledged: the kernel holds them from then on, so killing the
// process loses nothing acknowledged; an fsync every few seconds bounds what a power cut can take.
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { applyDeltas, deltaBytes, revertDeltas, type LabelDelta } from '../../ml/proofread';
import type { Labels, MembraneMap } from '../../ml/types';
import { writeFileAtomic } from '../engine/atomic';
import {
  decodeHistory,
  decodeJournal,
  decodeMap,
  decodeSlice,
  encodeHistory,
  encodeMap,
  encodeRecord,
  encodeSlice,
  LAYERS,
  ProjectFormatError,
  type HistoryEntry,
  type JournalRecord,
  type ProjectLayer,
} from './codec';
import { ProjectLock } from './lock';

export type { HistoryEntry, ProjectLayer } from './codec';
export { ProjectFormatError } from './codec';
export { ProjectLockedError } from './lock';

export type SliceStatus = 'not-started' | 'in-progress' | 'done';
export const SLICE_STATUSES: readonly SliceStatus[] = ['not-started', 'in-progress', 'done'];

// Version 2: history entries may hold several deltas (codec.ts), which an EMSeg that knows only version 1 would
// misread. Version 1 projects open as they are and are written back as version 2.
const PROJECT_VERSION = 2;

export interface ProjectFile {
  format: 'emseg-project';
  version: typeof PROJECT_VERSION;
  /** The raw stack, by absolute path: read, never written. */
  stackPath: string;
  width: number;
  height: number;
  depth: number;
  generation: number;
  journal: string;
  history: string | null;
  /** Snapshot file of each slice that has one, per layer (z as the key); slices without one are all 0. */
  slices: Record<ProjectLayer, Record<string, string>>;
  /** Ground-truth annotation status per slice. */
  sliceStatus: SliceStatus[];
  /** Locked segment ids per slice (z as the key). */
  locked: Record<string, number[]>;
  /** Membrane maps stored from jobs per slice (z as the key): one file per round, round 0 first. */
  maps: Record<string, string[]>;
  /** Labels a job proposed per slice (z as the key), waiting to be accepted or discarded. */
  proposals: Record<string, string>;
  /** Version of the last stored job result (names its files); when it was stored (ISO date), or null. */
  resultsVersion: number;
  resultsStoredAt: string | null;
  createdAt: string;
  savedAt: string;
}

/** One slice of a job's results, as storeResults takes them. */
export interface SliceResults {
  z: number;
  /** Membrane map of each round, round 0 first (float32, 1 = membrane). */
  maps: Float32Array[];
  /** The job's labels, or null when it made none. */
  labels: Uint32Array | null;
}

/** What storeResults did, slice by slice. */
export interface StoredResults {
  /** Slices whose maps were stored. */
  maps: number[];
  /** Slices whose labels became the job's (they were empty and never edited). */
  labels: number[];
  /** Slices whose job labels wait for the user (proposals). */
  proposals: number[];
}

export interface ProjectInit {
  stackPath: string;
  width: number;
  height: number;
  depth: number;
  /** Initial slices (labels from a job, ground truth from the stack); null or absent: all 0. */
  initial?: (layer: ProjectLayer, z: number) => Promise<Uint32Array | null>;
}

export interface ProjectOptions {
  /** fsync the journal this often when it has new records. */
  syncIntervalMs?: number;
  /** Compact when the journal has records and the last snapshot is this old… */
  compactIntervalMs?: number;
  /** …or as soon as the journal passes this size. */
  compactJournalBytes?: number;
}

// Two seconds: the "at most the last few seconds" on a power cut; fsync of a small append costs ~1 ms.
const SYNC_INTERVAL_MS = 2000;
// A snapshot rewrites every changed slice (64 MiB for a 4096² slice): every half minute at most, or when replaying the
// journal at open would start to take noticeable time (64 MiB of deltas replays in well under a second).
const COMPACT_INTERVAL_MS = 30_000;
const COMPACT_JOURNAL_BYTES = 64 * 1024 ** 2;

const PROJECT_FILE = 'project.json';
const SLICES_DIR = 'slices';
const MAPS_DIR = 'maps';

function sliceName(layer: ProjectLayer, z: number, g: number): string {
  return `${SLICES_DIR}/${layer}-z${z}-g${g}.u32`;
}

function mapName(round: number, z: number, v: number): string {
  return `${MAPS_DIR}/round${round}-z${z}-v${v}.f32`;
}

function proposalName(z: number, v: number): string {
  return `${SLICES_DIR}/proposal-z${z}-v${v}.u32`;
}

function inside(dir: string, f: unknown): boolean {
  return typeof f === 'string' && f.startsWith(`${dir}/`) && !f.includes('..') && !f.slice(dir.length + 1).includes('/');
}

function checkProjectFile(v: unknown, where: string): ProjectFile {
  const bad = (what: string): never => {
    throw new ProjectFormatError(`${where}: ${what}`);
  };
  if (typeof v !== 'object' || v === null) return bad('not a JSON object');
  const p = v as Partial<ProjectFile>;
  if (p.format !== 'emseg-project') bad('not an EMSeg project file');
  if ((p.version as number) !== 1 && p.version !== PROJECT_VERSION) bad(`project format version ${String(p.version)} is not supported`);
  if (typeof p.stackPath !== 'string') bad('stackPath missing');
  for (const k of ['width', 'height', 'depth', 'generation'] as const) if (!Number.isInteger(p[k]) || (p[k] as number) < 0) bad(`${k} is not a whole number`);
  if (typeof p.journal !== 'string' || /[/\\]/.test(p.journal)) bad('journal is not a file name');
  if (!p.slices || typeof p.slices !== 'object') bad('slices missing');
  for (const layer of LAYERS) {
    const files = p.slices?.[layer] ?? {};
    for (const [z, f] of Object.entries(files)) {
      if (!/^\d+$/.test(z) || Number(z) >= (p.depth as number)) bad(`slice ${z} of ${layer} is outside the stack`);
      if (typeof f !== 'string' || !f.startsWith(`${SLICES_DIR}/`) || f.includes('..')) bad(`slice file ${String(f)} is not inside ${SLICES_DIR}/`);
    }
  }
  if (!Array.isArray(p.sliceStatus) || p.sliceStatus.length !== p.depth || !p.sliceStatus.every((s) => SLICE_STATUSES.includes(s))) bad('sliceStatus must list one status per slice');
  // Maps and proposals came with job results; projects saved before them have neither.
  const zKey = (z: string, what: string) => {
    if (!/^\d+$/.test(z) || Number(z) >= (p.depth as number)) bad(`${what} of slice ${z} is outside the stack`);
  };
  const maps = p.maps ?? {};
  if (typeof maps !== 'object') bad('maps is not an object');
  for (const [z, files] of Object.entries(maps)) {
    zKey(z, 'map');
    if (!Array.isArray(files) || files.length === 0 || !files.every((f) => inside(MAPS_DIR, f))) bad(`maps of slice ${z} are not files inside ${MAPS_DIR}/`);
  }
  const proposals = p.proposals ?? {};
  if (typeof proposals !== 'object') bad('proposals is not an object');
  for (const [z, f] of Object.entries(proposals)) {
    zKey(z, 'proposal');
    if (!inside(SLICES_DIR, f)) bad(`proposal file ${String(f)} is not inside ${SLICES_DIR}/`);
  }
  const resultsVersion = p.resultsVersion ?? 0;
  if (!Number.isInteger(resultsVersion) || resultsVersion < 0) bad('resultsVersion is not a whole number');
  return {
    ...(p as ProjectFile),
    version: PROJECT_VERSION,
    slices: { labels: p.slices?.labels ?? {}, truth: p.slices?.truth ?? {} },
    locked: p.locked ?? {},
    maps,
    proposals,
    resultsVersion,
    resultsStoredAt: p.resultsStoredAt ?? null,
  };
}

export class Project {
  private readonly loaded = new Map<string, Uint32Array>();
  private readonly dirty = new Set<string>();
  private readonly revisions = new Map<string, number>();
  private undoStack: HistoryEntry[] = [];
  private redoStack: HistoryEntry[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private journalBytes = 0;
  private journalRecords = 0;
  private unsynced = false;
  private lastCompact = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private ticking = false;
  /** Job results being stored, one after another; close() waits for them. */
  private storing: Promise<unknown> = Promise.resolve();
  /** Files written for a result not committed yet: the garbage collector must leave them alone. */
  private readonly pending = new Set<string>();
  /** The last map read, for splits in a row on one slice. */
  private mapCache: { file: string; map: MembraneMap } | null = null;
  /** Wall time of the last compaction, for the benchmark and the status bar. */
  lastCompactMs = 0;

  private constructor(
    readonly folder: string,
    private meta: ProjectFile,
    private journal: FileHandle,
    private readonly opts: Required<ProjectOptions>,
    private readonly lock: ProjectLock,
  ) {}

  /** Creates a project in `folder` (created if missing; it must not hold a project already). */
  static async create(folder: string, init: ProjectInit, opts: ProjectOptions = {}): Promise<Project> {
    if (
      await stat(join(folder, PROJECT_FILE)).then(
        () => true,
        () => false,
      )
    ) {
      throw new ProjectFormatError(`${folder}: already holds a project (open it instead)`);
    }
    if (!(init.width > 0 && init.height > 0 && init.depth > 0)) throw new RangeError(`project of ${init.width}×${init.height}×${init.depth}`);
    await mkdir(join(folder, SLICES_DIR), { recursive: true });
    const lock = await ProjectLock.acquire(folder);
    try {
      await Project.writeNew(folder, init);
      return await Project.openLocked(folder, opts, lock);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private static async writeNew(folder: string, init: ProjectInit): Promise<void> {
    const slices: ProjectFile['slices'] = { labels: {}, truth: {} };
    for (const layer of LAYERS) {
      for (let z = 0; z < init.depth; z++) {
        const data = (await init.initial?.(layer, z)) ?? null;
        if (!data) continue;
        if (data.length !== init.width * init.height) throw new RangeError(`initial ${layer} slice ${z}: ${data.length} pixels for ${init.width}×${init.height}`);
        const name = sliceName(layer, z, 0);
        await writeFileAtomic(join(folder, name), encodeSlice(init.width, init.height, data));
        slices[layer][String(z)] = name;
      }
    }
    const journal = 'journal-g0.log';
    await writeFileAtomic(join(folder, journal), new Uint8Array(0));
    const now = new Date().toISOString();
    const meta: ProjectFile = {
      format: 'emseg-project',
      version: PROJECT_VERSION,
      stackPath: init.stackPath,
      width: init.width,
      height: init.height,
      depth: init.depth,
      generation: 0,
      journal,
      history: null,
      slices,
      sliceStatus: Array.from({ length: init.depth }, () => 'not-started' as const),
      locked: {},
      maps: {},
      proposals: {},
      resultsVersion: 0,
      resultsStoredAt: null,
      createdAt: now,
      savedAt: now,
    };
    await writeFileAtomic(join(folder, PROJECT_FILE), JSON.stringify(meta, null, 2));
  }

  /** Opens the project in `folder`; fails with ProjectLockedError while another process has it open. */
  static async open(folder: string, opts: ProjectOptions = {}): Promise<Project> {
    // A folder without a project gets no lock file: say what is wrong first.
    if (
      !(await stat(join(folder, PROJECT_FILE)).then(
        (s) => s.isFile(),
        () => false,
      ))
    ) {
      throw new ProjectFormatError(`${folder}: no EMSeg project here (no ${PROJECT_FILE})`);
    }
    const lock = await ProjectLock.acquire(folder);
    try {
      return await Project.openLocked(folder, opts, lock);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private static async openLocked(folder: string, opts: ProjectOptions, lock: ProjectLock): Promise<Project> {
    const where = join(folder, PROJECT_FILE);
    let text: string;
    try {
      text = await readFile(where, 'utf8');
    } catch {
      throw new ProjectFormatError(`${folder}: no EMSeg project here (no ${PROJECT_FILE})`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ProjectFormatError(`${where}: not valid JSON (${(e as Error).message})`);
    }
    const meta = checkProjectFile(raw, where);
    await collectGarbage(folder, meta);
    const journalPath = join(folder, meta.journal);
    let journalBuf: Uint8Array;
    try {
      journalBuf = await readFile(journalPath);
    } catch {
      throw new ProjectFormatError(`${journalPath}: the project's journal is missing`);
    }
    const { records, goodBytes, tornBytes } = decodeJournal(journalBuf, journalPath);
    // Cut a torn tail off before appending, or the next good record would sit behind garbage and be lost too.
    if (tornBytes > 0) await truncate(journalPath, goodBytes);
    const fh = await open(journalPath, 'a');
    const p = new Project(folder, meta, fh, {
      syncIntervalMs: opts.syncIntervalMs ?? SYNC_INTERVAL_MS,
      compactIntervalMs: opts.compactIntervalMs ?? COMPACT_INTERVAL_MS,
      compactJournalBytes: opts.compactJournalBytes ?? COMPACT_JOURNAL_BYTES,
    }, lock);
    try {
      if (meta.history) {
        const hp = join(folder, meta.history);
        const h = decodeHistory(await readFile(hp), hp);
        p.undoStack = h.undo;
        p.redoStack = h.redo;
      }
      for (const r of records) await p.replay(r);
    } catch (e) {
      await fh.close();
      throw e;
    }
    p.journalBytes = goodBytes;
    p.journalRecords = records.length;
    p.droppedTailBytes = tornBytes;
    p.timer = setInterval(() => void p.tick(), Math.min(p.opts.syncIntervalMs, p.opts.compactIntervalMs));
    p.timer.unref();
    return p;
  }

  /** Bytes of a torn journal tail dropped when this project was opened (0 after a clean shutdown). */
  droppedTailBytes = 0;

  get info(): Readonly<ProjectFile> {
    return this.meta;
  }

  get undoDepth(): number {
    return this.undoStack.length;
  }

  get redoDepth(): number {
    return this.redoStack.length;
  }

  /** Bytes the undo and redo stacks hold in memory. */
  historyBytes(): number {
    return [...this.undoStack, ...this.redoStack].reduce((s, e) => e.deltas.reduce((t, d) => t + deltaBytes(d), s), 0);
  }

  /** Goes up with every change of the slice: part of cache keys, so no stale tile is served after an edit. */
  revision(layer: ProjectLayer, z: number): number {
    return this.revisions.get(`${layer}:${z}`) ?? 0;
  }

  /** Whether the slice has a snapshot file or has been edited (ground truth exists for it). */
  hasSlice(layer: ProjectLayer, z: number): boolean {
    return this.meta.slices[layer][String(z)] !== undefined || this.dirty.has(`${layer}:${z}`);
  }

  locked(z: number): ReadonlySet<number> {
    return new Set(this.meta.locked[String(z)] ?? []);
  }

  /** The slice's pixels (live: do not modify; edits go through edit()). */
  async slice(layer: ProjectLayer, z: number): Promise<Labels> {
    this.checkZ(z);
    const key = `${layer}:${z}`;
    let data = this.loaded.get(key);
    if (!data) {
      const file = this.meta.slices[layer][String(z)];
      if (file) {
        const path = join(this.folder, file);
        let buf: Uint8Array;
        try {
          buf = await readFile(path);
        } catch {
          throw new ProjectFormatError(`${path}: snapshot slice missing`);
        }
        data = decodeSlice(buf, this.meta.width, this.meta.height, path);
      } else data = new Uint32Array(this.meta.width * this.meta.height);
      // Another call may have loaded it while this one read the file: keep the first, it may already be edited.
      const again = this.loaded.get(key);
      if (again) data = again;
      else this.loaded.set(key, data);
    }
    return { width: this.meta.width, height: this.meta.height, data };
  }

  /**
   * Runs one edit: `make` computes the delta from the current slice (nothing else runs meanwhile), the delta is
   * appended to the journal, applied, and pushed on the undo stack; the redo stack is cleared. An edit that changes
   * no pixel is not recorded and returns null.
   */
  edit(layer: ProjectLayer, z: number, make: (labels: Labels, locked: ReadonlySet<number>) => LabelDelta): Promise<HistoryEntry | null> {
    return this.serial(async () => {
      const labels = await this.slice(layer, z);
      const delta = make(labels, this.locked(z));
      if (delta.z !== z) throw new RangeError(`edit of slice ${z} made a delta for slice ${delta.z}`);
      if (delta.indices.length === 0) return null;
      const entry = { layer, deltas: [delta] };
      await this.append({ op: 'edit', entry });
      await this.replay({ op: 'edit', entry });
      return entry;
    });
  }

  undo(): Promise<HistoryEntry | null> {
    return this.serial(async () => {
      if (this.undoStack.length === 0) return null;
      const entry = this.undoStack[this.undoStack.length - 1];
      await this.append({ op: 'undo' });
      await this.replay({ op: 'undo' });
      return entry;
    });
  }

  redo(): Promise<HistoryEntry | null> {
    return this.serial(async () => {
      if (this.redoStack.length === 0) return null;
      const entry = this.redoStack[this.redoStack.length - 1];
      await this.append({ op: 'redo' });
      await this.replay({ op: 'redo' });
      return entry;
    });
  }

  /** Locks or unlocks a segment against edits (saved at once: project.json is small). */
  setLocked(z: number, id: number, lock: boolean): Promise<number[]> {
    this.checkZ(z);
    return this.serial(async () => {
      const ids = new Set(this.meta.locked[String(z)] ?? []);
      if (lock) ids.add(id);
      else ids.delete(id);
      const list = [...ids].sort((a, b) => a - b);
      const locked = { ...this.meta.locked };
      if (list.length > 0) locked[String(z)] = list;
      else delete locked[String(z)];
      await this.writeMeta({ ...this.meta, locked });
      return list;
    });
  }

  setSliceStatus(z: number, status: SliceStatus): Promise<void> {
    this.checkZ(z);
    return this.serial(async () => {
      const sliceStatus = this.meta.sliceStatus.slice();
      sliceStatus[z] = status;
      await this.writeMeta({ ...this.meta, sliceStatus });
    });
  }

  /** Writes a snapshot now (see the module header); resolves when it is committed. */
  compact(): Promise<void> {
    return this.serial(() => this.compactNow());
  }

  /** Writes a snapshot if anything changed since the last one (the end of a job saves every open project this way). */
  snapshot(): Promise<void> {
    return this.serial(() => (this.journalRecords > 0 || this.dirty.size > 0 ? this.compactNow() : Promise.resolve()));
  }

  /**
   * Stops the timers, closes the journal and releases the lock. With `snapshot: false` it skips the compaction: the
   * synced journal already holds every edit and the next open replays it (a fast exit, and what a crash leaves).
   */
  async close(opts: { snapshot?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    await this.storing;
    await this.serial(async () => {
      if (opts.snapshot !== false && this.journalRecords > 0) await this.compactNow();
      await this.journal.sync();
      await this.journal.close();
      this.closed = true;
    });
    await this.lock.release();
  }

  // ---- job results ------------------------------------------------------------------------------------------------

  /** Rounds of membrane maps stored for slice z (0: none). */
  mapRounds(z: number): number {
    return this.meta.maps[String(z)]?.length ?? 0;
  }

  /** Name of the file behind a stored map or proposal (changes whenever a job stores new ones), or null. */
  resultFile(kind: 'map' | 'proposal', z: number, round = 0): string | null {
    return (kind === 'map' ? this.meta.maps[String(z)]?.[round] : this.meta.proposals[String(z)]) ?? null;
  }

  /** The stored membrane map of slice z after `round` (default: the last round), or null when there is none. */
  async map(z: number, round?: number): Promise<MembraneMap | null> {
    this.checkZ(z);
    const files = this.meta.maps[String(z)];
    if (!files) return null;
    const file = files[round ?? files.length - 1];
    if (!file) return null;
    if (this.mapCache?.file === file) return this.mapCache.map;
    const path = join(this.folder, file);
    const buf = await readFile(path).catch(() => {
      throw new ProjectFormatError(`${path}: stored membrane map missing`);
    });
    const map = { width: this.meta.width, height: this.meta.height, data: decodeMap(buf, this.meta.width, this.meta.height, path) };
    this.mapCache = { file, map };
    return map;
  }

  /** Labels a job proposed for slice z, or null. */
  async proposal(z: number): Promise<Labels | null> {
    this.checkZ(z);
    const file = this.meta.proposals[String(z)];
    if (!file) return null;
    const path = join(this.folder, file);
    const buf = await readFile(path).catch(() => {
      throw new ProjectFormatError(`${path}: proposed labels missing`);
    });
    return { width: this.meta.width, height: this.meta.height, data: decodeSlice(buf, this.meta.width, this.meta.height, path) };
  }

  /**
   * Stores a job's results (see the module header) and snapshots the project: maps replace the slice's stored maps;
   * labels become the slice's labels when it is empty and was never edited, else they wait as a proposal. The files
   * are written while edits go on; only the commit waits its turn. One store at a time.
   */
  storeResults(results: AsyncIterable<SliceResults>): Promise<StoredResults> {
    const run = this.storing.then(() => this.storeNow(results));
    this.storing = run.catch(() => undefined);
    return run;
  }

  /**
   * Accepts (make computes each slice's delta from its current labels, its proposal and its locks) or discards (make
   * null) the proposals of these slices. Accepting is one undoable step however many slices it changes: one history
   * entry with a delta per changed slice, journaled as one record, so undo and redo take back or reapply all of them
   * and a crash keeps all or none. Returns that entry, or null when no pixel changed.
   */
  resolveProposals(
    slices: readonly number[],
    make: ((labels: Labels, proposal: Labels, locked: ReadonlySet<number>, z: number) => LabelDelta) | null,
  ): Promise<HistoryEntry | null> {
    return this.serial(async () => {
      for (const z of slices) this.checkZ(z);
      if (new Set(slices).size !== slices.length) throw new RangeError(`slices ${slices.join(', ')} name a slice twice`);
      const missing = slices.filter((z) => this.meta.proposals[String(z)] === undefined);
      if (missing.length > 0) throw new ProjectFormatError(`${this.folder}: slice${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ha${missing.length > 1 ? 've' : 's'} no proposed labels`);
      let entry: HistoryEntry | null = null;
      if (make) {
        const deltas: LabelDelta[] = [];
        for (const z of slices) {
          const proposal = await this.proposal(z);
          if (!proposal) throw new ProjectFormatError(`${this.folder}: slice ${z} has no proposed labels`);
          const delta = make(await this.slice('labels', z), proposal, this.locked(z), z);
          if (delta.z !== z) throw new RangeError(`accepting slice ${z} made a delta for slice ${delta.z}`);
          if (delta.indices.length > 0) deltas.push(delta);
        }
        if (deltas.length > 0) {
          entry = { layer: 'labels', deltas };
          // Journaled, and synced, before project.json drops the proposals: a crash in between leaves them to accept
          // again, and not even a power cut can lose both the proposals and the accepted labels.
          await this.append({ op: 'edit', entry });
          await this.journal.sync();
          await this.replay({ op: 'edit', entry });
        }
      }
      const proposals = { ...this.meta.proposals };
      for (const z of slices) delete proposals[String(z)];
      await this.writeMeta({ ...this.meta, proposals });
      return entry;
    });
  }

  private async storeNow(results: AsyncIterable<SliceResults>): Promise<StoredResults> {
    if (this.closed) throw new ProjectFormatError(`${this.folder}: the project is closed`);
    const v = this.meta.resultsVersion + 1;
    const { width, height } = this.meta;
    const maps: Record<string, string[]> = {};
    const jobLabels = new Map<number, string>();
    const written: string[] = [];
    const write = async (name: string, data: Uint8Array[]) => {
      this.pending.add(name);
      written.push(name);
      await writeFileAtomic(join(this.folder, name), data);
    };
    try {
      await mkdir(join(this.folder, MAPS_DIR), { recursive: true });
      for await (const r of results) {
        this.checkZ(r.z);
        const files: string[] = [];
        for (const [round, m] of r.maps.entries()) {
          if (m.length !== width * height) throw new RangeError(`map of slice ${r.z}: ${m.length} pixels for ${width}×${height}`);
          const name = mapName(round, r.z, v);
          await write(name, encodeMap(width, height, m));
          files.push(name);
        }
        if (files.length > 0) maps[String(r.z)] = files;
        if (r.labels) {
          if (r.labels.length !== width * height) throw new RangeError(`labels of slice ${r.z}: ${r.labels.length} pixels for ${width}×${height}`);
          const name = proposalName(r.z, v);
          await write(name, encodeSlice(width, height, r.labels));
          jobLabels.set(r.z, name);
        }
      }
      return await this.serial(async () => {
        const g = this.meta.generation + 1;
        const edited = new Set([...this.undoStack, ...this.redoStack].filter((e) => e.layer === 'labels').flatMap((e) => e.deltas.map((d) => d.z)));
        const labelSlices: Record<string, string> = {};
        const proposals = { ...this.meta.proposals };
        const stored: StoredResults = { maps: Object.keys(maps).map(Number), labels: [], proposals: [] };
        for (const [z, name] of jobLabels) {
          // Empty and never edited: the job's labels are simply the slice's labels (nothing of the user's is lost).
          const empty = !edited.has(z) && (await this.slice('labels', z)).data.every((x) => x === 0);
          if (empty) {
            const slice = sliceName('labels', z, g);
            await rename(join(this.folder, name), join(this.folder, slice));
            this.pending.add(slice);
            written.push(slice);
            labelSlices[String(z)] = slice;
            delete proposals[String(z)];
            stored.labels.push(z);
          } else {
            proposals[String(z)] = name;
            stored.proposals.push(z);
          }
        }
        await this.compactNow({
          labelSlices,
          maps: { ...this.meta.maps, ...maps },
          proposals,
          resultsVersion: v,
          resultsStoredAt: new Date().toISOString(),
        });
        for (const z of stored.labels) {
          // Read again from the new snapshot when asked; tiles of the old labels are stale from now on.
          this.loaded.delete(`labels:${z}`);
          this.revisions.set(`labels:${z}`, (this.revisions.get(`labels:${z}`) ?? 0) + 1);
        }
        return stored;
      });
    } finally {
      // Committed files are named by project.json now; uncommitted ones go with the next garbage collection.
      for (const name of written) this.pending.delete(name);
    }
  }

  // ---- internals --------------------------------------------------------------------------------------------------

  private checkZ(z: number): void {
    if (!(Number.isInteger(z) && z >= 0 && z < this.meta.depth)) throw new ProjectFormatError(`slice ${z} is outside the project's ${this.meta.depth} slices`);
  }

  /** Runs fn after everything queued before it; a failure does not block what comes after. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new ProjectFormatError(`${this.folder}: the project is closed`);
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async append(r: JournalRecord): Promise<void> {
    let length = 0;
    for (const part of encodeRecord(r)) {
      let done = 0;
      while (done < part.length) done += (await this.journal.write(part, done, part.length - done)).bytesWritten;
      length += part.length;
    }
    this.journalBytes += length;
    this.journalRecords++;
    this.unsynced = true;
  }

  /** Applies a record to the state in memory (used both live and when replaying the journal at open). */
  private async replay(r: JournalRecord): Promise<void> {
    if (r.op === 'edit') {
      applyDeltas(await this.slicesOf(r.entry), r.entry.deltas);
      this.undoStack.push(r.entry);
      this.redoStack = [];
      this.touched(r.entry);
      return;
    }
    const from = r.op === 'undo' ? this.undoStack : this.redoStack;
    const to = r.op === 'undo' ? this.redoStack : this.undoStack;
    const entry = from[from.length - 1];
    if (!entry) throw new ProjectFormatError(`${this.folder}: the journal has a ${r.op} with nothing to ${r.op}`);
    const slices = await this.slicesOf(entry);
    if (r.op === 'undo') revertDeltas(slices, entry.deltas);
    else applyDeltas(slices, entry.deltas);
    // Moved only once every delta fitted: a failed undo or redo leaves both stacks and all slices as they were.
    from.pop();
    to.push(entry);
    this.touched(entry);
  }

  /** The loaded pixels of every slice an entry changes, by z. */
  private async slicesOf(e: HistoryEntry): Promise<(z: number) => Uint32Array> {
    const data = new Map<number, Uint32Array>();
    for (const d of e.deltas) if (!data.has(d.z)) data.set(d.z, (await this.slice(e.layer, d.z)).data);
    return (z) => data.get(z) as Uint32Array;
  }

  private touched(e: HistoryEntry): void {
    for (const d of e.deltas) {
      const key = `${e.layer}:${d.z}`;
      this.dirty.add(key);
      this.revisions.set(key, (this.revisions.get(key) ?? 0) + 1);
    }
  }

  private async tick(): Promise<void> {
    // One autosave at a time: on a starved machine a compaction may outlast the interval, and queueing another per
    // tick would pile up saves in front of the user's edits.
    if (this.closed || this.ticking) return;
    this.ticking = true;
    try {
      const due = this.journalRecords > 0 && (Date.now() - this.lastCompact >= this.opts.compactIntervalMs || this.journalBytes >= this.opts.compactJournalBytes);
      if (due) await this.compact();
      else if (this.unsynced) {
        await this.serial(async () => {
          this.unsynced = false;
          await this.journal.sync();
        });
      }
    } catch (e) {
      // The next tick tries again; the journal still holds every edit, so nothing is lost meanwhile.
      console.error(`emseg: autosave of ${this.folder} failed: ${(e as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  private async writeMeta(next: ProjectFile): Promise<void> {
    const m = { ...next, savedAt: new Date().toISOString() };
    await writeFileAtomic(join(this.folder, PROJECT_FILE), JSON.stringify(m, null, 2));
    this.meta = m;
  }

  /** Writes generation g + 1 and commits it; `results` adds a job's stored results to the same commit. */
  private async compactNow(
    results?: Pick<ProjectFile, 'maps' | 'proposals' | 'resultsVersion' | 'resultsStoredAt'> & { labelSlices: Record<string, string> },
  ): Promise<void> {
    const t0 = performance.now();
    const g = this.meta.generation + 1;
    const slices: ProjectFile['slices'] = { labels: { ...this.meta.slices.labels, ...results?.labelSlices }, truth: { ...this.meta.slices.truth } };
    for (const key of this.dirty) {
      const [layer, zs] = key.split(':') as [ProjectLayer, string];
      const data = this.loaded.get(key);
      if (!data) continue;
      const name = sliceName(layer, Number(zs), g);
      await writeFileAtomic(join(this.folder, name), encodeSlice(this.meta.width, this.meta.height, data));
      slices[layer][zs] = name;
    }
    const history = this.undoStack.length + this.redoStack.length > 0 ? `history-g${g}.bin` : null;
    if (history) await writeFileAtomic(join(this.folder, history), encodeHistory(this.undoStack, this.redoStack));
    const journal = `journal-g${g}.log`;
    await writeFileAtomic(join(this.folder, journal), new Uint8Array(0));
    // The commit point: from here on, the project is generation g.
    const stored = results ? { maps: results.maps, proposals: results.proposals, resultsVersion: results.resultsVersion, resultsStoredAt: results.resultsStoredAt } : {};
    await this.writeMeta({ ...this.meta, ...stored, generation: g, journal, history, slices });
    const fh = await open(join(this.folder, journal), 'a');
    await this.journal.close().catch(() => undefined);
    this.journal = fh;
    this.journalBytes = 0;
    this.journalRecords = 0;
    this.unsynced = false;
    this.dirty.clear();
    this.lastCompact = Date.now();
    await collectGarbage(this.folder, this.meta, this.pending).catch(() => undefined);
    this.lastCompactMs = performance.now() - t0;
  }
}

/**
 * Removes files no generation refers to: leftovers of a compaction that never committed, or of the one before, and
 * maps and proposals replaced since. `pending` files (a job result being written) and this process's temporary files
 * (a write in progress) stay. `pending` is read at each file, not copied at the start: a job writes its results while
 * this runs, and a file it adds after the start (listed by readdir, since the job names it before writing it) must stay.
 */
export async function collectGarbage(folder: string, meta: ProjectFile, pending: ReadonlySet<string> = new Set()): Promise<void> {
  const keep = new Set<string>([PROJECT_FILE, meta.journal, ...(meta.history ? [meta.history] : [])]);
  for (const layer of LAYERS) for (const f of Object.values(meta.slices[layer])) keep.add(f);
  for (const files of Object.values(meta.maps)) for (const f of files) keep.add(f);
  for (const f of Object.values(meta.proposals)) keep.add(f);
  const temp = (name: string) => {
    const m = /^\..+\.tmp-(\d+)-[0-9a-f]+$/.exec(name);
    return m !== null && Number(m[1]) !== process.pid;
  };
  const patterns: [string, RegExp][] = [
    ['', /^(journal-g\d+\.log|history-g\d+\.bin)$/],
    [SLICES_DIR, /^((labels|truth)-z\d+-g\d+|proposal-z\d+-v\d+)\.u32$/],
    [MAPS_DIR, /^round\d+-z\d+-v\d+\.f32$/],
  ];
  for (const [dir, ours] of patterns) {
    const names = await readdir(join(folder, dir)).catch(() => [] as string[]);
    for (const name of names) {
      const rel = dir ? `${dir}/${name}` : name;
      if ((ours.test(name) || temp(name)) && !keep.has(rel) && !pending.has(rel)) await rm(join(folder, rel), { force: true });
    }
  }
}
