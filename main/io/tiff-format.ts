// TIFF constants and the IFD encoder shared by the reader, the writer and the test fixtures. Numbers are from the TIFF
// 6.0 specification and the BigTIFF proposal (tag values 16-18, 8-byte offsets, 20-byte entries).

export const Tag = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  ImageDescription: 270,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  PlanarConfiguration: 284,
  ResolutionUnit: 296,
  Software: 305,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  ExtraSamples: 338,
  SampleFormat: 339,
} as const;

export const FieldType = {
  BYTE: 1,
  ASCII: 2,
  SHORT: 3,
  LONG: 4,
  RATIONAL: 5,
  SBYTE: 6,
  UNDEFINED: 7,
  SSHORT: 8,
  SLONG: 9,
  SRATIONAL: 10,
  FLOAT: 11,
  DOUBLE: 12,
  IFD: 13,
  LONG8: 16,
  SLONG8: 17,
  IFD8: 18,
} as const;

/** Bytes per value of each field type; types not listed are skipped by the reader. */
export const FIELD_TYPE_SIZE: Record<number, number> = {
  1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8,
};

export const Compression = {
  None: 1,
  LZW: 5,
  AdobeDeflate: 8,
  PackBits: 32773,
  Deflate: 32946,
} as const;

export const COMPRESSION_NAMES: Record<number, string> = {
  2: 'CCITT RLE',
  3: 'CCITT Group 3 fax',
  4: 'CCITT Group 4 fax',
  6: 'old-style JPEG',
  7: 'JPEG',
  34661: 'JBIG',
  34712: 'JPEG 2000',
  34887: 'LERC',
  34925: 'LZMA',
  50000: 'Zstandard',
  50001: 'WebP',
  50002: 'JPEG XL',
};

/** One field of an IFD to encode. RATIONAL values are flat (numerator, denominator) pairs; ASCII values are bytes. */
export interface IfdField {
  tag: number;
  type: number;
  values: ArrayLike<number>;
}

function fieldCount(f: IfdField): number {
  return f.type === FieldType.RATIONAL || f.type === FieldType.SRATIONAL ? f.values.length / 2 : f.values.length;
}

function valueBytes(f: IfdField): number {
  return fieldCount(f) * FIELD_TYPE_SIZE[f.type];
}

/** Bytes an IFD takes with its out-of-line values (each padded to an even length). */
export function ifdByteSize(fields: readonly IfdField[], bigTiff: boolean): number {
  const inline = bigTiff ? 8 : 4;
  let size = bigTiff ? 8 + fields.length * 20 + 8 : 2 + fields.length * 12 + 4;
  for (const f of fields) {
    const n = valueBytes(f);
    if (n > inline) size += n + (n & 1);
  }
  return size;
}

function setU64(dv: DataView, at: number, v: number, le: boolean): void {
  const lo = v % 2 ** 32;
  const hi = Math.floor(v / 2 ** 32);
  dv.setUint32(at + (le ? 0 : 4), lo, le);
  dv.setUint32(at + (le ? 4 : 0), hi, le);
}

function writeValues(dv: DataView, at: number, f: IfdField, le: boolean): void {
  const v = f.values;
  for (let i = 0; i < v.length; i++) {
    switch (f.type) {
      case FieldType.BYTE:
      case FieldType.ASCII:
      case FieldType.UNDEFINED:
        dv.setUint8(at + i, v[i]);
        break;
      case FieldType.SBYTE:
        dv.setInt8(at + i, v[i]);
        break;
      case FieldType.SHORT:
        dv.setUint16(at + 2 * i, v[i], le);
        break;
      case FieldType.SSHORT:
        dv.setInt16(at + 2 * i, v[i], le);
        break;
      case FieldType.LONG:
      case FieldType.IFD:
      case FieldType.RATIONAL:
        dv.setUint32(at + 4 * i, v[i], le);
        break;
      case FieldType.SLONG:
      case FieldType.SRATIONAL:
        dv.setInt32(at + 4 * i, v[i], le);
        break;
      case FieldType.FLOAT:
        dv.setFloat32(at + 4 * i, v[i], le);
        break;
      case FieldType.DOUBLE:
        dv.setFloat64(at + 8 * i, v[i], le);
        break;
      case FieldType.LONG8:
      case FieldType.IFD8:
        setU64(dv, at + 8 * i, v[i], le);
        break;
      default:
        throw new Error(`cannot encode TIFF field type ${f.type}`);
    }
  }
}

/**
 * Encodes one IFD to be placed at file offset `at` (even), its out-of-line values right after it, and `next` as the
 * offset of the following IFD (0 for the last). Fields are sorted by tag, as the specification requires.
 */
export function encodeIfd(fields: readonly IfdField[], at: number, next: number, bigTiff: boolean, le: boolean): Uint8Array {
  const sorted = [...fields].sort((a, b) => a.tag - b.tag);
  const out = new Uint8Array(ifdByteSize(sorted, bigTiff));
  const dv = new DataView(out.buffer);
  const inline = bigTiff ? 8 : 4;
  const entrySize = bigTiff ? 20 : 12;
  const head = bigTiff ? 8 : 2;
  if (bigTiff) setU64(dv, 0, sorted.length, le);
  else dv.setUint16(0, sorted.length, le);
  let extra = head + sorted.length * entrySize + (bigTiff ? 8 : 4);
  sorted.forEach((f, i) => {
    const e = head + i * entrySize;
    dv.setUint16(e, f.tag, le);
    dv.setUint16(e + 2, f.type, le);
    if (bigTiff) setU64(dv, e + 4, fieldCount(f), le);
    else dv.setUint32(e + 4, fieldCount(f), le);
    const valueAt = e + (bigTiff ? 12 : 8);
    const n = valueBytes(f);
    if (n <= inline) {
      writeValues(dv, valueAt, f, le);
    } else {
      if (bigTiff) setU64(dv, valueAt, at + extra, le);
      else dv.setUint32(valueAt, at + extra, le);
      writeValues(dv, extra, f, le);
      extra += n + (n & 1);
    }
  });
  const nextAt = head + sorted.length * entrySize;
  if (bigTiff) setU64(dv, nextAt, next, le);
  else dv.setUint32(nextAt, next, le);
  return out;
}

/** The 8-byte (classic) or 16-byte (BigTIFF) file header pointing at the first IFD. */
export function encodeHeader(firstIfd: number, bigTiff: boolean, le: boolean): Uint8Array {
  const out = new Uint8Array(bigTiff ? 16 : 8);
  const dv = new DataView(out.buffer);
  out[0] = out[1] = le ? 0x49 : 0x4d;
  dv.setUint16(2, bigTiff ? 43 : 42, le);
  if (bigTiff) {
    dv.setUint16(4, 8, le);
    dv.setUint16(6, 0, le);
    setU64(dv, 8, firstIfd, le);
  } else {
    dv.setUint32(4, firstIfd, le);
  }
  return out;
}

/** ASCII field values: the text's UTF-8 bytes and the terminating NUL. */
export function asciiValues(text: string): Uint8Array {
  const bytes = new TextEncoder().encode(text.replace(/\0/g, ''));
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * Best rational approximation num/den of x >= 0 with both below 2^32 (continued fractions), so that resolutions like
 * 1 / 0.0037 px/µm survive the round trip through a RATIONAL field to about 9 significant digits.
 */
export function toRational(x: number): [number, number] {
  const max = 0xffffffff;
  if (!(x > 0) || !Number.isFinite(x)) return [0, 1];
  if (x >= max) return [max, 1];
  let [h0, h1, k0, k1] = [0, 1, 1, 0];
  let v = x;
  for (let i = 0; i < 64; i++) {
    const a = Math.floor(v);
    const h2 = a * h1 + h0;
    const k2 = a * k1 + k0;
    if (h2 > max || k2 > max) break;
    [h0, h1, k0, k1] = [h1, h2, k1, k2];
    const frac = v - a;
    if (frac < 1e-12 || Math.abs(h1 / k1 - x) <= x * 1e-15) break;
    v = 1 / frac;
  }
  return [h1, k1];
}
