// The TIFF stack writer: uint8/uint16/uint32/float32 pages, uncompressed or deflate, streamed slice by slice (only one
// slice in memory at a time, whatever the stack size). Layout: a 16-byte header slot, the pixel strips of every page
// in order, then all IFDs at the end, when the page count is known. Because the classic/BigTIFF choice is made only
// then, BigTIFF is used exactly when the file would pass 4 GiB. The first page carries an ImageJ description and
// XResolution/YResolution in pixels per micron, so Fiji shows the pixel size and z spacing.
//
// The file appears atomically: it is written to `<path>.tmp-<pid>-<random>` beside the target, flushed to disk, then
// renamed over the target; on any error the temporary file is removed.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { deflate as deflateCb } from 'node:zlib';
import { promisify } from 'node:util';
import type { Image2D } from '../../ml/types';
import { StackError, fsError } from './errors';
import { Compression, FieldType, Tag, asciiValues, encodeHeader, encodeIfd, ifdByteSize, toRational, type IfdField } from './tiff-format';
import type { PixelSizeNm, PixelType } from './types';

const deflateAsync = promisify(deflateCb);

// Strips of about 1 MiB: large enough that per-strip overhead vanishes, small enough that deflating one (on the
// zlib thread pool) never holds much memory.
const STRIP_TARGET_BYTES = 1 << 20;
const CLASSIC_LIMIT = 2 ** 32;

export interface WriteTiffOptions {
  pixelSizeNm?: PixelSizeNm;
  /** Free text, stored in the first page's ImageDescription after the ImageJ lines (ImageJ ignores lines it does not know). */
  description?: string;
  compression?: 'none' | 'deflate';
  /** Deflate level 1..9 (default 6). */
  deflateLevel?: number;
  /** true forces BigTIFF, false forces classic TIFF; by default BigTIFF only when the file would pass 4 GiB. */
  bigTiff?: boolean;
}

export interface WriteTiffResult {
  path: string;
  depth: number;
  width: number;
  height: number;
  pixelType: PixelType;
  bytes: number;
  bigTiff: boolean;
}

function pixelTypeOf(data: unknown): { type: PixelType; bits: number; sampleFormat: number } | undefined {
  if (data instanceof Uint8Array) return { type: 'uint8', bits: 8, sampleFormat: 1 };
  if (data instanceof Uint16Array) return { type: 'uint16', bits: 16, sampleFormat: 1 };
  if (data instanceof Uint32Array) return { type: 'uint32', bits: 32, sampleFormat: 1 };
  if (data instanceof Float32Array) return { type: 'float32', bits: 32, sampleFormat: 3 };
  return undefined;
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.length - done, 1 << 30), position + done);
    done += bytesWritten;
  }
}

/** The ImageJ description; `images=` only when uncompressed, since ImageJ then reads the pages as one contiguous block. */
function imageJDescription(depth: number, uncompressed: boolean, px: PixelSizeNm | undefined, extra: string | undefined): string {
  const lines = ['ImageJ=1.11a'];
  if (depth > 1) {
    if (uncompressed) lines.push(`images=${depth}`);
    lines.push(`slices=${depth}`);
  }
  if (px) {
    lines.push('unit=micron');
    if (px.z !== undefined) lines.push(`spacing=${px.z / 1000}`);
  }
  lines.push('loop=false');
  let text = `${lines.join('\n')}\n`;
  if (extra) text += `${extra.replace(/\r\n?/g, '\n')}\n`;
  return text;
}

/**
 * Writes `slices` as a multi-page TIFF at `path`. Every slice must have the size and pixel type of the first. Slices are
 * consumed one at a time, so an async generator can produce them on the fly.
 */
export async function writeTiffStack(
  path: string,
  slices: Iterable<Image2D> | AsyncIterable<Image2D>,
  opts: WriteTiffOptions = {},
): Promise<WriteTiffResult> {
  const px = opts.pixelSizeNm;
  if (px && !(px.x > 0 && px.y > 0 && Number.isFinite(px.x * px.y) && (px.z === undefined || (px.z > 0 && Number.isFinite(px.z))))) {
    throw new TypeError(`pixel size must be positive and finite, got ${JSON.stringify(px)}`);
  }
  const deflate = opts.compression === 'deflate';
  const level = opts.deflateLevel ?? 6;
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  let fh: FileHandle | undefined;
  try {
    try {
      fh = await open(tmp, 'wx');
    } catch (e) {
      throw fsError(dirname(path), e);
    }
    let pos = 16; // room for either header, written last
    const pages: { offsets: number[]; counts: number[] }[] = [];
    let first: { width: number; height: number; type: PixelType; bits: number; sampleFormat: number; rowsPerStrip: number } | undefined;

    for await (const slice of slices) {
      const z = pages.length;
      const t = pixelTypeOf(slice.data);
      if (!t) throw new TypeError(`slice ${z}: unsupported pixel array ${Object.prototype.toString.call(slice.data)}`);
      if (!(slice.width > 0 && slice.height > 0) || slice.data.length !== slice.width * slice.height) {
        throw new TypeError(`slice ${z}: ${slice.data.length} pixels for ${slice.width}×${slice.height}`);
      }
      if (!first) {
        const rowBytes = slice.width * (t.bits / 8);
        first = { width: slice.width, height: slice.height, ...t, rowsPerStrip: Math.min(slice.height, Math.max(1, Math.floor(STRIP_TARGET_BYTES / rowBytes))) };
      } else if (slice.width !== first.width || slice.height !== first.height || t.type !== first.type) {
        throw new TypeError(`slice ${z} is ${slice.width}×${slice.height} ${t.type} but slice 0 is ${first.width}×${first.height} ${first.type}`);
      }
      const bytes = new Uint8Array(slice.data.buffer, slice.data.byteOffset, slice.data.byteLength);
      const stripBytes = first.rowsPerStrip * first.width * (first.bits / 8);
      const page = { offsets: [] as number[], counts: [] as number[] };
      for (let s = 0; s < bytes.length; s += stripBytes) {
        const raw = bytes.subarray(s, Math.min(bytes.length, s + stripBytes));
        const out = deflate ? new Uint8Array(await deflateAsync(raw, { level })) : raw;
        await writeAll(fh, out, pos);
        page.offsets.push(pos);
        page.counts.push(out.length);
        pos += out.length;
      }
      pages.push(page);
    }
    if (!first) throw new StackError(path, 'no slices to write');

    const description = imageJDescription(pages.length, !deflate, opts.pixelSizeNm, opts.description);
    const fieldsFor = (z: number, big: boolean): IfdField[] => {
      const f = first!;
      const offType = big ? FieldType.LONG8 : FieldType.LONG;
      const fields: IfdField[] = [
        { tag: Tag.NewSubfileType, type: FieldType.LONG, values: [0] },
        { tag: Tag.ImageWidth, type: FieldType.LONG, values: [f.width] },
        { tag: Tag.ImageLength, type: FieldType.LONG, values: [f.height] },
        { tag: Tag.BitsPerSample, type: FieldType.SHORT, values: [f.bits] },
        { tag: Tag.Compression, type: FieldType.SHORT, values: [deflate ? Compression.AdobeDeflate : Compression.None] },
        { tag: Tag.Photometric, type: FieldType.SHORT, values: [1] },
        { tag: Tag.StripOffsets, type: offType, values: pages[z].offsets },
        { tag: Tag.SamplesPerPixel, type: FieldType.SHORT, values: [1] },
        { tag: Tag.RowsPerStrip, type: FieldType.LONG, values: [f.rowsPerStrip] },
        { tag: Tag.StripByteCounts, type: offType, values: pages[z].counts },
        { tag: Tag.PlanarConfiguration, type: FieldType.SHORT, values: [1] },
        { tag: Tag.SampleFormat, type: FieldType.SHORT, values: [f.sampleFormat] },
      ];
      if (z === 0) {
        fields.push({ tag: Tag.ImageDescription, type: FieldType.ASCII, values: asciiValues(description) });
        fields.push({ tag: Tag.Software, type: FieldType.ASCII, values: asciiValues('EMSeg') });
      }
      if (px) {
        // ImageJ's convention: ResolutionUnit none, resolution in pixels per `unit` of the description (micron).
        fields.push({ tag: Tag.XResolution, type: FieldType.RATIONAL, values: toRational(1000 / px.x) });
        fields.push({ tag: Tag.YResolution, type: FieldType.RATIONAL, values: toRational(1000 / px.y) });
        fields.push({ tag: Tag.ResolutionUnit, type: FieldType.SHORT, values: [1] });
      }
      return fields;
    };

    const ifdStart = pos + (pos & 1);
    const layout = (big: boolean): number[] => {
      const at: number[] = [];
      let p = ifdStart;
      for (let z = 0; z < pages.length; z++) {
        at.push(p);
        const size = ifdByteSize(fieldsFor(z, big), big);
        p += size + (size & 1);
      }
      at.push(p);
      return at;
    };
    let big = opts.bigTiff ?? false;
    let at = layout(big);
    if (!big && at[pages.length] > CLASSIC_LIMIT) {
      if (opts.bigTiff === false) throw new StackError(path, 'stack is over 4 GiB, too large for classic TIFF (allow BigTIFF)');
      big = true;
      at = layout(true);
    }
    // IFDs go out in batches so that a 100 000-page stack does not build one huge buffer.
    let batch: Uint8Array[] = [];
    let batchAt = ifdStart;
    let batchBytes = 0;
    for (let z = 0; z < pages.length; z++) {
      const ifd = encodeIfd(fieldsFor(z, big), at[z], z + 1 < pages.length ? at[z + 1] : 0, big, true);
      batch.push(ifd);
      batchBytes += at[z + 1] - at[z];
      if (batchBytes >= 1 << 20 || z === pages.length - 1) {
        const buf = new Uint8Array(batchBytes);
        let o = 0;
        for (let i = 0; i < batch.length; i++) {
          buf.set(batch[i], o);
          o += batch[i].length + (batch[i].length & 1);
        }
        await writeAll(fh, buf, batchAt);
        batchAt += batchBytes;
        batch = [];
        batchBytes = 0;
      }
    }
    await writeAll(fh, encodeHeader(at[0], big, true), 0);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
    await syncDir(dirname(path));
    return { path, depth: pages.length, width: first.width, height: first.height, pixelType: first.type, bytes: at[pages.length], bigTiff: big };
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw fsError(path, e);
  }
}

/** Makes the rename durable on POSIX; folders cannot be opened for fsync on Windows, where this is skipped. */
async function syncDir(dir: string): Promise<void> {
  let d: FileHandle | undefined;
  try {
    d = await open(dir, 'r');
    await d.sync();
  } catch {
    // best effort
  } finally {
    await d?.close().catch(() => undefined);
  }
}
