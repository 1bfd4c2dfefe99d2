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
  /** Slices whose results can be read now. */
  readySlices: number[];
  /** Membrane maps stored per slice: round 0 is the membrane model's output, round r the r-th refinement. */
  rounds: number;
  /** Whether the job stores a segmentation (labels) per slice. */
  hasLabels: boolean;
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

export type ApiEvent =
  | { type: 'job'; job: JobInfo }
  /** Results of slice z of a job became readable. */
  | { type: 'slice'; jobId: string; z: number };

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
export const BINARY_CALLS = { readSlice: true, readResult: true } as const satisfies Partial<Record<CallName, true>>;

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

const tile = { z: int(0, MAX_Z), level: int(0, MAX_LEVEL), tx: int(0, MAX_TILE_INDEX), ty: int(0, MAX_TILE_INDEX) };

const jobParams = obj<JobParams>({
  slices: opt(arrayOf(int(0, MAX_Z), 100_000)),
  rounds: opt(int(0, 20)),
  tta: opt(bool),
  membraneModel: opt(pathString),
  refiner: opt(pathString),
  segment: opt(segmentParams),
});

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
