// What makes a batch item "unchanged": content hashes of inputs, ground truth and model folders, a hash of the
// parameters, and a cheap stat fingerprint that lets a rerun skip re-reading inputs whose size and mtime are as
// recorded (a rerun over a terabyte of finished stacks should cost seconds, not an hour of hashing).
import { createHash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { naturalCompare } from '../io/stack';

// Big enough that a hash runs at disk speed, small enough to stay invisible next to a worker's slices.
const READ_CHUNK_BYTES = 1 << 20;

export interface FileHash {
  bytes: number;
  /** 'sha256:<hex>' */
  sha256: string;
}

async function feedFile(hash: ReturnType<typeof createHash>, path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return total;
      hash.update(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

export async function hashFile(path: string): Promise<FileHash> {
  const hash = createHash('sha256');
  const bytes = await feedFile(hash, path);
  return { bytes, sha256: `sha256:${hash.digest('hex')}` };
}

/** The regular, non-hidden files directly in a folder, in natural order. */
async function folderFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    if (e.isFile() || (e.isSymbolicLink() && (await stat(join(dir, e.name)).catch(() => null))?.isFile())) names.push(e.name);
  }
  return names.sort(naturalCompare);
}

/** Hash of a file's bytes, or of a folder's files (names and bytes, in order): a renamed slice changes it too. */
export async function contentHash(path: string, opts: { skip?: (name: string) => boolean } = {}): Promise<string> {
  const st = await stat(path);
  if (!st.isDirectory()) return (await hashFile(path)).sha256;
  const hash = createHash('sha256');
  for (const name of await folderFiles(path)) {
    if (opts.skip?.(name)) continue;
    hash.update(`${name}\0`);
    const bytes = await feedFile(hash, join(path, name));
    hash.update(`\0${bytes}\0`);
  }
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Size and modification time of a file, or of a folder's files: equal fingerprints mean the recorded content hash
 * still holds (the same trust make and rsync place in mtimes; `--verify` re-hashes instead).
 */
export async function fingerprint(path: string): Promise<string> {
  const st = await stat(path);
  if (!st.isDirectory()) return `${st.size}:${Math.round(st.mtimeMs)}`;
  const hash = createHash('sha256');
  for (const name of await folderFiles(path)) {
    const s = await stat(join(path, name));
    hash.update(`${name}\0${s.size}\0${Math.round(s.mtimeMs)}\n`);
  }
  return `dir:${hash.digest('hex').slice(0, 32)}`;
}

/**
 * One hash for the models of a run: every file of each model folder that inference reads (model.json, weights.bin,
 * model.onnx, …); the optimizer state of a training checkpoint does not change predictions and is left out.
 */
export async function modelHash(dirs: ReadonlyArray<string | null>): Promise<string> {
  const hash = createHash('sha256');
  for (const dir of dirs) {
    hash.update(dir === null ? 'none\n' : `${await contentHash(dir, { skip: (n) => n.startsWith('optimizer.') })}\n`);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** JSON with object keys sorted, so that equal parameters always hash equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function paramsHash(params: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(params)).digest('hex')}`;
}
