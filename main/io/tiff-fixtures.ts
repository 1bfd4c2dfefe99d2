// Test-only: a small TIFF *encoder* that makes the files the reader must handle but EMSeg's writer never produces:
// either byte order, classic or BigTIFF, strips or tiles, LZW / deflate / PackBits, predictors 2 and 3, signed and RGB
// samples, ImageJ/OME descriptions, and malformed variants (the returned offsets let tests patch bytes). Kept beside
// the tests rather than in a test folder, as STYLE.md asks; nothing outside *.test.ts imports it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { Compression, FieldType, Tag, asciiValues, encodeHeader, encodeIfd, ifdByteSize, toRational, type IfdField } from './tiff-format';
import { swapBytes } from './tiff-codecs';

export type SampleArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Float32Array;

export interface FixtureImage {
  width: number;
  height: number;
  /** Samples, row-major, interleaved when samplesPerPixel > 1. */
  data: SampleArray;
  samplesPerPixel?: number;
  photometric?: number;
}

export interface FixtureOptions {
  littleEndian?: boolean;
  bigTiff?: boolean;
  compression?: number;
  predictor?: 1 | 2 | 3;
  tile?: [number, number];
  rowsPerStrip?: number;
  description?: string;
  /** Pixels per unit; unit is the ResolutionUnit value (omitted when undefined). */
  resolution?: { x: number; y: number; unit?: number };
  /** Extra or replacing fields for page z (a field with the tag of a standard one replaces it). */
  fields?: (z: number) => IfdField[];
  omitByteCounts?: boolean;
}

export interface Fixture {
  bytes: Uint8Array;
  ifdOffsets: number[];
  /** Per page, the file offset of each strip or tile. */
  chunkOffsets: number[][];
}

function sampleInfo(a: SampleArray): { bits: number; format: number } {
  if (a instanceof Uint8Array) return { bits: 8, format: 1 };
  if (a instanceof Int8Array) return { bits: 8, format: 2 };
  if (a instanceof Uint16Array) return { bits: 16, format: 1 };
  if (a instanceof Int16Array) return { bits: 16, format: 2 };
  if (a instanceof Uint32Array) return { bits: 32, format: 1 };
  return { bits: 32, format: 3 };
}

function unsignedView(a: SampleArray): Uint8Array | Uint16Array | Uint32Array {
  const n = a.length;
  if (a.BYTES_PER_ELEMENT === 1) return new Uint8Array(a.buffer, a.byteOffset, n);
  if (a.BYTES_PER_ELEMENT === 2) return new Uint16Array(a.buffer, a.byteOffset, n);
  return new Uint32Array(a.buffer, a.byteOffset, n);
}

/** TIFF LZW (MSB-first, 9-12 bit codes, early change, Clear when the table is full), as libtiff encodes it. */
export function lzwEncode(src: Uint8Array): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let nacc = 0;
  let codeLen = 9;
  const put = (code: number): void => {
    acc = (acc << codeLen) | code;
    nacc += codeLen;
    while (nacc >= 8) {
      out.push((acc >>> (nacc - 8)) & 0xff);
      nacc -= 8;
    }
    acc &= (1 << nacc) - 1;
  };
  const dict = new Map<number, number>();
  let next = 258;
  // After each code the decoder adds one table entry; mirror it and widen or clear exactly when it will.
  const grow = (): void => {
    next++;
    if (next === 4094) {
      put(256);
      dict.clear();
      next = 258;
      codeLen = 9;
    } else if (next > (1 << codeLen) - 1) {
      codeLen++;
    }
  };
  put(256);
  if (src.length > 0) {
    let w = src[0];
    for (let i = 1; i < src.length; i++) {
      const key = w * 256 + src[i];
      const code = dict.get(key);
      if (code !== undefined) {
        w = code;
        continue;
      }
      put(w);
      dict.set(key, next);
      grow();
      w = src[i];
    }
    put(w);
    grow();
  }
  put(257);
  if (nacc > 0) out.push((acc << (8 - nacc)) & 0xff);
  return Uint8Array.from(out);
}

/** PackBits, one row at a time as TIFF prescribes. */
export function packbitsEncode(src: Uint8Array, rowBytes = src.length): Uint8Array {
  const out: number[] = [];
  for (let r = 0; r < src.length; r += rowBytes) {
    const row = src.subarray(r, Math.min(src.length, r + rowBytes));
    let i = 0;
    while (i < row.length) {
      let run = 1;
      while (i + run < row.length && run < 128 && row[i + run] === row[i]) run++;
      if (run >= 2) {
        out.push((257 - run) & 0xff, row[i]);
        i += run;
        continue;
      }
      let j = i;
      while (j < row.length && j - i < 128 && !(j + 1 < row.length && row[j] === row[j + 1])) j++;
      out.push(j - i - 1, ...row.subarray(i, j));
      i = j;
    }
  }
  return Uint8Array.from(out);
}

/** Predictor 3 encoding of host-order float rows: byte planes, most significant first, then byte differences. */
export function floatPredictorEncode(bytes: Uint8Array, width: number, rows: number, spp: number, size: number): Uint8Array {
  const wc = width * spp;
  const rowBytes = wc * size;
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++) {
    const o = r * rowBytes;
    for (let k = 0; k < wc; k++) for (let b = 0; b < size; b++) out[o + b * wc + k] = bytes[o + k * size + (size - 1 - b)];
    for (let i = rowBytes - 1; i >= spp; i--) out[o + i] = (out[o + i] - out[o + i - spp]) & 0xff;
  }
  return out;
}

function encodeChunk(samples: SampleArray, cw: number, ch: number, spp: number, opts: FixtureOptions): Uint8Array {
  const size = samples.BYTES_PER_ELEMENT;
  const predictor = opts.predictor ?? 1;
  if (predictor === 2) {
    const u = unsignedView(samples);
    for (let r = 0; r < ch; r++) for (let i = (r + 1) * cw * spp - 1; i >= r * cw * spp + spp; i--) u[i] -= u[i - spp];
  }
  let bytes: Uint8Array = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength).slice();
  if (predictor === 3) bytes = floatPredictorEncode(bytes, cw, ch, spp, size);
  else if (opts.littleEndian === false) swapBytes(bytes, size);
  switch (opts.compression ?? Compression.None) {
    case Compression.LZW:
      return lzwEncode(bytes);
    case Compression.AdobeDeflate:
    case Compression.Deflate:
      return new Uint8Array(deflateSync(bytes));
    case Compression.PackBits:
      return packbitsEncode(bytes, cw * spp * size);
    default:
      return bytes;
  }
}

/** Builds a TIFF in memory: header, all chunks, then the IFD chain. */
export function buildTiff(pages: FixtureImage[], opts: FixtureOptions = {}): Fixture {
  const le = opts.littleEndian !== false;
  const big = opts.bigTiff === true;
  const chunks: Uint8Array[] = [];
  let pos = big ? 16 : 8;
  const chunkOffsets: number[][] = [];
  const chunkCounts: number[][] = [];
  for (const page of pages) {
    const spp = page.samplesPerPixel ?? 1;
    const Ctor = page.data.constructor as new (n: number) => SampleArray;
    const [cw, chh] = opts.tile ?? [page.width, Math.min(opts.rowsPerStrip ?? page.height, page.height)];
    const across = Math.ceil(page.width / cw);
    const down = Math.ceil(page.height / chh);
    const offs: number[] = [];
    const counts: number[] = [];
    for (let ty = 0; ty < down; ty++) {
      for (let tx = 0; tx < across; tx++) {
        const rows = opts.tile ? chh : Math.min(chh, page.height - ty * chh);
        const chunk = new Ctor(cw * rows * spp);
        for (let r = 0; r < rows; r++) {
          const y = ty * chh + r;
          if (y >= page.height) break;
          const w = Math.min(cw, page.width - tx * cw);
          const s = (y * page.width + tx * cw) * spp;
          chunk.set(page.data.subarray(s, s + w * spp), r * cw * spp);
        }
        const enc = encodeChunk(chunk, cw, rows, spp, { ...opts, littleEndian: le });
        offs.push(pos);
        counts.push(enc.length);
        chunks.push(enc);
        pos += enc.length;
        if (pos & 1) {
          chunks.push(new Uint8Array(1));
          pos++;
        }
      }
    }
    chunkOffsets.push(offs);
    chunkCounts.push(counts);
  }
  const offType = big ? FieldType.LONG8 : FieldType.LONG;
  const fieldsFor = (z: number): IfdField[] => {
    const page = pages[z];
    const spp = page.samplesPerPixel ?? 1;
    const { bits, format } = sampleInfo(page.data);
    const f: IfdField[] = [
      { tag: Tag.ImageWidth, type: FieldType.LONG, values: [page.width] },
      { tag: Tag.ImageLength, type: FieldType.SHORT, values: [page.height] },
      { tag: Tag.BitsPerSample, type: FieldType.SHORT, values: new Array<number>(spp).fill(bits) },
      { tag: Tag.Compression, type: FieldType.SHORT, values: [opts.compression ?? Compression.None] },
      { tag: Tag.Photometric, type: FieldType.SHORT, values: [page.photometric ?? (spp >= 3 ? 2 : 1)] },
      { tag: Tag.SamplesPerPixel, type: FieldType.SHORT, values: [spp] },
      { tag: Tag.SampleFormat, type: FieldType.SHORT, values: new Array<number>(spp).fill(format) },
    ];
    if (opts.predictor && opts.predictor !== 1) f.push({ tag: Tag.Predictor, type: FieldType.SHORT, values: [opts.predictor] });
    if (opts.tile) {
      f.push({ tag: Tag.TileWidth, type: FieldType.SHORT, values: [opts.tile[0]] });
      f.push({ tag: Tag.TileLength, type: FieldType.SHORT, values: [opts.tile[1]] });
      f.push({ tag: Tag.TileOffsets, type: offType, values: chunkOffsets[z] });
      if (!opts.omitByteCounts) f.push({ tag: Tag.TileByteCounts, type: FieldType.LONG, values: chunkCounts[z] });
    } else {
      f.push({ tag: Tag.RowsPerStrip, type: FieldType.LONG, values: [Math.min(opts.rowsPerStrip ?? page.height, page.height)] });
      f.push({ tag: Tag.StripOffsets, type: offType, values: chunkOffsets[z] });
      if (!opts.omitByteCounts) f.push({ tag: Tag.StripByteCounts, type: FieldType.LONG, values: chunkCounts[z] });
    }
    if (z === 0 && opts.description !== undefined) f.push({ tag: Tag.ImageDescription, type: FieldType.ASCII, values: asciiValues(opts.description) });
    if (opts.resolution) {
      f.push({ tag: Tag.XResolution, type: FieldType.RATIONAL, values: toRational(opts.resolution.x) });
      f.push({ tag: Tag.YResolution, type: FieldType.RATIONAL, values: toRational(opts.resolution.y) });
      if (opts.resolution.unit !== undefined) f.push({ tag: Tag.ResolutionUnit, type: FieldType.SHORT, values: [opts.resolution.unit] });
    }
    const extra = opts.fields?.(z) ?? [];
    return [...f.filter((x) => !extra.some((e) => e.tag === x.tag)), ...extra];
  };
  const ifdOffsets: number[] = [];
  let at = pos;
  for (let z = 0; z < pages.length; z++) {
    ifdOffsets.push(at);
    const size = ifdByteSize(fieldsFor(z), big);
    at += size + (size & 1);
  }
  const out = new Uint8Array(at);
  out.set(encodeHeader(ifdOffsets[0] ?? 0, big, le), 0);
  let o = big ? 16 : 8;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  for (let z = 0; z < pages.length; z++) out.set(encodeIfd(fieldsFor(z), ifdOffsets[z], ifdOffsets[z + 1] ?? 0, big, le), ifdOffsets[z]);
  return { bytes: out, ifdOffsets, chunkOffsets };
}

/** Deterministic pseudo-random samples covering the type's range (xorshift32, so every run sees the same pixels). */
export function randomSamples<T extends SampleArray>(Ctor: new (n: number) => T, n: number, seed = 1): T {
  const a = new Ctor(n);
  let s = seed >>> 0 || 1;
  const u = unsignedView(a);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    if (a instanceof Float32Array) a[i] = (s / 2 ** 32 - 0.5) * 2000;
    else u[i] = s;
  }
  return a;
}

/** A fresh temporary folder and a function that removes it. */
export async function tempDir(prefix = 'emseg-io-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
