// A lazy TIFF reader, written here rather than taken from a library so that it reads only what it needs from stacks of
// tens of GB: opening walks the IFD chain (small reads through a 64 KiB window) and reads only the scalar tags, the
// first page's description and resolution, and the strip tables of the first and last pages (to report a truncated
// file at once). Pixels are read per page on demand.
//
// Reads: classic TIFF and BigTIFF, either byte order; strips or tiles; no compression, LZW, deflate (8 and 32946) and
// PackBits; predictors 2 and 3; 8/16/32-bit unsigned and 32-bit float grey; 8/16-bit signed grey as float32 (values
// kept exactly, with a notice); 8-bit RGB/RGBA as grey (Rec. 601 luma, with a notice); ImageJ stacks over 4 GiB whose
// pages beyond the first lie contiguously after it without IFDs of their own. Pages flagged as reduced-resolution
// (thumbnails, pyramid levels) are skipped.
import type { Image2D, PixelArray } from '../../ml/types';
import { StackError } from './errors';
import { RandomAccessFile } from './file';
import { inflate, lzwDecode, packbitsDecode, swapBytes, undoFloatPredictor, undoHorizontalPredictor } from './tiff-codecs';
import { parseImageJDescription, parseOmeDescription, pixelSizeFromTiff } from './tiff-meta';
import { COMPRESSION_NAMES, Compression, FIELD_TYPE_SIZE, FieldType, Tag } from './tiff-format';
import { BYTES_PER_PIXEL, DEFAULT_MAX_SLICE_BYTES, formatBytes, type NoticeFn, type PixelSizeNm, type PixelType } from './types';

// IFDs of one file usually sit together (ImageJ puts them first, our writer last), so reading 64 KiB around the first
// one serves the next few hundred without another system call.
const WINDOW_BYTES = 64 * 1024;
// Chunks (strips or tiles) decoded at once per page: enough to keep the zlib thread pool busy, little memory.
const CHUNK_CONCURRENCY = 4;
// A chain longer than this is corrupt rather than a real stack (10^6 pages of even 1 KiB would be 1 GB of IFDs).
const MAX_IFDS = 1_000_000;

export interface TiffOpenOptions {
  maxSliceBytes?: number;
  onNotice?: NoticeFn;
}

interface Entry {
  tag: number;
  type: number;
  count: number;
  /** The value bytes when they fit in the entry itself. */
  inline?: Uint8Array;
  /** File offset of the value bytes otherwise. */
  offset: number;
}

interface Ifd {
  offset: number;
  entries: Map<number, Entry>;
}

/** Where a page's strips or tiles are and how many bytes each holds. */
interface ChunkTable {
  offsets: number[];
  byteCounts: number[];
}

/** How the samples of one pixel become one grey value. */
type Convert = 'none' | 'luma' | 'first';

interface Page {
  /** Index in the IFD chain, for messages. */
  ifdIndex: number;
  /** Only the strip/tile offset and byte-count entries are kept, so 100 000 pages cost little memory. */
  ifd?: Ifd;
  width: number;
  height: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  sampleFormat: number;
  compression: number;
  predictor: number;
  pixelType: PixelType;
  convert: Convert;
  tiled: boolean;
  chunkWidth: number;
  chunkHeight: number;
  chunksAcross: number;
  chunksDown: number;
  /** ImageJ pages past the IFD chain: the uncompressed pixels start here. */
  contiguousAt?: number;
}

function describeSamples(bits: number, sampleFormat: number): string {
  switch (sampleFormat) {
    case 1:
      return `${bits}-bit unsigned integer`;
    case 2:
      return `${bits}-bit signed integer`;
    case 3:
      return `${bits}-bit float`;
    case 5:
      return `${bits}-bit complex integer`;
    case 6:
      return `${bits}-bit complex float`;
    default:
      return `${bits}-bit samples of undefined format`;
  }
}

const PHOTOMETRIC_NAMES: Record<number, string> = {
  3: 'palette-colour (indexed) images',
  4: 'transparency masks',
  5: 'CMYK images',
  6: 'YCbCr images',
  8: 'CIE L*a*b* images',
  9: 'ICC L*a*b* images',
  10: 'ITU L*a*b* images',
  32844: 'LogL images',
  32845: 'LogLuv images',
  34892: 'camera raw (LinearRaw) images',
};

function decodeAscii(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  const b = nul >= 0 ? bytes.subarray(0, nul) : bytes;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return new TextDecoder('latin1').decode(b);
  }
}

function allocate(type: PixelType, n: number): PixelArray {
  switch (type) {
    case 'uint8':
      return new Uint8Array(n);
    case 'uint16':
      return new Uint16Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'float32':
      return new Float32Array(n);
  }
}

function bytesOf(a: PixelArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

async function forEachLimit(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

export class TiffFile {
  readonly path: string;
  readonly littleEndian: boolean;
  readonly bigTiff: boolean;
  width = 0;
  height = 0;
  pixelType: PixelType = 'uint8';
  pixelSizeNm?: PixelSizeNm;
  /** The first page's ImageDescription, if any. */
  description?: string;

  private readonly file: RandomAccessFile;
  private readonly maxSliceBytes: number;
  private readonly notice: NoticeFn;
  private pages: Page[] = [];
  private window?: { start: number; bytes: Uint8Array };
  private closed = false;

  private constructor(file: RandomAccessFile, littleEndian: boolean, bigTiff: boolean, opts: TiffOpenOptions) {
    this.path = file.path;
    this.file = file;
    this.littleEndian = littleEndian;
    this.bigTiff = bigTiff;
    this.maxSliceBytes = opts.maxSliceBytes ?? DEFAULT_MAX_SLICE_BYTES;
    this.notice = opts.onNotice ?? (() => {});
  }

  /** Opens a TIFF: reads the header and the IFD chain, not the pixels. Throws StackError for bad files. */
  static async open(path: string, opts: TiffOpenOptions = {}): Promise<TiffFile> {
    const file = await RandomAccessFile.open(path);
    try {
      if (file.size < 8) throw new StackError(path, `not a TIFF file: only ${file.size} bytes long`);
      const head = await file.read(0, Math.min(16, file.size), 'TIFF header');
      const magic = String.fromCharCode(head[0], head[1]);
      if (magic !== 'II' && magic !== 'MM') {
        const hex = Array.from(head.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
        throw new StackError(path, `not a TIFF file: bad magic bytes ${hex} (expected 49 49 or 4d 4d)`);
      }
      const le = magic === 'II';
      const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
      const version = dv.getUint16(2, le);
      if (version !== 42 && version !== 43) throw new StackError(path, `not a TIFF file: bad version number ${version} (expected 42 or 43)`);
      const big = version === 43;
      if (big && (head.length < 16 || dv.getUint16(4, le) !== 8)) throw new StackError(path, 'corrupt BigTIFF header');
      const tiff = new TiffFile(file, le, big, opts);
      const first = big ? tiff.u64(dv, 8) : dv.getUint32(4, le);
      await tiff.init(first);
      return tiff;
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  get depth(): number {
    return this.pages.length;
  }

  /** Bytes read from the file so far. */
  get bytesRead(): number {
    return this.file.bytesRead;
  }

  /** Decodes page `z` (0-based, counting only full-resolution pages). */
  async readPage(z: number): Promise<Image2D> {
    if (this.closed) throw new Error(`${this.path}: TIFF file is closed`);
    if (!Number.isInteger(z) || z < 0 || z >= this.pages.length) throw new RangeError(`page ${z} out of range 0..${this.pages.length - 1}`);
    const p = this.pages[z];
    const out = allocate(p.pixelType, p.width * p.height);
    const outBytes = bytesOf(out);
    if (p.contiguousAt !== undefined) {
      await this.file.readInto(outBytes, 0, outBytes.length, p.contiguousAt, `page ${z}`);
      if (!this.littleEndian) swapBytes(outBytes, p.bitsPerSample / 8);
      return { width: p.width, height: p.height, data: out };
    }
    // Re-read per page rather than kept: for stacks of many pages with many strips each, keeping them would add up.
    const table = await this.chunkTable(p, z);
    if (isDirect(p)) await this.readStripsDirect(p, z, table, outBytes);
    else await forEachLimit(p.chunksAcross * p.chunksDown, CHUNK_CONCURRENCY, (j) => this.decodeChunk(p, z, table, j, out));
    return { width: p.width, height: p.height, data: out };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }

  // ---- opening ----

  private corrupt(detail: string): StackError {
    return new StackError(this.path, `corrupt TIFF: ${detail}`);
  }

  private unsupported(detail: string): StackError {
    return new StackError(this.path, `unsupported TIFF: ${detail}`);
  }

  private u64(dv: DataView, at: number): number {
    const lo = dv.getUint32(at + (this.littleEndian ? 0 : 4), this.littleEndian);
    const hi = dv.getUint32(at + (this.littleEndian ? 4 : 0), this.littleEndian);
    if (hi >= 2 ** 21) throw this.corrupt(`64-bit value at byte ${at} is beyond 2^53`);
    return hi * 2 ** 32 + lo;
  }

  /** Bytes at [offset, offset + length), served from the last 64 KiB window when possible. */
  private async bytesAt(offset: number, length: number, what: string): Promise<Uint8Array> {
    const w = this.window;
    if (w && offset >= w.start && offset + length <= w.start + w.bytes.length) {
      return w.bytes.subarray(offset - w.start, offset - w.start + length);
    }
    if (length >= WINDOW_BYTES || offset + length > this.file.size) return this.file.read(offset, length, what);
    const bytes = await this.file.read(offset, Math.min(WINDOW_BYTES, this.file.size - offset), what);
    this.window = { start: offset, bytes };
    return bytes.subarray(0, length);
  }

  private async init(firstIfd: number): Promise<void> {
    // Pages are parsed as the chain is walked, so only the first IFD is kept whole, however long the stack.
    let ifd0: Ifd | undefined;
    let skipped = 0;
    await this.walkIfds(firstIfd, async (ifd, i) => {
      const subfile = (await this.scalar(ifd, Tag.NewSubfileType, `IFD ${i}`)) ?? 0;
      // Bit 0: reduced-resolution copy (thumbnail, pyramid level); bit 2: transparency mask. The first IFD is the
      // stack's first page whatever it says.
      if (ifd0 && (subfile & 0b101) !== 0) {
        skipped++;
        return;
      }
      const p = await this.parsePage(ifd, i);
      const p0 = this.pages[0] ?? p;
      if (p.width !== p0.width || p.height !== p0.height || p.pixelType !== p0.pixelType) {
        throw this.unsupported(
          `page ${this.pages.length} is ${p.width}×${p.height} ${p.pixelType} but page 0 is ${p0.width}×${p0.height} ${p0.pixelType}; all pages of a stack must match`,
        );
      }
      ifd0 ??= ifd;
      this.pages.push(p);
    });
    if (!ifd0) throw this.corrupt('no image directory (IFD)');
    if (skipped > 0) this.notice(`${this.path}: skipped ${skipped} reduced-resolution or mask page(s)`);

    const p0 = this.pages[0];
    this.width = p0.width;
    this.height = p0.height;
    this.pixelType = p0.pixelType;
    const descEntry = ifd0.entries.get(Tag.ImageDescription);
    if (descEntry) this.description = decodeAscii(await this.rawValue(descEntry, 'ImageDescription'));
    this.pixelSizeNm = pixelSizeFromTiff({
      description: this.description,
      xResolution: (await this.values(ifd0, Tag.XResolution, 'XResolution'))?.[0],
      yResolution: (await this.values(ifd0, Tag.YResolution, 'YResolution'))?.[0],
      resolutionUnit: await this.scalar(ifd0, Tag.ResolutionUnit, 'ResolutionUnit'),
    });
    await this.checkChannels();
    await this.addImageJContiguousPages();
    await this.checkChunksInFile(0);
    if (this.pages.length > 1) await this.checkChunksInFile(this.pages.length - 1);
    this.window = undefined;
  }

  /** Walks the IFD chain from `first`, handing each IFD to `visit` in order. */
  private async walkIfds(first: number, visit: (ifd: Ifd, index: number) => Promise<void>): Promise<void> {
    let index = 0;
    const seen = new Set<number>();
    const countSize = this.bigTiff ? 8 : 2;
    const entrySize = this.bigTiff ? 20 : 12;
    const offSize = this.bigTiff ? 8 : 4;
    let offset = first;
    while (offset !== 0) {
      const what = `IFD ${index}`;
      if (seen.has(offset)) throw this.corrupt(`IFD loop: IFD ${index - 1} links back to the IFD at byte ${offset}`);
      if (index >= MAX_IFDS) throw this.corrupt(`more than ${MAX_IFDS} IFDs`);
      if (offset < 8) throw this.corrupt(`${what} at byte ${offset} overlaps the header`);
      seen.add(offset);
      const cb = await this.bytesAt(offset, countSize, what);
      const cdv = new DataView(cb.buffer, cb.byteOffset, cb.byteLength);
      const count = this.bigTiff ? this.u64(cdv, 0) : cdv.getUint16(0, this.littleEndian);
      if (count === 0) throw this.corrupt(`${what} at byte ${offset} has no entries`);
      if (count * entrySize > this.file.size) throw this.corrupt(`${what} at byte ${offset} claims ${count} entries`);
      const b = await this.bytesAt(offset + countSize, count * entrySize + offSize, what);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const entries = new Map<number, Entry>();
      for (let i = 0; i < count; i++) {
        const at = i * entrySize;
        const tag = dv.getUint16(at, this.littleEndian);
        const type = dv.getUint16(at + 2, this.littleEndian);
        const n = this.bigTiff ? this.u64(dv, at + 4) : dv.getUint32(at + 4, this.littleEndian);
        const size = FIELD_TYPE_SIZE[type];
        if (size === undefined) continue; // unknown field types are skipped, as the specification asks
        const valueAt = at + (this.bigTiff ? 12 : 8);
        const inline = n * size <= offSize;
        entries.set(tag, {
          tag,
          type,
          count: n,
          inline: inline ? b.slice(valueAt, valueAt + n * size) : undefined,
          offset: inline ? 0 : this.bigTiff ? this.u64(dv, valueAt) : dv.getUint32(valueAt, this.littleEndian),
        });
      }
      await visit({ offset, entries }, index++);
      offset = this.bigTiff ? this.u64(dv, count * entrySize) : dv.getUint32(count * entrySize, this.littleEndian);
    }
  }

  private async rawValue(e: Entry, what: string): Promise<Uint8Array> {
    return e.inline ?? this.bytesAt(e.offset, e.count * FIELD_TYPE_SIZE[e.type], what);
  }

  /** The numeric values of a field (RATIONALs as quotients), or undefined when the field is absent. */
  private async values(ifd: Ifd, tag: number, what: string): Promise<number[] | undefined> {
    const e = ifd.entries.get(tag);
    if (!e) return undefined;
    const b = await this.rawValue(e, what);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const le = this.littleEndian;
    const out = new Array<number>(e.count);
    for (let i = 0; i < e.count; i++) {
      switch (e.type) {
        case FieldType.BYTE:
        case FieldType.ASCII:
        case FieldType.UNDEFINED:
          out[i] = dv.getUint8(i);
          break;
        case FieldType.SBYTE:
          out[i] = dv.getInt8(i);
          break;
        case FieldType.SHORT:
          out[i] = dv.getUint16(2 * i, le);
          break;
        case FieldType.SSHORT:
          out[i] = dv.getInt16(2 * i, le);
          break;
        case FieldType.LONG:
        case FieldType.IFD:
          out[i] = dv.getUint32(4 * i, le);
          break;
        case FieldType.SLONG:
          out[i] = dv.getInt32(4 * i, le);
          break;
        case FieldType.RATIONAL:
          out[i] = dv.getUint32(8 * i, le) / dv.getUint32(8 * i + 4, le);
          break;
        case FieldType.SRATIONAL:
          out[i] = dv.getInt32(8 * i, le) / dv.getInt32(8 * i + 4, le);
          break;
        case FieldType.FLOAT:
          out[i] = dv.getFloat32(4 * i, le);
          break;
        case FieldType.DOUBLE:
          out[i] = dv.getFloat64(8 * i, le);
          break;
        case FieldType.LONG8:
        case FieldType.IFD8:
          out[i] = this.u64(dv, 8 * i);
          break;
        case FieldType.SLONG8:
          out[i] = Number(dv.getBigInt64(8 * i, le));
          break;
      }
    }
    return out;
  }

  private async scalar(ifd: Ifd, tag: number, what: string): Promise<number | undefined> {
    return (await this.values(ifd, tag, what))?.[0];
  }

  private async parsePage(ifd: Ifd, ifdIndex: number): Promise<Page> {
    const where = `IFD ${ifdIndex}`;
    const get = (tag: number, name: string): Promise<number | undefined> => this.scalar(ifd, tag, `${where} ${name}`);
    const width = await get(Tag.ImageWidth, 'ImageWidth');
    const height = await get(Tag.ImageLength, 'ImageLength');
    if (!width || !height) throw this.corrupt(`${where} has no image size (ImageWidth/ImageLength missing or 0)`);
    const spp = (await get(Tag.SamplesPerPixel, 'SamplesPerPixel')) ?? 1;
    const bitsAll = (await this.values(ifd, Tag.BitsPerSample, `${where} BitsPerSample`)) ?? [1];
    const bits = bitsAll[0];
    if (bitsAll.some((b) => b !== bits)) throw this.unsupported(`samples of different bit depths (${bitsAll.join('/')})`);
    const sampleFormat = (await get(Tag.SampleFormat, 'SampleFormat')) ?? 1;
    const compression = (await get(Tag.Compression, 'Compression')) ?? 1;
    const photometric = (await get(Tag.Photometric, 'Photometric')) ?? (spp >= 3 ? 2 : 1);
    const planar = (await get(Tag.PlanarConfiguration, 'PlanarConfiguration')) ?? 1;
    let predictor = (await get(Tag.Predictor, 'Predictor')) ?? 1;

    const supported: number[] = [Compression.None, Compression.LZW, Compression.AdobeDeflate, Compression.Deflate, Compression.PackBits];
    if (!supported.includes(compression)) {
      throw this.unsupported(`${COMPRESSION_NAMES[compression] ?? `compression scheme ${compression}`} compression (EMSeg reads uncompressed, LZW, deflate and PackBits)`);
    }
    if (planar === 2 && spp > 1) throw this.unsupported('colour planes stored separately (PlanarConfiguration 2)');

    let convert: Convert = 'none';
    if (photometric === 2) {
      if (spp < 3) throw this.corrupt(`RGB image with ${spp} sample(s) per pixel`);
      if (bits !== 8 || sampleFormat !== 1) throw this.unsupported(`RGB with ${describeSamples(bits, sampleFormat)} samples (EMSeg converts 8-bit RGB only)`);
      convert = 'luma';
    } else if (photometric === 0 || photometric === 1) {
      if (spp > 1) convert = 'first';
    } else {
      throw this.unsupported(PHOTOMETRIC_NAMES[photometric] ?? `photometric interpretation ${photometric}`);
    }

    let pixelType: PixelType;
    if (sampleFormat === 1 && bits === 8) pixelType = 'uint8';
    else if (sampleFormat === 1 && bits === 16) pixelType = 'uint16';
    else if (sampleFormat === 1 && bits === 32) pixelType = 'uint32';
    else if (sampleFormat === 3 && bits === 32) pixelType = 'float32';
    // Signed 8/16-bit (some cameras and MRC conversions) fit float32 exactly, which keeps PixelType small.
    else if (sampleFormat === 2 && (bits === 8 || bits === 16)) pixelType = 'float32';
    else {
      throw this.unsupported(
        `pixel type ${describeSamples(bits, sampleFormat)} (EMSeg reads 8, 16 and 32-bit unsigned integers, 32-bit floats, and 8 or 16-bit signed integers as float)`,
      );
    }

    // As in libtiff, predictors belong to the LZW and deflate codecs and are ignored otherwise.
    if (compression !== Compression.LZW && compression !== Compression.AdobeDeflate && compression !== Compression.Deflate) predictor = 1;
    if (predictor === 2 && sampleFormat === 3) throw this.unsupported('horizontal predictor (2) on float samples');
    if (predictor === 3 && sampleFormat !== 3) throw this.corrupt(`floating-point predictor (3) on ${describeSamples(bits, sampleFormat)} samples`);
    if (predictor !== 1 && predictor !== 2 && predictor !== 3) throw this.unsupported(`predictor ${predictor}`);

    const tileWidth = await get(Tag.TileWidth, 'TileWidth');
    const tileHeight = await get(Tag.TileLength, 'TileLength');
    const tiled = tileWidth !== undefined || tileHeight !== undefined;
    let chunkWidth = width;
    let chunkHeight: number;
    if (tiled) {
      if (!tileWidth || !tileHeight) throw this.corrupt(`${where} has a zero or missing tile size`);
      chunkWidth = tileWidth;
      chunkHeight = tileHeight;
    } else {
      chunkHeight = Math.min((await get(Tag.RowsPerStrip, 'RowsPerStrip')) || height, height);
    }

    const sliceBytes = width * height * BYTES_PER_PIXEL[pixelType];
    if (sliceBytes > this.maxSliceBytes) {
      throw new StackError(
        this.path,
        `declared slice size ${width}×${height} ${pixelType} (${formatBytes(sliceBytes)}) is above the limit of ${formatBytes(this.maxSliceBytes)} per slice`,
      );
    }
    const chunkBytes = chunkWidth * chunkHeight * spp * (bits / 8);
    if (chunkBytes > Math.max(this.maxSliceBytes, 1) * spp) {
      throw new StackError(this.path, `declared ${tiled ? 'tile' : 'strip'} size ${chunkWidth}×${chunkHeight} (${formatBytes(chunkBytes)}) is above the slice size limit`);
    }
    if (ifdIndex === 0) {
      if (convert === 'luma') this.notice(`${this.path}: RGB image, converted to grey (Rec. 601 luma)`);
      if (convert === 'first') this.notice(`${this.path}: ${spp - 1} extra channel(s) per pixel ignored`);
      if (sampleFormat === 2) this.notice(`${this.path}: signed ${bits}-bit pixels read as float32 (values kept exactly)`);
      if (photometric === 0) this.notice(`${this.path}: pixels are stored inverted (WhiteIsZero); values are read as stored`);
    }

    const keep = new Map<number, Entry>();
    for (const tag of [Tag.StripOffsets, Tag.StripByteCounts, Tag.TileOffsets, Tag.TileByteCounts]) {
      const e = ifd.entries.get(tag);
      if (e) keep.set(tag, e);
    }
    return {
      ifdIndex,
      ifd: { offset: ifd.offset, entries: keep },
      width,
      height,
      samplesPerPixel: spp,
      bitsPerSample: bits,
      sampleFormat,
      compression,
      predictor,
      pixelType,
      convert,
      tiled,
      chunkWidth,
      chunkHeight,
      chunksAcross: Math.ceil(width / chunkWidth),
      chunksDown: Math.ceil(height / chunkHeight),
    };
  }

  /** EMSeg stacks are one channel; ImageJ and OME files can interleave several in the page sequence. */
  private async checkChannels(): Promise<void> {
    const ij = parseImageJDescription(this.description);
    const channels = Number(ij?.get('channels') ?? parseOmeDescription(this.description)?.sizeC ?? 1);
    if (channels > 1) {
      throw this.unsupported(`${channels} channels interleaved in the page sequence; EMSeg reads single-channel stacks (split the channels first, e.g. in Fiji: Image > Color > Split Channels)`);
    }
  }

  /**
   * ImageJ writes stacks over 4 GiB as a classic TIFF with only the first IFD and `images=N` in its description; the
   * other pages follow the first one's pixels contiguously. Such pages get no IFD, only an offset.
   */
  private async addImageJContiguousPages(): Promise<void> {
    const n = Number(parseImageJDescription(this.description)?.get('images'));
    const p0 = this.pages[0];
    if (!(n > this.pages.length) || !Number.isInteger(n)) return;
    if (!isDirect(p0)) return;
    const { offsets, byteCounts } = await this.chunkTable(p0, 0);
    const sliceBytes = p0.width * p0.height * (p0.bitsPerSample / 8);
    for (let i = 1; i < offsets.length; i++) if (offsets[i] !== offsets[i - 1] + byteCounts[i - 1]) return;
    const start = offsets[0];
    if (start + n * sliceBytes > this.file.size) {
      throw new StackError(
        this.path,
        `file is truncated: the ImageJ description declares ${n} images of ${formatBytes(sliceBytes)} from byte ${start}, which needs ${start + n * sliceBytes} bytes, but the file has ${this.file.size}`,
      );
    }
    for (let z = this.pages.length; z < n; z++) {
      this.pages.push({ ...p0, ifd: undefined, contiguousAt: start + z * sliceBytes });
    }
  }

  /** Reads the strip or tile offsets and byte counts of a page. */
  private async chunkTable(p: Page, z: number): Promise<ChunkTable> {
    if (!p.ifd) throw new Error(`page ${z} has no IFD`);
    const kind = p.tiled ? 'Tile' : 'Strip';
    const where = `page ${z} (IFD ${p.ifdIndex})`;
    const offsets = await this.values(p.ifd, p.tiled ? Tag.TileOffsets : Tag.StripOffsets, `${where} ${kind}Offsets`);
    let counts = await this.values(p.ifd, p.tiled ? Tag.TileByteCounts : Tag.StripByteCounts, `${where} ${kind}ByteCounts`);
    const n = p.chunksAcross * p.chunksDown;
    if (!offsets) throw this.corrupt(`${where} has no ${kind}Offsets`);
    if (offsets.length < n) throw this.corrupt(`${where} has ${offsets.length} ${kind.toLowerCase()} offsets, expected ${n}`);
    if (!counts) {
      // Some old writers omit the byte counts of uncompressed images; they follow from the geometry.
      if (p.compression !== Compression.None) throw this.corrupt(`${where} has no ${kind}ByteCounts`);
      counts = Array.from({ length: n }, (_, j) => this.expectedChunkBytes(p, j));
    }
    if (counts.length < n) throw this.corrupt(`${where} has ${counts.length} ${kind.toLowerCase()} byte counts, expected ${n}`);
    return { offsets, byteCounts: counts };
  }

  private async checkChunksInFile(z: number): Promise<void> {
    const p = this.pages[z];
    if (p.contiguousAt !== undefined) return;
    const { offsets, byteCounts: counts } = await this.chunkTable(p, z);
    for (let j = 0; j < p.chunksAcross * p.chunksDown; j++) {
      if (counts[j] > 0 && offsets[j] + counts[j] > this.file.size) {
        throw new StackError(
          this.path,
          `file is truncated: page ${z} ${p.tiled ? 'tile' : 'strip'} ${j} (bytes ${offsets[j]} to ${offsets[j] + counts[j]}) lies beyond the end of the file (${this.file.size} bytes)`,
        );
      }
    }
  }

  // ---- decoding ----

  /** Decoded bytes of chunk j: a full tile (edge tiles are padded), or the rows a strip holds. */
  private expectedChunkBytes(p: Page, j: number): number {
    const rows = p.tiled ? p.chunkHeight : Math.min(p.chunkHeight, p.height - j * p.chunkHeight);
    return rows * p.chunkWidth * p.samplesPerPixel * (p.bitsPerSample / 8);
  }

  /** Uncompressed one-sample strips: read straight into the slice, merging strips that are adjacent in the file. */
  private async readStripsDirect(p: Page, z: number, table: ChunkTable, out: Uint8Array): Promise<void> {
    const { offsets, byteCounts: counts } = table;
    const n = p.chunksDown;
    let j = 0;
    let target = 0;
    while (j < n) {
      let len = this.expectedChunkBytes(p, j);
      if (counts[j] < len) throw this.corrupt(`page ${z} strip ${j} holds ${counts[j]} bytes, expected ${len}`);
      const start = offsets[j];
      let k = j + 1;
      while (k < n && offsets[k] === start + len && counts[k] >= this.expectedChunkBytes(p, k)) len += this.expectedChunkBytes(p, k++);
      await this.file.readInto(out, target, len, start, `page ${z} strip ${j}`);
      target += len;
      j = k;
    }
    if (!this.littleEndian) swapBytes(out, p.bitsPerSample / 8);
  }

  private async decodeChunk(p: Page, z: number, table: ChunkTable, j: number, out: PixelArray): Promise<void> {
    const kind = p.tiled ? 'tile' : 'strip';
    const count = table.byteCounts[j];
    const offset = table.offsets[j];
    if (count === 0) return; // an empty chunk (GDAL's sparse files) reads as zeros
    const expected = this.expectedChunkBytes(p, j);
    const raw = await this.file.read(offset, count, `page ${z} ${kind} ${j}`);
    let bytes: Uint8Array;
    try {
      switch (p.compression) {
        case Compression.LZW:
          bytes = lzwDecode(raw, expected);
          break;
        case Compression.AdobeDeflate:
        case Compression.Deflate:
          bytes = await inflate(raw);
          break;
        case Compression.PackBits:
          bytes = packbitsDecode(raw, expected);
          break;
        default:
          bytes = raw;
      }
    } catch (e) {
      throw new StackError(this.path, `corrupt TIFF: page ${z} ${kind} ${j}: ${(e as Error).message}`, { cause: e });
    }
    if (bytes.length < expected) throw this.corrupt(`page ${z} ${kind} ${j} decodes to ${bytes.length} bytes, expected ${expected}`);
    const rows = expected / (p.chunkWidth * p.samplesPerPixel * (p.bitsPerSample / 8));
    const samples = this.toSamples(p, bytes.subarray(0, expected), rows);
    const x0 = (j % p.chunksAcross) * p.chunkWidth;
    const y0 = Math.floor(j / p.chunksAcross) * p.chunkHeight;
    place(out, p, samples, x0, y0, rows);
  }

  /** Decoded chunk bytes (file byte order, predictor applied) to host-order samples. */
  private toSamples(p: Page, bytes: Uint8Array, rows: number): PixelArray | Int8Array | Int16Array {
    const size = p.bitsPerSample / 8;
    let host: Uint8Array;
    if (p.predictor === 3) {
      host = undoFloatPredictor(bytes, p.chunkWidth, rows, p.samplesPerPixel, size);
    } else {
      host = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
      if (!this.littleEndian) swapBytes(host, size);
    }
    const n = host.length / size;
    const unsigned = size === 1 ? host : size === 2 ? new Uint16Array(host.buffer, host.byteOffset, n) : new Uint32Array(host.buffer, host.byteOffset, n);
    if (p.predictor === 2) undoHorizontalPredictor(unsigned, p.chunkWidth, rows, p.samplesPerPixel);
    if (p.sampleFormat === 2) return size === 1 ? new Int8Array(host.buffer, host.byteOffset, n) : new Int16Array(host.buffer, host.byteOffset, n);
    if (p.sampleFormat === 3) return new Float32Array(host.buffer, host.byteOffset, n);
    return unsigned;
  }
}

/** Uncompressed one-sample strips already in the output type can be read straight into the slice. */
function isDirect(p: Page): boolean {
  return !p.tiled && p.compression === Compression.None && p.convert === 'none' && p.sampleFormat !== 2 && p.bitsPerSample / 8 === BYTES_PER_PIXEL[p.pixelType];
}

/** Copies a decoded chunk into the slice, clipping edge tiles and turning multi-sample pixels into grey. */
function place(out: PixelArray, p: Page, src: PixelArray | Int8Array | Int16Array, x0: number, y0: number, rows: number): void {
  const w = Math.min(p.chunkWidth, p.width - x0);
  const h = Math.min(rows, p.height - y0);
  const spp = p.samplesPerPixel;
  for (let r = 0; r < h; r++) {
    const s = r * p.chunkWidth * spp;
    const o = (y0 + r) * p.width + x0;
    if (p.convert === 'none') {
      // TypedArray.set converts Int16 to Float32 by value, which is what signed input needs.
      out.set(src.subarray(s, s + w), o);
    } else if (p.convert === 'first') {
      for (let x = 0; x < w; x++) out[o + x] = src[s + x * spp];
    } else {
      // Rec. 601 luma in integers, so equal R, G and B give back exactly that value.
      for (let x = 0; x < w; x++) {
        const i = s + x * spp;
        out[o + x] = Math.floor((299 * src[i] + 587 * src[i + 1] + 114 * src[i + 2] + 500) / 1000);
      }
    }
  }
}
