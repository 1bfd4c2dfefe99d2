// Binary encodings of a project's files: label slices, history entries (a layer and a delta) and journal records.
// Everything is little-endian uint32 with a CRC-32 beside the payload, so a torn or damaged file is recognised by its
// bytes, never trusted: a kill -9 in the middle of an append leaves a record whose length or checksum does not add up.
import * as zlib from 'node:zlib';
import type { LabelDelta } from '../../ml/proofread';

export type ProjectLayer = 'labels' | 'truth';
export const LAYERS: readonly ProjectLayer[] = ['labels', 'truth'];

/** One entry of the undo (or redo) stack: which layer, and the pixels it changed. */
export interface HistoryEntry {
  layer: ProjectLayer;
  delta: LabelDelta;
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

const OP_CODE = { edit: 1, undo: 2, redo: 3 } as const;
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

/** A history entry: layer code, z, pixel count, then indices, before and after. */
export function encodeEntry(e: HistoryEntry): Uint8Array[] {
  const n = e.delta.indices.length;
  const head = new Uint8Array(12);
  const v = new DataView(head.buffer);
  v.setUint32(0, LAYER_CODE[e.layer], true);
  v.setUint32(4, e.delta.z, true);
  v.setUint32(8, n, true);
  return [head, bytesOf(e.delta.indices), bytesOf(e.delta.before), bytesOf(e.delta.after)];
}

/** Reads one entry at `offset`; returns it and the offset after it. */
export function decodeEntry(buf: Uint8Array, offset: number, what: string): { entry: HistoryEntry; next: number } {
  if (offset + 12 > buf.length) throw new ProjectFormatError(`${what}: truncated history entry`);
  const v = new DataView(buf.buffer, buf.byteOffset + offset, 12);
  const code = v.getUint32(0, true);
  const z = v.getUint32(4, true);
  const n = v.getUint32(8, true);
  const layer = LAYERS[code];
  if (layer === undefined) throw new ProjectFormatError(`${what}: unknown layer code ${code}`);
  const start = offset + 12;
  const end = start + 12 * n;
  if (end > buf.length) throw new ProjectFormatError(`${what}: history entry of ${n} pixels runs past the end`);
  // Copy: the arrays must be 4-byte aligned and must not keep the whole file buffer alive.
  const all = new Uint32Array(3 * n);
  new Uint8Array(all.buffer).set(buf.subarray(start, end));
  return { entry: { layer, delta: { z, indices: all.subarray(0, n), before: all.subarray(n, 2 * n), after: all.subarray(2 * n) } }, next: end };
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

/** A journal record as written: payload length, CRC-32 of the payload, payload. */
export function encodeRecord(r: JournalRecord): Uint8Array {
  const payload = concat(payloadOf(r));
  return concat([u32(payload.length), u32(crc32(payload)), payload]);
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
    if (op === OP_CODE.edit) {
      const { entry, next } = decodeEntry(payload, 4, what);
      if (next !== payload.length) throw new ProjectFormatError(`${what}: record at byte ${o} has ${payload.length - next} extra bytes`);
      records.push({ op: 'edit', entry });
    } else if (op === OP_CODE.undo) records.push({ op: 'undo' });
    else if (op === OP_CODE.redo) records.push({ op: 'redo' });
    else throw new ProjectFormatError(`${what}: unknown record type ${op} at byte ${o}`);
    o += 8 + len;
  }
  return { records, goodBytes: o, tornBytes: buf.length - o };
}

/** The undo and redo stacks as one file: magic, counts, entries, CRC-32 of everything before it. */
export function encodeHistory(undo: readonly HistoryEntry[], redo: readonly HistoryEntry[]): Uint8Array[] {
  const head = concat([new TextEncoder().encode('EMSH'), u32(1), u32(undo.length), u32(redo.length)]);
  const parts = [head, ...undo.flatMap(encodeEntry), ...redo.flatMap(encodeEntry)];
  // One checksum over all parts without concatenating them: zlib's crc32 takes the running value as its second
  // argument; the table loop carries it in c.
  let sum = 0;
  if (nativeCrc32) {
    const running = nativeCrc32 as unknown as (data: Uint8Array, value: number) => number;
    for (const p of parts) sum = running(p, sum);
  } else {
    let c = 0xffffffff;
    for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >>> 8);
    sum = (c ^ 0xffffffff) >>> 0;
  }
  return [...parts, u32(sum >>> 0)];
}

export function decodeHistory(buf: Uint8Array, what: string): { undo: HistoryEntry[]; redo: HistoryEntry[] } {
  if (buf.length < 20 || new TextDecoder().decode(buf.subarray(0, 4)) !== 'EMSH') throw new ProjectFormatError(`${what}: not an EMSeg history file`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (crc32(buf.subarray(0, buf.length - 4)) !== view.getUint32(buf.length - 4, true)) throw new ProjectFormatError(`${what}: checksum mismatch (damaged file)`);
  const nu = view.getUint32(8, true);
  const nr = view.getUint32(12, true);
  const body = buf.subarray(0, buf.length - 4);
  let o = 16;
  const read = (k: number) => {
    const out: HistoryEntry[] = [];
    for (let i = 0; i < k; i++) {
      const r = decodeEntry(body, o, what);
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

/** A label slice file: magic, width, height, CRC-32 of the pixels, then width·height uint32. */
export function encodeSlice(width: number, height: number, data: Uint32Array): Uint8Array[] {
  const head = concat([new TextEncoder().encode('EMSL'), u32(width), u32(height), u32(crc32(bytesOf(data)))]);
  return [head, bytesOf(data)];
}

export function decodeSlice(buf: Uint8Array, width: number, height: number, what: string): Uint32Array {
  if (buf.length < 16 || new TextDecoder().decode(buf.subarray(0, 4)) !== 'EMSL') throw new ProjectFormatError(`${what}: not an EMSeg label slice`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const w = view.getUint32(4, true);
  const h = view.getUint32(8, true);
  if (w !== width || h !== height) throw new ProjectFormatError(`${what}: slice is ${w}×${h}, the project ${width}×${height}`);
  if (buf.length !== 16 + 4 * w * h) throw new ProjectFormatError(`${what}: ${buf.length} bytes for a ${w}×${h} slice`);
  const data = new Uint32Array(w * h);
  new Uint8Array(data.buffer).set(buf.subarray(16));
  if (crc32(bytesOf(data)) !== view.getUint32(12, true)) throw new ProjectFormatError(`${what}: checksum mismatch (damaged file)`);
  return data;
}

/** A membrane map file: magic, width, height, CRC-32 of the pixels, then width·height float32 (1 = membrane). */
export function encodeMap(width: number, height: number, data: Float32Array): Uint8Array[] {
  const head = concat([new TextEncoder().encode('EMSM'), u32(width), u32(height), u32(crc32(bytesOf(data)))]);
  return [head, bytesOf(data)];
}

export function decodeMap(buf: Uint8Array, width: number, height: number, what: string): Float32Array {
  if (buf.length < 16 || new TextDecoder().decode(buf.subarray(0, 4)) !== 'EMSM') throw new ProjectFormatError(`${what}: not an EMSeg membrane map`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const w = view.getUint32(4, true);
  const h = view.getUint32(8, true);
  if (w !== width || h !== height) throw new ProjectFormatError(`${what}: map is ${w}×${h}, the project ${width}×${height}`);
  if (buf.length !== 16 + 4 * w * h) throw new ProjectFormatError(`${what}: ${buf.length} bytes for a ${w}×${h} map`);
  const data = new Float32Array(w * h);
  new Uint8Array(data.buffer).set(buf.subarray(16));
  if (crc32(bytesOf(data)) !== view.getUint32(12, true)) throw new ProjectFormatError(`${what}: checksum mismatch (damaged file)`);
  return data;
}
