// openStack: one entry point for the three ways EM stacks arrive: a multi-page TIFF, a folder of single-slice images
// (PNG, TIFF or JPEG, in natural order: 2.png before 10.png), or one 2D image. All give the same Stack: the geometry
// up front, slices decoded on demand through a bounded LRU cache. Every problem with the user's files is a StackError
// naming the file.
import { open, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Image2D } from '../../ml/types';
import { StackError, fsError } from './errors';
import { readImage, readImageHeader, sniffFormat, type ImageFormat, type ImageHeader } from './image-read';
import { SliceCache } from './slice-cache';
import { TiffFile } from './tiff-read';
import { BYTES_PER_PIXEL, DEFAULT_MAX_SLICE_BYTES, formatBytes, type NoticeFn, type PixelSizeNm, type PixelType } from './types';

export interface StackInfo {
  path: string;
  kind: 'tiff' | 'folder' | 'image';
  width: number;
  height: number;
  /** Number of slices. */
  depth: number;
  pixelType: PixelType;
  pixelSizeNm?: PixelSizeNm;
  /** The slice files of a folder stack, in slice order. */
  files?: string[];
}

export interface Stack {
  info: StackInfo;
  /** Slice z (0-based). Each call returns its own pixel array, free to modify. */
  readSlice(z: number): Promise<Image2D>;
  close(): Promise<void>;
}

export interface OpenStackOptions {
  /** Largest declared slice accepted, in bytes (default 2 GiB): a guard against corrupt or hostile headers. */
  maxSliceBytes?: number;
  /** Bytes of decoded slices kept in the LRU cache (default 256 MiB; 0 disables the cache). */
  cacheBytes?: number;
  /** Slices kept in the LRU cache at most (default 64). */
  cacheSlices?: number;
  /** Called with one-line notices about conversions (RGB to grey, signed to float, skipped pages). */
  onNotice?: NoticeFn;
}

const DEFAULT_CACHE_BYTES = 256 * 1024 ** 2;
const DEFAULT_CACHE_SLICES = 64;
// Header reads of a folder's files in flight at once: enough to hide disk latency, few enough for a 2-core machine.
const HEADER_CONCURRENCY = 8;

const IMAGE_EXTENSIONS = new Set(['.png', '.tif', '.tiff', '.jpg', '.jpeg']);
/** Files operating systems drop into folders; never slices. (Dot files are skipped too.) */
const SYSTEM_FILES = new Set(['thumbs.db', 'ehthumbs.db', 'desktop.ini']);

/**
 * Natural order of file names: digit runs compare as numbers (2.png < 10.png), the rest case-insensitively, with the
 * plain code-point order as the final tie-break so the order is total and the same on every machine and locale.
 */
export function naturalCompare(a: string, b: string): number {
  const ta = a.match(/\d+|\D+/g) ?? [];
  const tb = b.match(/\d+|\D+/g) ?? [];
  let padding = 0; // "01" sorts after "1", but only if nothing else differs
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === y) continue;
    const dx = x.charCodeAt(0) >= 48 && x.charCodeAt(0) <= 57;
    const dy = y.charCodeAt(0) >= 48 && y.charCodeAt(0) <= 57;
    if (dx && dy) {
      // Compare without Number() so that 30-digit runs still order correctly: strip leading zeros, then length, then text.
      const nx = x.replace(/^0+(?=\d)/, '');
      const ny = y.replace(/^0+(?=\d)/, '');
      if (nx.length !== ny.length) return nx.length - ny.length;
      if (nx !== ny) return nx < ny ? -1 : 1;
      if (padding === 0) padding = x.length - y.length;
      continue;
    }
    const lx = x.toLowerCase();
    const ly = y.toLowerCase();
    if (lx !== ly) return lx < ly ? -1 : 1;
  }
  if (ta.length !== tb.length) return ta.length - tb.length;
  if (padding !== 0) return padding;
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readHead(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw fsError(path, e);
  });
  try {
    const head = new Uint8Array(8);
    await fh.read(head, 0, 8, 0);
    return head;
  } finally {
    await fh.close();
  }
}

function isTiffName(name: string): boolean {
  const ext = extname(name).toLowerCase();
  return ext === '.tif' || ext === '.tiff';
}

/** What a file holds, from its first bytes, falling back to its extension so that a broken .tif reports as a TIFF. */
async function fileFormat(path: string): Promise<'tiff' | ImageFormat> {
  const head = await readHead(path);
  const sniffed = sniffFormat(head);
  if (sniffed) return sniffed;
  const ext = extname(path).toLowerCase();
  if (isTiffName(path)) return 'tiff';
  if (ext === '.png') throw new StackError(path, 'corrupt PNG: the file does not start with the PNG signature');
  if (ext === '.jpg' || ext === '.jpeg') throw new StackError(path, 'corrupt JPEG: the file does not start with a JPEG marker');
  throw new StackError(path, 'not a stack: expected a TIFF, PNG or JPEG file, or a folder of them');
}

function checkSliceBytes(path: string, width: number, height: number, type: PixelType, max: number): void {
  const bytes = width * height * BYTES_PER_PIXEL[type];
  if (bytes > max) {
    throw new StackError(path, `declared slice size ${width}×${height} ${type} (${formatBytes(bytes)}) is above the limit of ${formatBytes(max)} per slice`);
  }
}

function makeStack(info: StackInfo, decode: (z: number) => Promise<Image2D>, opts: OpenStackOptions, onClose: () => Promise<void>): Stack {
  const cache = new SliceCache({ maxBytes: opts.cacheBytes ?? DEFAULT_CACHE_BYTES, maxSlices: opts.cacheSlices ?? DEFAULT_CACHE_SLICES });
  let closed = false;
  return {
    info,
    async readSlice(z: number): Promise<Image2D> {
      if (closed) throw new Error(`${info.path}: stack is closed`);
      if (!Number.isInteger(z) || z < 0 || z >= info.depth) throw new RangeError(`slice ${z} is out of range 0..${info.depth - 1}`);
      return cache.get(z, decode);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      cache.clear();
      await onClose();
    },
  };
}

/** Opens a stack: a multi-page TIFF, a folder of slice images, or a single PNG/JPEG/TIFF image. */
export async function openStack(path: string, opts: OpenStackOptions = {}): Promise<Stack> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsError(path, e);
  }
  if (st.isDirectory()) return openFolder(path, opts);
  const format = await fileFormat(path);
  if (format === 'tiff') {
    const tiff = await TiffFile.open(path, { maxSliceBytes: opts.maxSliceBytes, onNotice: opts.onNotice });
    const info: StackInfo = { path, kind: 'tiff', width: tiff.width, height: tiff.height, depth: tiff.depth, pixelType: tiff.pixelType };
    if (tiff.pixelSizeNm) info.pixelSizeNm = tiff.pixelSizeNm;
    return makeStack(info, (z) => tiff.readPage(z), opts, () => tiff.close());
  }
  const header = await readImageHeader(path, format);
  checkSliceBytes(path, header.width, header.height, header.pixelType, opts.maxSliceBytes ?? DEFAULT_MAX_SLICE_BYTES);
  if (header.colour) opts.onNotice?.(`${path}: colour image, converted to grey (Rec. 601 luma)`);
  const info: StackInfo = { path, kind: 'image', width: header.width, height: header.height, depth: 1, pixelType: header.pixelType };
  return makeStack(info, () => readImage(path, header), opts, async () => {});
}

interface SliceFile {
  path: string;
  format: 'tiff' | ImageFormat;
  width: number;
  height: number;
  pixelType: PixelType;
  colour: boolean;
  image?: ImageHeader;
  pixelSizeNm?: PixelSizeNm;
}

async function sliceHeader(path: string, maxSliceBytes: number, notes: string[]): Promise<SliceFile> {
  const format = await fileFormat(path);
  if (format === 'tiff') {
    const tiff = await TiffFile.open(path, { maxSliceBytes, onNotice: (m) => notes.push(m.startsWith(`${path}: `) ? m.slice(path.length + 2) : m) });
    try {
      if (tiff.depth !== 1) throw new StackError(path, `has ${tiff.depth} pages; the files of a folder stack must hold one slice each`);
      return { path, format, width: tiff.width, height: tiff.height, pixelType: tiff.pixelType, colour: false, pixelSizeNm: tiff.pixelSizeNm };
    } finally {
      await tiff.close();
    }
  }
  const image = await readImageHeader(path, format);
  checkSliceBytes(path, image.width, image.height, image.pixelType, maxSliceBytes);
  return { path, format, width: image.width, height: image.height, pixelType: image.pixelType, colour: image.colour, image };
}

/**
 * Maps with at most `limit` calls in flight. On failure it stops starting new calls and throws the error of the
 * lowest index, so that a folder with several broken files always names the same (first) one.
 */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  const errors = new Map<number, unknown>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && errors.size === 0) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (e) {
        errors.set(i, e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.size > 0) throw errors.get(Math.min(...errors.keys()));
  return out;
}

async function openFolder(dir: string, opts: OpenStackOptions): Promise<Stack> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw fsError(dir, e);
  }
  const names: string[] = [];
  const folders: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.') || SYSTEM_FILES.has(e.name.toLowerCase())) continue;
    const full = join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && (await stat(full).then((s) => s.isDirectory(), () => false)));
    if (isDir) {
      folders.push(e.name);
      continue;
    }
    if (!IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())) {
      throw new StackError(full, 'not an image file; a folder stack may hold only .png, .tif, .tiff, .jpg and .jpeg slices');
    }
    names.push(e.name);
  }
  if (names.length === 0) {
    throw new StackError(dir, folders.length > 0 ? `no image files in this folder (only sub-folders: ${folders.sort(naturalCompare).join(', ')})` : 'empty folder: no image files');
  }
  names.sort(naturalCompare);
  const files = names.map((n) => join(dir, n));
  const maxSliceBytes = opts.maxSliceBytes ?? DEFAULT_MAX_SLICE_BYTES;
  const notes: string[] = [];
  const slices = await mapLimit(files, HEADER_CONCURRENCY, (f) => sliceHeader(f, maxSliceBytes, notes));
  const s0 = slices[0];
  for (const s of slices) {
    if (s.width !== s0.width || s.height !== s0.height) {
      throw new StackError(s.path, `slice is ${s.width}×${s.height} but ${names[0]} is ${s0.width}×${s0.height}; all slices of a folder stack must have the same size`);
    }
    if (s.pixelType !== s0.pixelType) {
      throw new StackError(s.path, `slice is ${s.pixelType} but ${names[0]} is ${s0.pixelType}; all slices of a folder stack must have the same pixel type`);
    }
  }
  // One notice per kind for the whole folder rather than one per file.
  const colour = slices.filter((s) => s.colour).length;
  if (colour > 0) opts.onNotice?.(`${dir}: ${colour} of ${slices.length} slices are colour images, converted to grey (Rec. 601 luma)`);
  for (const n of new Set(notes)) opts.onNotice?.(`${dir}: some slices: ${n}`);

  const info: StackInfo = { path: dir, kind: 'folder', width: s0.width, height: s0.height, depth: slices.length, pixelType: s0.pixelType, files };
  if (s0.pixelSizeNm) info.pixelSizeNm = s0.pixelSizeNm;
  const decode = async (z: number): Promise<Image2D> => {
    const s = slices[z];
    if (s.image) return readImage(s.path, s.image);
    const tiff = await TiffFile.open(s.path, { maxSliceBytes });
    try {
      if (tiff.width !== s0.width || tiff.height !== s0.height || tiff.pixelType !== s0.pixelType) {
        throw new StackError(s.path, 'slice changed since the stack was opened');
      }
      return await tiff.readPage(0);
    } finally {
      await tiff.close();
    }
  };
  return makeStack(info, decode, opts, async () => {});
}
