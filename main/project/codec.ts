// Binary encodings of a project's files: label slices, history entries (a layer and its deltas) and journal records.
// Everything is little-endian uint32 with a CRC-32 beside the payload, so a torn or damaged file is recognised by its
// bytes, never trusted: a kill -9 in the middle of an append leaves a record whose length or checksum does not add up.
//
// Entries are written in format 2 (a layer and any number of deltas: one undoable step may change several slices);
// format 1 (exactly one delta), as projects written before grouped steps hold it, is still read: journal records of
// op code 1 and history files of version 1.
import * as zlib from 'node:zlib';
import type { LabelDelta } from '../../ml/proofread';

export type ProjectLayer = 'labels' | 'truth';
export const LAYERS: readonly ProjectLayer[] = ['labels', 'truth'];

/**
 * One entry of the undo (or redo) stack: which layer, and the pixels it changed. One delta for an edit; one per slice
 * when a single step changes several slices (accepting a job's proposed labels on all of them), applied in order and
 * undone together.
 */
export interface HistoryEntry {
  layer: ProjectLayer;
  deltas: LabelDelta[];
}

export type JournalRecord = { op: 'edit'; entry: HistoryEntry } | { op: 'undo' } | { op: 'redo' };

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

// zlib's own CRC-32 (Node ≥ 20.15) is ~10× faster than the table loop on a 64 MiB slice; older Nodes use the loop.
const nativeCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 (IEEE, as zip and PNG use it). */
export function crc32(bytes: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(bytes) >>> 0 : crc32Table(bytes);
}

/** The table loop (exported so the tests can check it against zlib's). */
export function crc32Table(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC-32 of the parts one after another, without concatenating them. */
export function crc32Parts(parts: readonly Uint8Array[]): number {
  // zlib's crc32 takes the running value as its second argument; the table loop carries it in c.
  if (nativeCrc32) {
    const running = nativeCrc32 as unknown as (data: Uint8Array, value: number) => number;
    let sum = 0;
    for (const p of parts) sum = running(p, sum);
    return sum >>> 0;
  }
  let c = 0xffffffff;
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// Op code 1 is an edit in entry format 1 (read only); edits are written as op code 4, entry format 2.
const OP_CODE = { edit: 4, undo: 2, redo: 3 } as const;
const OP_EDIT_V1 = 1;
const HISTORY_VERSION = 2;
const LAYER_CODE: Record<ProjectLayer, number> = { labels: 0, truth: 1 };

export class ProjectFormatError extends Error {
  override name = 'ProjectFormatError';
  readonly userFacing = true;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

function bytesOf(a: Uint32Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A history entry (format 2): layer code, delta count, then per delta z, pixel count, indices, before and after. */
export function encodeEntry(e: HistoryEntry): Uint8Array[] {
  const parts: Uint8Array[] = [concat([u32(LAYER_CODE[e.layer]), u32(e.deltas.length)])];
  for (const d of e.deltas) parts.push(concat([u32(d.z), u32(d.indices.length)]), bytesOf(d.indices), bytesOf(d.before), bytesOf(d.after));
  return parts;
}

/** Reads one entry of format 2 (or 1: layer code, z, pixel count, arrays) at `offset`; returns it and the offset after it. */
export function decodeEntry(buf: Uint8Array, offset: number, what: string, format: 1 | 2 = 2): { entry: HistoryEntry; next: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const word = (o: number) => {
    if (o + 4 > buf.length) throw new ProjectFormatError(`${what}: truncated history entry`);
    return view.getUint32(o, true);
  };
  const code = word(offset);
  const layer = LAYERS[code];
  if (layer === undefined) throw new ProjectFormatError(`${what}: unknown layer code ${code}`);
  const count = format === 1 ? 1 : word(offset + 4);
  let o = offset + (format === 1 ? 4 : 8);
  const deltas: LabelDelta[] = [];
  for (let k = 0; k < count; k++) {
    const z = word(o);
    const n = word(o + 4);
    const start = o + 8;
    const end = start + 12 * n;
    if (end > buf.length) throw new ProjectFormatError(`${what}: history entry of ${n} pixels runs past the end`);
    // Copy: the arrays must be 4-byte aligned and must not keep the whole file buffer alive.
    const all = new Uint32Array(3 * n);
    new Uint8Array(all.buffer).set(buf.subarray(start, end));
    deltas.push({ z, indices: all.subarray(0, n), before: all.subarray(n, 2 * n), after: all.subarray(2 * n) });
    o = end;
  }
  return { entry: { layer, deltas }, next: o };
}

function payloadOf(r: JournalRecord): Uint8Array[] {
  const op = new Uint8Array([OP_CODE[r.op], 0, 0, 0]);
  return r.op === 'edit' ? [op, ...encodeEntry(r.entry)] : [op];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A journal record as written: payload length, CRC-32 of the payload, payload; as parts, so the pixels of a large
 * edit are written from where they are instead of being copied into one buffer first.
 */
export function encodeRecord(r: JournalRecord): Uint8Array[] {
  const payload = payloadOf(r);
  const length = payload.reduce((s, p) => s + p.length, 0);
  // The length field is 32 bits: an edit this large (some 350 million changed pixels) cannot be journaled.
  if (length > 0xffffffff) throw new RangeError(`an edit of ${length} bytes is too large for one journal record`);
  return [u32(length), u32(crc32Parts(payload)), ...payload];
}

/**
 * The records of a journal up to the first one that is incomplete or fails its checksum (the tail a crash tore), and
 * the byte length of the good part, to which the file is cut before appending again.
 */
export function decodeJournal(buf: Uint8Array, what: string): { records: JournalRecord[]; goodBytes: number; tornBytes: number } {
  const records: JournalRecord[] = [];
  let o = 0;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (o + 8 <= buf.length) {
    const len = view.getUint32(o, true);
    const sum = view.getUint32(o + 4, true);
    if (len < 4 || o + 8 + len > buf.length) break;
    const payload = buf.subarray(o + 8, o + 8 + len);
    if (crc32(payload) !== sum) break;
    const op = payload[0];
    if (op === OP_CODE.edit || op === OP_EDIT_V1) {
      const { entry, next } = decodeEntry(payload, 4, what, op === OP_EDIT_V1 ? 1 : 2);
      if (next !== payload.length) throw new ProjectFormatError(`${what}: record at byte ${o} has ${payload.length - next} extra bytes`);
      records.push({ op: 'edit', entry });
    } else if (op === OP_CODE.undo) records.push({ op: 'undo' });
    else if (op === OP_CODE.redo) records.push({ op: 'redo' });
    else throw new ProjectFormatError(`${what}: unknown record type ${op} at byte ${o}`);
    o += 8 + len;
  }
  return { records, goodBytes: o, tornBytes: buf.length - o };
}

/** The undo and redo stacks as one file: magic, version, counts, entries, CRC-32 of everything before it. */
export function encodeHistory(undo: readonly HistoryEntry[], redo: readonly HistoryEntry[]): Uint8Array[] {
  const head = concat([new TextEncoder().encode('EMSH'), u32(HISTORY_VERSION), u32(undo.length), u32(redo.length)]);
  const parts = [head, ...undo.flatMap(encodeEntry), ...redo.flatMap(encodeEntry)];
  return [...parts, u32(crc32Parts(parts))];
}

export function decodeHistory(buf: Uint8Array, what: string): { undo: HistoryEntry[]; redo: HistoryEntry[] } {
  if (buf.length < 20 || new TextDecoder().decode(buf.subarray(0, 4)) !== 'EMSH') throw new ProjectFormatError(`${what}: not an EMSeg history file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (crc32(buf.subarray(0, buf.length - 4)) !== view.getUint32(buf.length - 4, true)) throw new ProjectFormatError(`${what}: checksum mismatch (damaged file)`);
  const version = view.getUint32(4, true);
  if (version !== 1 && version !== HISTORY_VERSION) throw new ProjectFormatError(`${what}: history format version ${version} is not supported`);
  const nu = view.getUint32(8, true);
  const nr = view.getUint32(12, true);
  const body = buf.subarray(0, buf.length - 4);
  let o = 16;
  const read = (k: number) => {
    const out: HistoryEntry[] = [];
    for (let i = 0; i < k; i++) {
      const r = decodeEntry(body, o, what, version);
      out.push(r.entry);
      o = r.next;
    }
    return out;
  };
  const undo = read(nu);
  const redo = read(nr);
  if (o !== body.length) throw new ProjectFormatError(`${what}: ${body.length - o} bytes after the last entry`);
  return { undo, redo };
}

// Label slices and membrane maps share one layout: magic, width, height, CRC-32 of the pixels, then width·height
// 4-byte pixels (uint32 labels; float32 maps, 1 = membrane).
const SLICE_FILE = { magic: 'EMSL', kind: 'label slice', noun: 'slice' } as const;
const MAP_FILE = { magic: 'EMSM', kind: 'membrane map', noun: 'map' } as const;

function encodePixels(file: { magic: string }, width: number, height: number, data: Uint32Array | Float32Array): Uint8Array[] {
  const head = concat([new TextEncoder().encode(file.magic), u32(width), u32(height), u32(crc32(bytesOf(data)))]);
  return [head, bytesOf(data)];
}

function decodePixels<T extends Uint32Array | Float32Array>(
  file: { magic: string; kind: string; noun: string },
  make: (n: number) => T,
  buf: Uint8Array,
  width: number,
  height: number,
  what: string,
): T {
  if (buf.length < 16 || new TextDecoder().decode(buf.subarray(0, 4)) !== file.magic) throw new ProjectFormatError(`${what}: not an EMSeg ${file.kind}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const w = view.getUint32(4, true);
  const h = view.getUint32(8, true);
  if (w !== width || h !== height) throw new ProjectFormatError(`${what}: ${file.noun} is ${w}×${h}, the project ${width}×${height}`);
  if (buf.length !== 16 + 4 * w * h) throw new ProjectFormatError(`${what}: ${buf.length} bytes for a ${w}×${h} ${file.noun}`);
  const data = make(w * h);
  new Uint8Array(data.buffer).set(buf.subarray(16));
  if (crc32(bytesOf(data)) !== view.getUint32(12, true)) throw new ProjectFormatError(`${what}: checksum mismatch (damaged file)`);
  return data;
}

/** A label slice file (uint32 pixels). */
export function encodeSlice(width: number, height: number, data: Uint32Array): Uint8Array[] {
  return encodePixels(SLICE_FILE, width, height, data);
}

export function decodeSlice(buf: Uint8Array, width: number, height: number, what: string): Uint32Array {
  return decodePixels(SLICE_FILE, (n) => new Uint32Array(n), buf, width, height, what);
}

/** A membrane map file (float32 pixels, 1 = membrane). */
export function encodeMap(width: number, height: number, data: Float32Array): Uint8Array[] {
  return encodePixels(MAP_FILE, width, height, data);
}

export function decodeMap(buf: Uint8Array, width: number, height: number, what: string): Float32Array {
  return decodePixels(MAP_FILE, (n) => new Float32Array(n), buf, width, height, what);
}
