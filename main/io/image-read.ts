// Single 2D PNG and JPEG images through sharp (libvips). Grey stays grey at its bit depth: 16-bit PNGs are read as
// uint16 (sharp's raw output defaults to 8-bit sRGB, so the colour space and depth are requested explicitly). Colour
// images become grey by Rec. 601 luma, computed here in integers to match the TIFF reader.
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import type { Image2D } from '../../ml/types';
import { StackError, fsError } from './errors';
import type { PixelType } from './types';

export type ImageFormat = 'png' | 'jpeg';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  pixelType: Extract<PixelType, 'uint8' | 'uint16'>;
  /** Channels in the file (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA or CMYK). */
  channels: number;
  colour: boolean;
}

/** Sniffs the first bytes of a file; undefined when it is none of the formats EMSeg reads. */
export function sniffFormat(head: Uint8Array): 'tiff' | ImageFormat | undefined {
  const [a, b, c, d] = head;
  if ((a === 0x49 && b === 0x49 && (c === 42 || c === 43) && d === 0) || (a === 0x4d && b === 0x4d && c === 0 && (d === 42 || d === 43))) return 'tiff';
  if (a === 0x89 && b === 0x50 && c === 0x4e && d === 0x47) return 'png';
  if (a === 0xff && b === 0xd8 && c === 0xff) return 'jpeg';
  return undefined;
}

function decodeError(path: string, format: ImageFormat, e: unknown): unknown {
  const mapped = fsError(path, e);
  if (mapped !== e) return mapped;
  const msg = e instanceof Error ? e.message : String(e);
  if (/missing/i.test(msg)) return new StackError(path, 'no such file or folder', { cause: e });
  return new StackError(path, `corrupt or unreadable ${format.toUpperCase()}: ${msg}`, { cause: e });
}

// failOn 'warning' (libvips' strictest level) so that a truncated PNG or JPEG is an error, not a slice padded with grey.
// limitInputPixels is off because openStack applies its own per-slice limit from the header first.
const SHARP_INPUT = { failOn: 'warning', limitInputPixels: false } as const;

/** Reads the header only (size, depth, channels). */
export async function readImageHeader(path: string, format: ImageFormat): Promise<ImageHeader> {
  let meta: Metadata;
  try {
    meta = await sharp(path, SHARP_INPUT).metadata();
  } catch (e) {
    throw decodeError(path, format, e);
  }
  const { width, height, depth } = meta;
  if (!width || !height) throw new StackError(path, `corrupt ${format.toUpperCase()}: no image size in the header`);
  if (depth !== 'uchar' && depth !== 'ushort') throw new StackError(path, `unsupported pixel depth '${depth}' (EMSeg reads 8 and 16-bit images)`);
  const channels = meta.channels ?? 1;
  // Palette PNGs report 3 channels; grey ones stay 1 (or 2 with alpha).
  const colour = channels >= 3;
  return { format, width, height, pixelType: depth === 'ushort' ? 'uint16' : 'uint8', channels, colour };
}

/** Decodes the image to one grey channel of the header's pixel type. */
export async function readImage(path: string, header: ImageHeader): Promise<Image2D> {
  const ushort = header.pixelType === 'uint16';
  let data: Buffer;
  let info: OutputInfo;
  try {
    const space = header.colour ? (ushort ? 'rgb16' : 'srgb') : ushort ? 'grey16' : 'b-w';
    ({ data, info } = await sharp(path, SHARP_INPUT)
      .toColourspace(space)
      .raw(ushort ? { depth: 'ushort' } : {})
      .toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw decodeError(path, header.format, e);
  }
  const { width, height, channels } = info;
  if (width !== header.width || height !== header.height) {
    throw new StackError(path, `decoded size ${width}×${height} differs from the header's ${header.width}×${header.height} (file changed?)`);
  }
  const n = width * height;
  const src = ushort ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = ushort ? new Uint16Array(n) : new Uint8Array(n);
  if (src.length < n * channels) throw new StackError(path, `decoder returned ${src.length} samples, expected ${n * channels}`);
  if (channels === 1) {
    out.set(src.subarray(0, n));
  } else if (channels === 2) {
    for (let i = 0; i < n; i++) out[i] = src[2 * i];
  } else {
    // Rec. 601 luma in integers, so equal R, G and B give back exactly that value.
    for (let i = 0, s = 0; i < n; i++, s += channels) out[i] = Math.floor((299 * src[s] + 587 * src[s + 1] + 114 * src[s + 2] + 500) / 1000);
  }
  return { width, height, data: out };
}
