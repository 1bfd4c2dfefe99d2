// Writing files so that nothing the user made is ever half-written: write a temporary file beside the target, flush
// it to disk, then rename it over the target (atomic on POSIX file systems).
import { open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array | Uint8Array[]): Promise<void> {
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'w');
  try {
    for (const chunk of Array.isArray(data) ? data : [data]) {
      if (typeof chunk === 'string') await fh.write(chunk);
      else await fh.write(chunk);
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}
