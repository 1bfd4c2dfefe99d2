// Stack read/write speed on the 30-slice ISBI 2012 training stack (512×512 uint8): the folder of PNGs as shipped, and
// the same slices as a multi-page TIFF, uncompressed and deflate. Prints JSON when run directly
// (`npx tsx main/bench/io.ts`). Figures are MB/s of decoded pixels (10^6 bytes), best of a few rounds, since the
// files are small enough to sit in the page cache and the first round mostly measures warm-up.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openStack, writeTiffStack, type Stack } from '../io';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ISBI_TRAIN_IMAGES = join(ROOT, '..', 'shared', 'data', 'isbi2012', 'train', 'image');
const ROUNDS = 3;

async function readAll(path: string): Promise<{ bytes: number; seconds: number }> {
  const t0 = performance.now();
  const stack: Stack = await openStack(path, { cacheBytes: 0 });
  let bytes = 0;
  try {
    for (let z = 0; z < stack.info.depth; z++) bytes += (await stack.readSlice(z)).data.byteLength;
  } finally {
    await stack.close();
  }
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}

async function bestReadMBps(path: string): Promise<number> {
  let best = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const r = await readAll(path);
    best = Math.max(best, r.bytes / 1e6 / r.seconds);
  }
  return best;
}

async function* slicesOf(path: string): AsyncGenerator<Awaited<ReturnType<Stack['readSlice']>>> {
  const stack = await openStack(path, { cacheBytes: 0 });
  try {
    for (let z = 0; z < stack.info.depth; z++) yield await stack.readSlice(z);
  } finally {
    await stack.close();
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;

export async function benchIo(): Promise<Record<string, number | string>> {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-bench-io-'));
  try {
    const out: Record<string, number | string> = { stack: 'isbi2012/train/image (30 × 512×512 uint8)' };
    out['folderPng.readMBps'] = round(await bestReadMBps(ISBI_TRAIN_IMAGES));
    for (const compression of ['none', 'deflate'] as const) {
      const file = join(dir, `stack-${compression}.tif`);
      const t0 = performance.now();
      const written = await writeTiffStack(file, slicesOf(ISBI_TRAIN_IMAGES), { compression, pixelSizeNm: { x: 4, y: 4, z: 50 } });
      const writeSeconds = (performance.now() - t0) / 1000;
      const key = compression === 'none' ? 'tiff' : 'tiffDeflate';
      const pixelMB = (written.width * written.height * written.depth) / 1e6;
      // Writing includes decoding the PNGs it copies from, so it is a lower bound on the writer's own speed.
      out[`${key}.writeFromPngMBps`] = round(pixelMB / writeSeconds);
      out[`${key}.readMBps`] = round(await bestReadMBps(file));
      out[`${key}.fileMB`] = round((await stat(file)).size / 1e6);
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(JSON.stringify(await benchIo(), null, 2));
}
