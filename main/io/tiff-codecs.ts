// Decoders for the TIFF compressions and predictors EMSeg reads: LZW (TIFF 6.0 flavour: MSB-first codes, 9 to 12 bits,
// "early change"), PackBits, deflate (zlib, on the libuv thread pool so a large slice does not block the event loop),
// and the horizontal (2) and floating-point (3) predictors. Decoders write at most the expected length and return what
// they produced; the caller decides whether a short result is an error.
import { inflate as inflateCb } from 'node:zlib';
import { promisify } from 'node:util';

const inflateAsync = promisify(inflateCb);

const LZW_CLEAR = 256;
const LZW_EOI = 257;
const LZW_FIRST = 258;
const LZW_MAX_BITS = 12;

/** Decodes a TIFF LZW stream into at most `outLength` bytes. Throws on an invalid code. */
export function lzwDecode(src: Uint8Array, outLength: number): Uint8Array {
  // Pre-TIFF-6 "old-style" LZW (LSB-first codes, as libtiff detects it) is not worth supporting in 2025.
  if (src.length >= 2 && src[0] === 0 && (src[1] & 1) === 1) throw new Error('old-style (pre-TIFF 6.0) LZW is not supported');
  const out = new Uint8Array(outLength);
  // The string table as a tree: each code is its prefix code plus one byte; `first` and `length` avoid walking it twice.
  const prefix = new Uint16Array(4096);
  const suffix = new Uint8Array(4096);
  const first = new Uint8Array(4096);
  const length = new Uint16Array(4096);
  for (let i = 0; i < 256; i++) {
    suffix[i] = i;
    first[i] = i;
    length[i] = 1;
  }
  let pos = 0;
  let srcPos = 0;
  let bitBuf = 0;
  let bitCount = 0;
  let codeLen = 9;
  let next = LZW_FIRST;
  let old = -1;

  const emit = (code: number): void => {
    const n = length[code];
    let k = code;
    for (let p = pos + n - 1; p >= pos; p--) {
      if (p < outLength) out[p] = suffix[k];
      k = prefix[k];
    }
    pos += n;
  };
  const add = (p: number, c: number): void => {
    if (next >= 4096) return; // a well-formed stream sends Clear before this
    prefix[next] = p;
    suffix[next] = c;
    first[next] = first[p];
    length[next] = length[p] + 1;
    next++;
  };

  while (pos < outLength) {
    while (bitCount < codeLen && srcPos < src.length) {
      bitBuf = ((bitBuf << 8) | src[srcPos++]) >>> 0;
      bitCount += 8;
    }
    if (bitCount < codeLen) break; // out of data without EOI: tolerated, the caller checks the length
    const code = (bitBuf >>> (bitCount - codeLen)) & ((1 << codeLen) - 1);
    bitCount -= codeLen;
    bitBuf &= (1 << bitCount) - 1;

    if (code === LZW_EOI) break;
    if (code === LZW_CLEAR) {
      codeLen = 9;
      next = LZW_FIRST;
      old = -1;
      continue;
    }
    if (old === -1) {
      if (code > 255) throw new Error(`invalid LZW code ${code} after a clear code`);
      emit(code);
      old = code;
      continue;
    }
    if (code < next) {
      emit(code);
      add(old, first[code]);
    } else if (code === next) {
      add(old, first[old]);
      emit(code);
    } else {
      throw new Error(`invalid LZW code ${code} (table has ${next} entries)`);
    }
    old = code;
    // TIFF's "early change": the code width grows one entry before the table fills the current width.
    if (next >= (1 << codeLen) - 1 && codeLen < LZW_MAX_BITS) codeLen++;
  }
  return pos >= outLength ? out : out.subarray(0, pos);
}

/** Decodes PackBits (Apple's byte-oriented run-length code) into at most `outLength` bytes. */
export function packbitsDecode(src: Uint8Array, outLength: number): Uint8Array {
  const out = new Uint8Array(outLength);
  let i = 0;
  let pos = 0;
  while (i < src.length && pos < outLength) {
    const n = src[i++];
    if (n < 128) {
      const count = Math.min(n + 1, outLength - pos, src.length - i);
      out.set(src.subarray(i, i + count), pos);
      i += n + 1;
      pos += count;
    } else if (n > 128) {
      if (i >= src.length) break;
      const count = Math.min(257 - n, outLength - pos);
      out.fill(src[i++], pos, pos + count);
      pos += count;
    }
    // n === 128 is a no-op by definition.
  }
  return pos >= outLength ? out : out.subarray(0, pos);
}

/** Inflates a zlib (deflate) stream; the result may be longer than expected, the caller trims it. */
export async function inflate(src: Uint8Array): Promise<Uint8Array> {
  const b = await inflateAsync(src);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Reverses byte order of every `size`-byte sample in place (big-endian file to little-endian host). */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 2) {
    for (let i = 0; i + 1 < bytes.length; i += 2) {
      const t = bytes[i];
      bytes[i] = bytes[i + 1];
      bytes[i + 1] = t;
    }
  } else if (size === 4) {
    for (let i = 0; i + 3 < bytes.length; i += 4) {
      let t = bytes[i];
      bytes[i] = bytes[i + 3];
      bytes[i + 3] = t;
      t = bytes[i + 1];
      bytes[i + 1] = bytes[i + 2];
      bytes[i + 2] = t;
    }
  } else if (size !== 1) {
    throw new Error(`cannot swap ${size}-byte samples`);
  }
}

/** Undoes predictor 2 (horizontal differencing) in place; unsigned typed arrays wrap around as the encoder did. */
export function undoHorizontalPredictor(
  samples: Uint8Array | Uint16Array | Uint32Array,
  width: number,
  rows: number,
  samplesPerPixel: number,
): void {
  const rowLen = width * samplesPerPixel;
  for (let r = 0; r < rows; r++) {
    const base = r * rowLen;
    for (let i = base + samplesPerPixel, end = base + rowLen; i < end; i++) samples[i] += samples[i - samplesPerPixel];
  }
}

/**
 * Undoes predictor 3 (floating point, Adobe Photoshop TIFF technical note 3): each row was split into byte planes,
 * most significant byte first whatever the file's byte order, then byte-differenced. Returns host (little-endian) order.
 */
export function undoFloatPredictor(
  bytes: Uint8Array,
  width: number,
  rows: number,
  samplesPerPixel: number,
  bytesPerSample: number,
): Uint8Array {
  const wc = width * samplesPerPixel;
  const rowBytes = wc * bytesPerSample;
  const out = new Uint8Array(rowBytes * rows);
  for (let r = 0; r < rows; r++) {
    const row = bytes.subarray(r * rowBytes, (r + 1) * rowBytes);
    for (let i = samplesPerPixel; i < rowBytes; i++) row[i] = (row[i] + row[i - samplesPerPixel]) & 0xff;
    const o = r * rowBytes;
    for (let k = 0; k < wc; k++) {
      for (let b = 0; b < bytesPerSample; b++) out[o + k * bytesPerSample + b] = row[(bytesPerSample - 1 - b) * wc + k];
    }
  }
  return out;
}
