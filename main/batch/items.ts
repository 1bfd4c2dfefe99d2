// Batch items: what `emseg batch` processes and where each item's outputs go.
//
// An input folder is walked in natural order; every image file in it is one item (a 2D image or a multi-page TIFF
// stack). With folderStacks, every leaf folder of images (image files, no sub-folders) is one stack item instead —
// a folder of slices. A list file names items one per line; a folder named there is always a stack. A single image
// file is a batch of one.
//
// Each item's key is its path relative to the input root, without the image extension ('a/20.png' → 'a/20'). The key
// is the item's output folder under --out (so the outputs mirror the input tree) and its identity in the manifest. Two
// inputs whose keys would collide ('x.tif' beside 'x.png', or beside a folder 'x') keep their full names instead.
// Items are sorted by key, so a shard (every N-th item) is the same whichever machine lists the folder.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { naturalCompare } from '../io/stack';

export interface BatchItem {
  /** Output folder relative to --out, '/'-separated; the item's identity in the manifest. */
  key: string;
  /** Absolute path of the input: a file, or a folder of slices. */
  input: string;
  kind: 'file' | 'folder';
  /** The input's path relative to the input root ('/'-separated, with extension): where its ground truth is looked up. */
  rel: string;
  /** Ground truth for this item, when --gt has one. */
  gt?: string;
}

/** Which share of the items this run processes: the index-th of count (1-based), as `--shard index/count`. */
export interface Shard {
  index: number;
  count: number;
}

export interface DiscoverOptions {
  /** Leaf folders of images are stack items (default: every image file is an item). */
  folderStacks?: boolean;
  /** Absolute folders never walked into (the output folder, when it lies inside the input). */
  exclude?: string[];
}

export const IMAGE_EXTENSIONS = new Set(['.png', '.tif', '.tiff', '.jpg', '.jpeg']);
/** Files operating systems drop into folders; never items. (Dot files are skipped too.) */
const SYSTEM_FILES = new Set(['thumbs.db', 'ehthumbs.db', 'desktop.ini']);

/** An error about the user's input, printed as one line by the CLI (exit code 2). */
export function batchError(message: string): Error {
  return Object.assign(new Error(message), { userFacing: true });
}

export function isImageName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(name).toLowerCase());
}

function stem(name: string): string {
  const ext = extname(name);
  return IMAGE_EXTENSIONS.has(ext.toLowerCase()) ? name.slice(0, -ext.length) : name;
}

const toPosix = (p: string): string => p.split(sep).join('/');
const joinKey = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);

export function parseShard(spec: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw batchError(`--shard must be i/N with 1 ≤ i ≤ N (e.g. 1/4), got '${spec}'`);
  return { index, count };
}

/** The shard's share: items index-1, index-1+count, … of the sorted list (round robin, so shares differ by ≤ 1 item). */
export function selectShard<T>(items: readonly T[], shard: Shard | undefined): T[] {
  if (!shard || shard.count === 1) return [...items];
  return items.filter((_, k) => k % shard.count === shard.index - 1);
}

export async function discoverItems(input: string, opts: DiscoverOptions = {}): Promise<BatchItem[]> {
  const root = resolve(input);
  let st;
  try {
    st = await stat(root);
  } catch {
    throw batchError(`${input}: no such file or folder`);
  }
  let items: BatchItem[];
  if (st.isDirectory()) {
    items = [];
    const exclude = new Set<string>();
    for (const e of opts.exclude ?? []) exclude.add(await realpath(e).catch(() => resolve(e)));
    await walk(root, '', items, { folderStacks: opts.folderStacks === true, exclude, seen: new Set() }, true);
  } else if (isImageName(root)) {
    items = [{ key: stem(basename(root)), input: root, kind: 'file', rel: basename(root) }];
  } else {
    items = await readListFile(root);
  }
  items.sort((a, b) => naturalCompare(a.key, b.key));
  for (let k = 1; k < items.length; k++) {
    if (items[k].key === items[k - 1].key) throw batchError(`${items[k].input} and ${items[k - 1].input} would both write to '${items[k].key}'`);
  }
  return items;
}

interface WalkState {
  folderStacks: boolean;
  exclude: Set<string>;
  /** Real paths of folders already walked: a symbolic link back up the tree must not loop. */
  seen: Set<string>;
}

async function walk(dir: string, relDir: string, out: BatchItem[], state: WalkState, isRoot: boolean): Promise<void> {
  const real = await realpath(dir);
  if (state.seen.has(real) || state.exclude.has(real)) return;
  state.seen.add(real);
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => !e.name.startsWith('.') && !SYSTEM_FILES.has(e.name.toLowerCase()))
    .sort((a, b) => naturalCompare(a.name, b.name));
  const folders: string[] = [];
  const images: string[] = [];
  for (const e of entries) {
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const target = await stat(join(dir, e.name)).catch(() => null);
      isDir = target?.isDirectory() ?? false;
      // A dangling link named like an image is still an item: it then fails with its own one-line error.
      isFile = target ? target.isFile() : isImageName(e.name);
    }
    if (isDir) folders.push(e.name);
    else if (isFile && isImageName(e.name)) images.push(e.name);
  }
  if (state.folderStacks && folders.length === 0 && images.length > 0) {
    const key = relDir === '' ? basename(dir) : relDir;
    out.push({ key, input: dir, kind: 'folder', rel: isRoot ? '' : relDir });
    return;
  }
  // Names taken in this folder: sub-folders, and every image's stem. A stem used twice keeps its extension.
  const stems = new Map<string, number>();
  for (const f of folders) stems.set(f, (stems.get(f) ?? 0) + 1);
  for (const f of images) stems.set(stem(f), (stems.get(stem(f)) ?? 0) + 1);
  for (const f of images) {
    const name = stems.get(stem(f))! > 1 ? f : stem(f);
    out.push({ key: joinKey(relDir, name), input: join(dir, f), kind: 'file', rel: joinKey(relDir, f) });
  }
  for (const f of folders) await walk(join(dir, f), joinKey(relDir, f), out, state, false);
}

/** Deepest folder holding every given folder. */
function commonFolder(folders: string[]): string {
  let common = folders[0];
  for (const f of folders.slice(1)) {
    while (common !== dirname(common) && relative(common, f).startsWith('..')) common = dirname(common);
  }
  return common;
}

/**
 * A list file: one input per line (files or folders of slices), relative paths from the list file's folder, blank
 * lines and lines starting with # ignored. Keys are paths relative to the deepest folder holding all entries. An
 * entry that does not exist is still an item, so that it is recorded as failed rather than silently dropped.
 */
async function readListFile(path: string): Promise<BatchItem[]> {
  const text = await readFile(path, 'utf8').catch((e: unknown) => {
    throw batchError(`${path}: cannot read the list file (${(e as Error).message.split('\n')[0]})`);
  });
  if (text.includes('\0')) throw batchError(`${path}: not a list file (binary content); give a folder, an image, or a text file of paths`);
  const base = dirname(path);
  const entries: Array<{ input: string; kind: 'file' | 'folder' }> = [];
  const seen = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const input = isAbsolute(line) ? resolve(line) : resolve(base, line);
    if (seen.has(input)) continue;
    seen.add(input);
    const st = await stat(input).catch(() => null);
    entries.push({ input, kind: st?.isDirectory() ? 'folder' : 'file' });
  }
  if (entries.length === 0) throw batchError(`${path}: the list file names no inputs`);
  const root = commonFolder(entries.map((e) => dirname(e.input)));
  const keyOf = (e: { input: string; kind: 'file' | 'folder' }): string => {
    const rel = toPosix(relative(root, e.input));
    return e.kind === 'folder' ? rel : joinKey(toPosix(dirname(rel)) === '.' ? '' : toPosix(dirname(rel)), stem(basename(rel)));
  };
  const counts = new Map<string, number>();
  for (const e of entries) counts.set(keyOf(e), (counts.get(keyOf(e)) ?? 0) + 1);
  return entries.map((e) => {
    const rel = toPosix(relative(root, e.input));
    return { key: counts.get(keyOf(e))! > 1 ? rel : keyOf(e), input: e.input, kind: e.kind, rel };
  });
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/**
 * Pairs items with ground truth under gtRoot: the same relative path (gt/a/20.png for a/20.png), else the same stem
 * with any image extension (gt/a/20.tif), else a folder of that stem (a folder stack's truth as slices). A file gtRoot
 * is the truth of a batch of one. Returns how many items got ground truth.
 */
export async function attachGroundTruth(items: BatchItem[], gtRoot: string): Promise<number> {
  const root = resolve(gtRoot);
  const st = await stat(root).catch(() => null);
  if (!st) throw batchError(`--gt ${gtRoot}: no such file or folder`);
  if (!st.isDirectory()) {
    if (items.length !== 1) throw batchError(`--gt ${gtRoot} is one file, but the batch has ${items.length} items: give a folder mirroring the input`);
    items[0].gt = root;
    return 1;
  }
  let found = 0;
  for (const item of items) {
    if (item.rel === '') {
      item.gt = root;
      found++;
      continue;
    }
    const relStem = item.kind === 'folder' ? item.rel : joinKey(toPosix(dirname(item.rel)) === '.' ? '' : toPosix(dirname(item.rel)), stem(basename(item.rel)));
    const candidates = [item.rel, ...[...IMAGE_EXTENSIONS].map((e) => `${relStem}${e}`), relStem];
    for (const c of candidates) {
      if (await exists(join(root, c))) {
        item.gt = join(root, c);
        found++;
        break;
      }
    }
  }
  return found;
}
