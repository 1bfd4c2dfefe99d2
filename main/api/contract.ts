// THE API contract between the EMSeg renderer and the main side. One map from call name to { args, result }, the
// events the main side pushes, and one run-time validator per call. Both transports serve exactly these calls through
// the validating door (door.ts): Electron IPC (one preload function per call) and browser mode (HTTP + WebSocket).
//
// This file is compiled twice: by the Node config and by the renderer config, which may import *types only* from it
// (ESLint enforces that). So it imports nothing and uses no Node or DOM types; the validators below are plain code
// that only the main side runs.
//
// Binary results (pixels) are ArrayBuffers: transferred as such over Electron IPC, and sent as GET responses with an
// application/octet-stream body in browser mode (never JSON or base64). Their layout is fixed by the call's
// arguments and the stack's geometry (see TileGeometry), so no header travels with the pixels.

// ---------------------------------------------------------------------------------------------------------------------
// Data types
// ---------------------------------------------------------------------------------------------------------------------

export type PixelType = 'uint8' | 'uint16' | 'uint32' | 'float32';

/** Edge of a pyramid tile in pixels of its level. 512 px: 256 KiB of uint8 per request, few requests per screen. */
export const TILE_SIZE_PX = 512;

/** What the renderer needs to know of an opened stack to draw it tile by tile. */
export interface StackSummary {
  stackId: string;
  path: string;
  /** Short name for the title bar and the recent list. */
  name: string;
  kind: 'tiff' | 'folder' | 'image';
  width: number;
  height: number;
  /** Number of slices. */
  depth: number;
  pixelType: PixelType;
  pixelSizeNm?: { x: number; y: number; z?: number };
  tileSizePx: number;
  /** Pyramid levels: level L is the slice downsampled 2^L times (ceil); the last level fits in one tile. */
  levels: number;
  /** A ground-truth label stack was found beside the raw stack (read it with readResult layer 'truth'). */
  hasTruth: boolean;
}

export interface RecentEntry {
  path: string;
  name: string;
  /** ISO date of the last open. */
  openedAt: string;
  width?: number;
  height?: number;
  depth?: number;
}

export interface AppInfo {
  transport: 'electron' | 'browser';
  /** true when pickPath opens the operating system's dialog; otherwise the renderer shows its folder browser. */
  nativePicker: boolean;
  /** Folder of the sample stack, or null when it is not installed. */
  samplePath: string | null;
  version: string;
}

export interface BrowseEntry {
  name: string;
  kind: 'folder' | 'file';
  sizeBytes?: number;
}

export interface BrowseResult {
  /** The folder listed (absolute, symlinks resolved). */
  path: string;
  /** Its parent when the parent may be browsed too, else null. */
  parent: string | null;
  /** The places one may browse: the home folder, the sample folder and folders opened before. */
  roots: { name: string; path: string }[];
  /** Folders first, then stack files (TIFF, PNG, JPEG); other files are left out. */
  entries: BrowseEntry[];
}

export type JobKind = 'predict' | 'refine' | 'segment' | 'pipeline';
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobParams {
  /** Slice indices (0-based); all slices when absent. */
  slices?: number[];
  /** Refinement rounds (refine, segment and pipeline jobs); the refiner's own choice when absent. */
  rounds?: number;
  /** Test-time augmentation (8 flips/rotations averaged). */
  tta?: boolean;
  /** Model folders; the shipped models when absent. */
  membraneModel?: string;
  refiner?: string;
  /** Segmentation parameters passed to the engine as they are (it checks their meaning). */
  segment?: Record<string, number | string | boolean>;
  /** The stack's in-plane pixel size in nm, over its metadata (the models run resized to their own pixel size). */
  pixelSizeNm?: number;
}

export interface JobInfo {
  jobId: string;
  kind: JobKind;
  stackId: string;
  stackName: string;
  state: JobState;
  /** Units of work done and in all (the engine's units: slices × stages). */
  done: number;
  total: number;
  /** What the job is doing now, as the engine names it ('membrane', 'refine 2', 'segment', …). */
  stage: string;
  /** Seconds left, from the rate so far; null until it can be estimated. */
  etaSeconds: number | null;
  /** Milliseconds since the epoch. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** One line for the user when state is 'failed'. */
  error: string | null;
  /**
   * What the engine said while running, one line each: how the stack's pixel size was matched to the model's, which
   * stored thresholds it segments at.
   */
  notices: string[];
  /** Slices whose results can be read now. */
  readySlices: number[];
  /** Membrane maps stored per slice: round 0 is the membrane model's output, round r the r-th refinement. */
  rounds: number;
  /** Whether the job stores a segmentation (labels) per slice. */
  hasLabels: boolean;
  /** The membrane model folder the job runs, when one was chosen (absent: the shipped model). */
  membraneModel?: string;
}

/** A batch run of the app's batch panel: `emseg batch` over a folder, with the same manifest and resume. */
export type BatchState = 'running' | 'done' | 'failed' | 'stopped';

export interface BatchItemInfo {
  /** The item's path relative to the input folder, without extension (its output folder under outDir). */
  key: string;
  input: string;
  /** 'unchanged': done by an earlier run with the same input, parameters and model. */
  status: 'done' | 'failed' | 'unchanged';
  seconds: number | null;
  /** One line, for failed items. */
  error: string | null;
  /** Mean V_rand of the item when the batch had ground truth for it. */
  vrand: number | null;
}

export interface BatchInfo {
  batchId: string;
  input: string;
  outDir: string;
  state: BatchState;
  /** Items of the input; of them, already done before this run, to do now, and finished so far in this run. */
  items: number;
  unchanged: number;
  todo: number;
  finished: number;
  done: number;
  failed: number;
  etaSeconds: number | null;
  mpxPerSecond: number | null;
  startedAt: number;
  finishedAt: number | null;
  /** One line when state is 'failed'. */
  error: string | null;
  /** Every item known so far, in key order (earlier runs' results included once the run has listed them). */
  itemList: BatchItemInfo[];
  /** report.html in outDir once written. */
  report: string | null;
}

/**
 * A membrane model the app can run, with its row of the `emseg compress --report` table: the shipped model, every
 * folder of sample-data/models/compressed, and folders the user opened. Figures are null until measured.
 */
export interface ModelInfo {
  /** The model folder (absolute, symlinks resolved): what startJob's params.membraneModel and startBatch take. */
  path: string;
  /** The folder's name, as the report table names it. */
  name: string;
  origin: 'shipped' | 'compressed' | 'opened';
  /** The compression method (record.compression.method); 'none' for an uncompressed model. */
  method: string;
  /** Bytes of the file inference loads: model.onnx, or weights.bin for a folder without a graph. */
  fileBytes: number;
  /** Tiled ONNX Runtime inference speed from the report (null: not measured yet). */
  mpxPerS: number | null;
  /** Speed relative to the report's reference (uncompressed) row. */
  speedup: number | null;
  /** ISBI 2012 V_rand / V_info of the model's maps at their best threshold. */
  vrand: number | null;
  vinfo: number | null;
  /** V_rand minus the reference model's; null for an uncompressed model or when unknown. */
  deltaVrand: number | null;
  /** Exact zeros in the pruned kernels (relief, magnitude, lpsphere). */
  sparsity: number | null;
  /** Where the figures come from: a report row, the validation scores written with the model, or none yet. */
  measured: 'report' | 'validation' | null;
  /** The in-plane pixel size (nm) the model was trained at, which stacks are resized to for it; null: not recorded. */
  pixelSizeNm: number | null;
  /** Slices the model reads on each side of the one it predicts (z-context); 0: the slice alone. */
  zContext: number;
}

export interface ModelList {
  models: ModelInfo[];
  /** The folder the user chose last (kept across sessions); null: none chosen, the shipped model is used. */
  chosen: string | null;
}

/** Layers of readResult: 'round-<r>' (float32 membrane map), 'labels' (uint32, 0 = boundary), 'truth' (uint32). */
export type ResultLayer = `round-${number}` | 'labels' | 'truth';

export interface TileArgs {
  z: number;
  /** Pyramid level, 0 = full resolution. */
  level: number;
  /** Tile column and row at that level. */
  tx: number;
  ty: number;
}

// ---- proofreading projects --------------------------------------------------------------------------------------

/** The two editable layers of a project: segmentation labels (uint32, 0 = boundary) and ground truth (ISBI values:
 * 0 = membrane, 255 = interior; or instance ids). */
export type ProjectLayer = 'labels' | 'truth';
export type SliceStatus = 'not-started' | 'in-progress' | 'done';

export interface ProjectSummary {
  projectId: string;
  /** The project folder (absolute). */
  folder: string;
  /** The stack the project refers to, opened with it. */
  stack: StackSummary;
  undoDepth: number;
  redoDepth: number;
  /** Ground-truth annotation status per slice. */
  sliceStatus: SliceStatus[];
  /** Locked segment ids per slice (z as the key). */
  locked: Record<string, number[]>;
  /** Slices that have ground truth in the project. */
  truthSlices: number[];
  /** Membrane maps stored in the project (from the jobs that ran while it was open): rounds per slice (z as the key). */
  maps: Record<string, number>;
  /** Slices with labels a job proposed, waiting to be accepted (resolveProposal) or discarded. */
  proposals: number[];
  /** When the last job's results were stored (ms since the epoch), or null. */
  resultsStoredAt: number | null;
}

/** Layers readProject serves: the two editable ones, the stored maps ('round-<r>', float32) and a job's proposed
 * labels ('proposal', uint32). */
export type ProjectReadLayer = ProjectLayer | 'proposal' | `round-${number}`;

/** What storing a finished job's results did to an open project (labels: taken where the slice was empty). */
export interface StoredJobResults {
  jobId: string;
  maps: number[];
  labels: number[];
  proposals: number[];
}

/**
 * One edit of one slice, in full-resolution data coordinates (pixel x covers [x, x+1)); `points` are polylines as
 * flat x, y pairs. Label 0 paints boundary (erases).
 */
export type ProofreadEdit =
  | { tool: 'paint'; points: number[]; radiusPx: number; label: number }
  | { tool: 'fill'; x: number; y: number; label: number }
  | { tool: 'merge'; ids: number[] }
  /** Seeded watershed inside segment `id`: each seed group is a polyline; group 0 keeps the id. */
  | { tool: 'split'; id: number; seeds: number[][]; radiusPx: number }
  /** Cut segment `id` along a line: the line becomes boundary, the pieces become segments. */
  | { tool: 'cut'; id: number; points: number[]; radiusPx: number }
  | { tool: 'delete'; id: number };

export interface EditResult {
  /** Slices changed (one for an edit; several when accepting proposals of several slices, and undoing or redoing
   * that); empty, and layer null, when there was nothing to undo or redo, or the edit changed nothing. */
  slices: number[];
  layer: ProjectLayer | null;
  changedPx: number;
  undoDepth: number;
  redoDepth: number;
  /** Ids created by a split or cut. */
  newIds: number[];
  /** Milliseconds the main side spent, from arguments to journaled edit. */
  ms: number;
}

export interface QualityScores {
  vrand: number;
  vrandSplit: number;
  vrandMerge: number;
  vinfo: number;
  vinfoSplit: number;
  vinfoMerge: number;
}

export interface QualityError {
  kind: 'split' | 'merge';
  /** Share of the slice's split (or merge) error, 0..1. */
  share: number;
  x: number;
  y: number;
  ids: number[];
}

/** Live quality of a slice against the project's ground truth; scores null where the slice has none. */
export interface SliceQualityResult {
  z: number;
  scores: QualityScores | null;
  errors: QualityError[];
}

export type ApiEvent =
  | { type: 'job'; job: JobInfo }
  /** Results of slice z of a job became readable. */
  | { type: 'slice'; jobId: string; z: number }
  | { type: 'batch'; batch: BatchInfo }
  /** A job ended and an open project saved itself: its summary now; what the job stored in it (null: nothing, it
   * belongs to another stack), or the one-line error that kept it from being stored. */
  | { type: 'project'; project: ProjectSummary; stored: StoredJobResults | null; error: string | null };

// ---------------------------------------------------------------------------------------------------------------------
// The calls
// ---------------------------------------------------------------------------------------------------------------------

type NoArgs = Record<string, never>;

export interface ApiCalls {
  appInfo: { args: NoArgs; result: AppInfo };
  /** Open a stack (multi-page TIFF, folder of slices, one image) under an allowed folder. */
  openStack: { args: { path: string }; result: StackSummary };
  /** Open the sample stack (ISBI 2012 slices 20–29). */
  sampleStack: { args: NoArgs; result: StackSummary };
  listRecent: { args: NoArgs; result: RecentEntry[] };
  /** The operating system's file or folder dialog (Electron); null when the user cancels. */
  pickPath: { args: { mode: 'file' | 'folder' }; result: { path: string } | null };
  /** The server-side folder browser (browser mode; works in Electron too). No path: the home folder. */
  browseFolder: { args: { path?: string }; result: BrowseResult };
  /** Raw pixels of one pyramid tile, row-major, in the stack's pixel type. */
  readSlice: { args: { stackId: string } & TileArgs; result: ArrayBuffer };
  /** Pixels of one tile of a result layer: jobId for 'round-r' and 'labels', stackId for 'truth'. */
  readResult: { args: { jobId?: string; stackId?: string; layer: ResultLayer } & TileArgs; result: ArrayBuffer };
  /**
   * Browser mode's drag and drop (a page never learns where a dropped file lives): the bytes of one dropped file,
   * stored in this session's upload folder `uploadId`; open the returned path (the file, or the folder for several).
   */
  uploadFile: { args: { uploadId: string; name: string; data: ArrayBuffer }; result: { folder: string; file: string } };
  startJob: { args: { stackId: string; kind: JobKind; params: JobParams }; result: { jobId: string } };
  cancelJob: { args: { jobId: string }; result: { cancelled: boolean } };
  listJobs: { args: NoArgs; result: JobInfo[] };
  /**
   * Creates a project folder (absent or empty, under an allowed folder) for an open stack. Labels start from the
   * stack's ground truth (its segments), a job's labels, or empty; the stack's ground truth, if any, becomes the
   * project's ground truth layer.
   */
  createProject: { args: { folder: string; stackId: string; labelsFrom: 'empty' | 'truth' | 'job'; jobId?: string }; result: ProjectSummary };
  /** Opens a project folder (and its stack); restores labels, ground truth and the undo history. */
  openProject: { args: { folder: string }; result: ProjectSummary };
  /** Saves (compacts) and closes a project. */
  closeProject: { args: { projectId: string }; result: { closed: boolean } };
  /** Pixels of one tile of a project layer (uint32; float32 for 'round-<r>'). */
  readProject: { args: { projectId: string; layer: ProjectReadLayer } & TileArgs; result: ArrayBuffer };
  /**
   * Accepts (locked segments stay) or discards the labels a job proposed for these slices (distinct, each with a
   * proposal). Accepting is one undoable step however many slices it changes: one undo takes all of them back.
   */
  resolveProposal: { args: { projectId: string; slices: number[]; accept: boolean }; result: { edit: EditResult; proposals: number[] } };
  /** One edit, applied, journaled and put on the undo stack. */
  editProject: { args: { projectId: string; z: number; layer: ProjectLayer; edit: ProofreadEdit }; result: EditResult };
  undoEdit: { args: { projectId: string }; result: EditResult };
  redoEdit: { args: { projectId: string }; result: EditResult };
  /** An id not used on the slice yet (largest + 1). */
  newLabel: { args: { projectId: string; z: number; layer: ProjectLayer }; result: { label: number } };
  lockSegment: { args: { projectId: string; z: number; id: number; locked: boolean }; result: { locked: number[] } };
  setSliceStatus: { args: { projectId: string; z: number; status: SliceStatus }; result: { sliceStatus: SliceStatus[] } };
  sliceQuality: { args: { projectId: string; z: number; maxErrors?: number }; result: SliceQualityResult };
  /** Writes labels.tif (uint32), truth-isbi.tif (uint8, 0 = membrane), the stored membrane maps (float32, 1 =
   * membrane: membrane-round-<r>.tif per refinement round and membrane.tif, the last round; none when the project
   * has no maps) and export.json into `folder` (default: the project folder's export/ subfolder). */
  exportProject: {
    args: { projectId: string; folder?: string };
    result: { labels: string; truth: string; membrane: string | null; membraneRounds: string[]; manifest: string };
  };
  /** Starts (or, for a folder done before, resumes) a batch: every image under `input`, outputs mirrored in `outDir`. */
  startBatch: { args: { input: string; outDir: string; refineRounds?: number; report?: boolean; membraneModel?: string }; result: { batchId: string } };
  /** Stops a running batch; its finished items stay done, and starting the same batch again resumes it. */
  stopBatch: { args: { batchId: string }; result: { stopped: boolean } };
  listBatches: { args: NoArgs; result: BatchInfo[] };
  /** Opens a finished batch item in the viewer: its input as the stack, its maps and labels as a finished job. */
  openBatchResult: { args: { batchId: string; key: string }; result: { stack: StackSummary; jobId: string } };
  /** The membrane models the model picker offers, with their report rows, and the one chosen. */
  listModels: { args: NoArgs; result: ModelList };
  /** Adds a membrane model folder (under an allowed folder) to the list, for this and later sessions. */
  openModel: { args: { path: string }; result: ModelInfo };
  /** Remembers the chosen model (one of listModels') for this and later sessions. */
  chooseModel: { args: { path: string }; result: { chosen: string } };
}

export type CallName = keyof ApiCalls;
export type Args<K extends CallName> = ApiCalls[K]['args'];
export type Result<K extends CallName> = ApiCalls[K]['result'];

/** The API as the renderer sees it, whatever the transport. */
export type EmsegApi = { [K in CallName]: (args: Args<K>) => Promise<Result<K>> } & {
  /** Subscribe to pushed events; returns the unsubscribe function. */
  onEvent(listener: (event: ApiEvent) => void): () => void;
};

/** What the Electron preload exposes as `window.emseg`: the API, plus the path of a dropped file. */
export type PreloadApi = EmsegApi & {
  /** Path of a File from a drop event (Electron's webUtils.getPathForFile); '' when it has none. */
  pathForFile(file: object): string;
};

/** Failure kinds, and the HTTP status browser mode answers each with. */
export type ErrorCode = 'bad-request' | 'unauthorized' | 'forbidden' | 'not-found' | 'user' | 'unsupported' | 'internal';
export const HTTP_STATUS: Record<ErrorCode, number> = {
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  user: 422,
  unsupported: 501,
  internal: 500,
};

/** How every call's answer travels (Electron IPC wraps results this way so a failure keeps its code). */
export type Envelope<T> = { ok: true; value: T } | { ok: false; error: { code: ErrorCode; message: string } };

/** Calls whose result is an ArrayBuffer: GET with a binary body in browser mode; all others are POST with JSON. */
export const BINARY_CALLS = { readSlice: true, readResult: true, readProject: true } as const satisfies Partial<Record<CallName, true>>;

/** Calls whose argument `data` is bytes: PUT with the bytes as the body and the other arguments in the query. */
export const UPLOAD_CALLS = { uploadFile: true } as const satisfies Partial<Record<CallName, true>>;

/** Largest file a drop may upload. Browser mode holds one in memory while writing it; bigger stacks: use Open…. */
export const MAX_UPLOAD_BYTES = 1024 ** 3;

/** Electron IPC channel of a call: one fixed channel per call, never a generic one. */
export const ipcChannel = (name: CallName): string => `emseg:${name}`;
export const IPC_EVENT_CHANNEL = 'emseg:event';

// ---------------------------------------------------------------------------------------------------------------------
// Run-time validation: hand-written guards, all here. Each validator returns its argument typed, or throws
// ContractError naming the offending field. Unknown fields are rejected too, so a typo fails loudly.
// ---------------------------------------------------------------------------------------------------------------------

export class ContractError extends Error {
  override name = 'ContractError';
}

type Guard<T> = (v: unknown, at: string) => T;

const fail = (at: string, what: string): never => {
  throw new ContractError(`${at}: expected ${what}`);
};

// Long enough for deep folder paths on every OS, short enough that a hostile caller cannot make us allocate much.
const MAX_PATH_CHARS = 4096;
// Ids are generated by the main side ('s1', 'j3'); anything else is not ours.
const ID_PATTERN = /^[a-z][a-z0-9-]{0,63}$/;
// Stacks of 100 000 slices and pyramids of 2^20 px per side are far beyond any EM dataset on a desktop.
const MAX_Z = 1_000_000;
const MAX_LEVEL = 24;
const MAX_TILE_INDEX = 1 << 20;

const str =
  (max: number): Guard<string> =>
  (v, at) =>
    typeof v === 'string' && v.length > 0 && v.length <= max ? v : fail(at, `a non-empty string of at most ${max} characters`);

const pathString: Guard<string> = (v, at) => {
  const s = str(MAX_PATH_CHARS)(v, at);
  return s.includes('\0') ? fail(at, 'a path without NUL characters') : s;
};

const id: Guard<string> = (v, at) => (typeof v === 'string' && ID_PATTERN.test(v) ? v : fail(at, 'an id'));

const int =
  (min: number, max: number): Guard<number> =>
  (v, at) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : fail(at, `an integer in [${min}, ${max}]`);

const bool: Guard<boolean> = (v, at) => (typeof v === 'boolean' ? v : fail(at, 'true or false'));

const oneOf =
  <T extends string>(values: readonly T[]): Guard<T> =>
  (v, at) =>
    typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as T) : fail(at, values.map((x) => `'${x}'`).join(' or '));

const arrayOf =
  <T>(item: Guard<T>, maxItems: number): Guard<T[]> =>
  (v, at) => {
    if (!Array.isArray(v) || v.length > maxItems) return fail(at, `an array of at most ${maxItems} items`);
    return v.map((x, i) => item(x, `${at}[${i}]`));
  };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

type Shape<T> = { [K in keyof T]-?: Guard<T[K]> };

/** An object with exactly these fields; optional fields (guards built with `opt`) may be absent or undefined. */
function obj<T>(shape: Shape<T>): Guard<T> {
  return (v, at) => {
    if (!isPlainObject(v)) return fail(at, 'an object');
    for (const key of Object.keys(v)) if (!(key in shape)) fail(`${at}.${key}`, 'no such field');
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(shape) as (keyof T & string)[]) {
      const value = shape[key](v[key], `${at}.${key}`);
      if (value !== undefined) out[key] = value;
    }
    return out as T;
  };
}

const opt =
  <T>(g: Guard<T>): Guard<T | undefined> =>
  (v, at) =>
    v === undefined ? undefined : g(v, at);

const empty: Guard<NoArgs> = (v, at) => {
  // Transports send {} for calls without arguments; accept a missing body too.
  if (v === undefined || v === null) return {};
  return obj<NoArgs>({})(v, at);
};

const segmentParams: Guard<Record<string, number | string | boolean>> = (v, at) => {
  if (!isPlainObject(v)) return fail(at, 'an object');
  const keys = Object.keys(v);
  if (keys.length > 32) return fail(at, 'at most 32 parameters');
  const out: Record<string, number | string | boolean> = {};
  for (const k of keys) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(k)) fail(`${at}.${k}`, 'a parameter name');
    const x = v[k];
    if (typeof x === 'number' ? !Number.isFinite(x) : typeof x === 'string' ? x.length > 64 : typeof x !== 'boolean') {
      fail(`${at}.${k}`, 'a finite number, a short string or a boolean');
    }
    out[k] = x as number | string | boolean;
  }
  return out;
};

const bytes: Guard<ArrayBuffer> = (v, at) =>
  v instanceof ArrayBuffer && v.byteLength > 0 && v.byteLength <= MAX_UPLOAD_BYTES ? v : fail(at, `bytes (1 to ${MAX_UPLOAD_BYTES})`);

// A plain file name of a slice or stack: no folders, no hidden files, an image extension.
const fileName: Guard<string> = (v, at) =>
  typeof v === 'string' && /^[^/\\\0.][^/\\\0]{0,199}$/.test(v) && /\.(tiff?|png|jpe?g)$/i.test(v) ? v : fail(at, 'an image file name (.tif, .png, .jpg)');

const resultLayer: Guard<ResultLayer> = (v, at) =>
  typeof v === 'string' && (v === 'labels' || v === 'truth' || /^round-(0|[1-9][0-9]?)$/.test(v))
    ? (v as ResultLayer)
    : fail(at, "'round-<r>', 'labels' or 'truth'");

// An item key is a relative path inside the batch's output folder: no absolute paths, no '..' segments.
const batchKey: Guard<string> = (v, at) => {
  const k = str(MAX_PATH_CHARS)(v, at);
  return k.includes('\0') || k.startsWith('/') || k.split(/[\\/]/).some((seg) => seg === '..' || seg === '') ? fail(at, 'a batch item key') : k;
};

const tile = { z: int(0, MAX_Z), level: int(0, MAX_LEVEL), tx: int(0, MAX_TILE_INDEX), ty: int(0, MAX_TILE_INDEX) };

const num =
  (min: number, max: number): Guard<number> =>
  (v, at) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? v : fail(at, `a number in [${min}, ${max}]`);

const jobParams = obj<JobParams>({
  slices: opt(arrayOf(int(0, MAX_Z), 100_000)),
  rounds: opt(int(0, 20)),
  tta: opt(bool),
  membraneModel: opt(pathString),
  refiner: opt(pathString),
  segment: opt(segmentParams),
  pixelSizeNm: opt(num(0.01, 1e6)),
});

// Ids are uint32 on disk; 0 is the boundary.
const MAX_SEGMENT_ID = 0xffffffff;
// A polyline of 100 000 vertices is a very long stroke drawn at pointer rate; more is not a person drawing.
const MAX_POLYLINE_NUMBERS = 200_000;
// Coordinates may lie a little outside the slice (a stroke that leaves it); far outside is a mistake.
const MAX_COORD = 4 * 1_048_576;

const polyline: Guard<number[]> = (v, at) => {
  const a = arrayOf(num(-MAX_COORD, MAX_COORD), MAX_POLYLINE_NUMBERS)(v, at);
  return a.length >= 2 && a.length % 2 === 0 ? a : fail(at, 'x, y pairs (at least one point)');
};

const segmentId = int(0, MAX_SEGMENT_ID);
// At least one slice, none twice.
const sliceList: Guard<number[]> = (v, at) => {
  const a = arrayOf(int(0, MAX_Z), 100_000)(v, at);
  return a.length > 0 && new Set(a).size === a.length ? a : fail(at, 'distinct slice indices (at least one)');
};
const radius = num(0, 1024);
const projectLayer = oneOf(['labels', 'truth'] as const);
const projectReadLayer: Guard<ProjectReadLayer> = (v, at) =>
  typeof v === 'string' && (v === 'labels' || v === 'truth' || v === 'proposal' || /^round-(0|[1-9][0-9]?)$/.test(v))
    ? (v as ProjectReadLayer)
    : fail(at, "'labels', 'truth', 'proposal' or 'round-<r>'");

const proofreadEdit: Guard<ProofreadEdit> = (v, at) => {
  const tool = isPlainObject(v) ? v.tool : undefined;
  switch (tool) {
    case 'paint':
      return obj<Extract<ProofreadEdit, { tool: 'paint' }>>({ tool: oneOf(['paint'] as const), points: polyline, radiusPx: radius, label: segmentId })(v, at);
    case 'fill':
      return obj<Extract<ProofreadEdit, { tool: 'fill' }>>({ tool: oneOf(['fill'] as const), x: num(0, MAX_COORD), y: num(0, MAX_COORD), label: segmentId })(v, at);
    case 'merge':
      return obj<Extract<ProofreadEdit, { tool: 'merge' }>>({ tool: oneOf(['merge'] as const), ids: arrayOf(int(1, MAX_SEGMENT_ID), 1000) })(v, at);
    case 'split':
      return obj<Extract<ProofreadEdit, { tool: 'split' }>>({ tool: oneOf(['split'] as const), id: int(1, MAX_SEGMENT_ID), seeds: arrayOf(polyline, 64), radiusPx: radius })(v, at);
    case 'cut':
      return obj<Extract<ProofreadEdit, { tool: 'cut' }>>({ tool: oneOf(['cut'] as const), id: int(1, MAX_SEGMENT_ID), points: polyline, radiusPx: radius })(v, at);
    case 'delete':
      return obj<Extract<ProofreadEdit, { tool: 'delete' }>>({ tool: oneOf(['delete'] as const), id: int(1, MAX_SEGMENT_ID) })(v, at);
    default:
      return fail(`${at}.tool`, "'paint', 'fill', 'merge', 'split', 'cut' or 'delete'");
  }
};

/** One validator per call: the only place call arguments are checked. */
export const validators: { [K in CallName]: Guard<Args<K>> } = {
  appInfo: empty,
  openStack: obj({ path: pathString }),
  sampleStack: empty,
  listRecent: empty,
  pickPath: obj({ mode: oneOf(['file', 'folder'] as const) }),
  browseFolder: obj({ path: opt(pathString) }),
  readSlice: obj({ stackId: id, ...tile }),
  readResult: (v, at) => {
    const a = obj<Args<'readResult'>>({ jobId: opt(id), stackId: opt(id), layer: resultLayer, ...tile })(v, at);
    if (a.layer === 'truth' ? a.stackId === undefined || a.jobId !== undefined : a.jobId === undefined || a.stackId !== undefined) {
      fail(at, "stackId with layer 'truth', jobId with the other layers");
    }
    return a;
  },
  uploadFile: obj({ uploadId: id, name: fileName, data: bytes }),
  startJob: obj({ stackId: id, kind: oneOf(['predict', 'refine', 'segment', 'pipeline'] as const), params: jobParams }),
  cancelJob: obj({ jobId: id }),
  listJobs: empty,
  createProject: (v, at) => {
    const a = obj<Args<'createProject'>>({ folder: pathString, stackId: id, labelsFrom: oneOf(['empty', 'truth', 'job'] as const), jobId: opt(id) })(v, at);
    if ((a.labelsFrom === 'job') !== (a.jobId !== undefined)) fail(at, "jobId exactly when labelsFrom is 'job'");
    return a;
  },
  openProject: obj({ folder: pathString }),
  closeProject: obj({ projectId: id }),
  readProject: obj({ projectId: id, layer: projectReadLayer, ...tile }),
  resolveProposal: obj({ projectId: id, slices: sliceList, accept: bool }),
  editProject: obj({ projectId: id, z: int(0, MAX_Z), layer: projectLayer, edit: proofreadEdit }),
  undoEdit: obj({ projectId: id }),
  redoEdit: obj({ projectId: id }),
  newLabel: obj({ projectId: id, z: int(0, MAX_Z), layer: projectLayer }),
  lockSegment: obj({ projectId: id, z: int(0, MAX_Z), id: int(1, MAX_SEGMENT_ID), locked: bool }),
  setSliceStatus: obj({ projectId: id, z: int(0, MAX_Z), status: oneOf(['not-started', 'in-progress', 'done'] as const) }),
  sliceQuality: obj({ projectId: id, z: int(0, MAX_Z), maxErrors: opt(int(0, 100)) }),
  exportProject: obj({ projectId: id, folder: opt(pathString) }),
  startBatch: obj({ input: pathString, outDir: pathString, refineRounds: opt(int(0, 20)), report: opt(bool), membraneModel: opt(pathString) }),
  stopBatch: obj({ batchId: id }),
  listBatches: empty,
  openBatchResult: obj({ batchId: id, key: batchKey }),
  listModels: empty,
  openModel: obj({ path: pathString }),
  chooseModel: obj({ path: pathString }),
};

export const CALL_NAMES = Object.keys(validators) as CallName[];

export function isCallName(name: unknown): name is CallName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(validators, name);
}

// ---------------------------------------------------------------------------------------------------------------------
// Tile geometry: shared arithmetic, so the main side cuts and the renderer reads tiles the same way.
// ---------------------------------------------------------------------------------------------------------------------

export interface TileGeometry {
  width: number;
  height: number;
  tileSizePx: number;
  levels: number;
}

/** Size of the slice at a pyramid level. */
export function levelSize(g: TileGeometry, level: number): { width: number; height: number } {
  const f = 2 ** level;
  return { width: Math.ceil(g.width / f), height: Math.ceil(g.height / f) };
}

/** Number of levels: halve until the slice fits in one tile. */
export function levelCount(width: number, height: number, tileSizePx: number): number {
  let levels = 1;
  while (Math.max(Math.ceil(width / 2 ** (levels - 1)), Math.ceil(height / 2 ** (levels - 1))) > tileSizePx) levels++;
  return levels;
}

/** Pixel rectangle of tile (tx, ty) at a level, in that level's pixels; null when the tile lies outside the slice. */
export function tileRect(
  g: TileGeometry,
  level: number,
  tx: number,
  ty: number,
): { x: number; y: number; width: number; height: number } | null {
  if (level < 0 || level >= g.levels) return null;
  const { width, height } = levelSize(g, level);
  const x = tx * g.tileSizePx;
  const y = ty * g.tileSizePx;
  if (x >= width || y >= height) return null;
  return { x, y, width: Math.min(g.tileSizePx, width - x), height: Math.min(g.tileSizePx, height - y) };
}
