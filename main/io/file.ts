// Random access to one file by (position, length), with a count of the bytes read. The TIFF reader goes through it for
// every byte so that "opening a 10 GB stack reads only its IFDs" is something a test can check, and so that a read past
// the end of a truncated file becomes a StackError naming the file instead of a short buffer.
import { open, type FileHandle } from 'node:fs/promises';
import { StackError, fsError } from './errors';

// fs reads are limited to 2 GiB - 1 per call; larger slices are read in pieces of this size.
const MAX_READ = 1 << 30;

export class RandomAccessFile {
  readonly path: string;
  readonly size: number;
  /** Total bytes read so far (tests and benchmarks look at it). */
  bytesRead = 0;
  private readonly fh: FileHandle;

  private constructor(path: string, fh: FileHandle, size: number) {
    this.path = path;
    this.fh = fh;
    this.size = size;
  }

  static async open(path: string): Promise<RandomAccessFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw fsError(path, e);
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new StackError(path, 'is a folder, expected a file');
      return new RandomAccessFile(path, fh, st.size);
    } catch (e) {
      await fh.close();
      throw fsError(path, e);
    }
  }

  /** Reads exactly `length` bytes at `position` into `target` at `targetOffset`; `what` names the data for errors. */
  async readInto(target: Uint8Array, targetOffset: number, length: number, position: number, what: string): Promise<void> {
    if (!Number.isSafeInteger(position) || position < 0 || position + length > this.size) {
      throw new StackError(
        this.path,
        `file is truncated or corrupt: ${what} (bytes ${position} to ${position + length}) lies beyond the end of the file (${this.size} bytes)`,
      );
    }
    let done = 0;
    while (done < length) {
      const n = Math.min(length - done, MAX_READ);
      const { bytesRead } = await this.fh.read(target, targetOffset + done, n, position + done);
      if (bytesRead === 0) throw new StackError(this.path, `file shrank while reading ${what}`);
      done += bytesRead;
    }
    this.bytesRead += length;
  }

  /** Reads `length` bytes at `position` into a new, aligned buffer. */
  async read(position: number, length: number, what: string): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    await this.readInto(out, 0, length, position, what);
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
