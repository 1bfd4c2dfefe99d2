// UI benchmark: slice-switch latency and frame times while panning and zooming an 8192×8192 slice, measured in
// Debian's Chromium (Playwright) against browser mode (`emseg serve`, a separate process as for a user).
// Targets: 60 frames per second while panning, slice switch under 50 ms.
//
// A synthetic 8192×8192×3 uint8 TIFF stack (EM-like texture: blobs, membranes, noise) is written to a temporary
// folder and opened through the app's own folder browser. Frame times are the intervals between
// requestAnimationFrame callbacks in the page while Playwright drives real mouse input at ~60 events per second.
// Slice-switch latency is the scene's own measure: key press to the first frame with every visible tile of the new
// slice drawn; "prefetched" switches go to a neighbour slice after the viewer settled (the normal case when stepping
// through a stack), "cold" ones jump to a slice never loaded.
//
//   npx tsx main/bench/ui.ts        prints one JSON object
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Page } from '@playwright/test';
import { writeTiffStack } from '../io';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SIZE = 8192;
const DEPTH = 3;

function syntheticSlice(z: number): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(SIZE * SIZE);
  let seed = 12345 + z * 977;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      // Cells of ~90 px with dark membranes between them, a slow drift across slices, and noise.
      const u = Math.sin((x + z * 11) / 29) + Math.sin((y - z * 7) / 23) + Math.sin((x + y) / 41);
      const membrane = Math.abs(u) < 0.18 ? -90 : 0;
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[y * SIZE + x] = Math.max(0, Math.min(255, 150 + membrane + ((seed >>> 24) % 40) - 20));
    }
  }
  return { width: SIZE, height: SIZE, data };
}

function startServer(root: string, scratch: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'main', 'cli', 'emseg.mjs'), 'serve', '--port', '0', '--root', root], {
    cwd: ROOT,
    env: { ...process.env, EMSEG_CONFIG_DIR: join(scratch, 'config'), EMSEG_CACHE_DIR: join(scratch, 'cache') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('http://'));
      if (line) resolve({ child, url: line.trim() });
    });
    child.on('exit', (code) => reject(new Error(`emseg serve exited with ${code}`)));
  });
}

interface Stats {
  complete: boolean;
  pending: number;
  z: number;
  level: number;
  sliceSwitchMs: number[];
}

const stats = (page: Page) => page.evaluate(() => (globalThis as unknown as { emsegDebug: { stats(): Stats } }).emsegDebug.stats());

async function settled(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const s = (globalThis as unknown as { emsegDebug?: { stats(): Stats } }).emsegDebug?.stats();
      return s !== undefined && s.complete && s.pending === 0;
    },
    undefined,
    { timeout: 120_000 },
  );
}

async function recordFrames(page: Page, drive: () => Promise<void>): Promise<number[]> {
  // A string, not a function: tsx names inner functions with a helper the page does not have.
  await page.evaluate(`(() => {
    const run = (globalThis.__frameRun ?? 0) + 1; // a stopped recorder's last callback must not join this run
    globalThis.__frameRun = run;
    globalThis.__frames = [];
    globalThis.__recording = true;
    const tick = (t) => {
      if (globalThis.__frameRun !== run) return;
      globalThis.__frames.push(t);
      if (globalThis.__recording) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  })()`);
  await drive();
  const t = await page.evaluate(() => {
    const g = globalThis as unknown as { __frames: number[]; __recording: boolean };
    g.__recording = false;
    return g.__frames;
  });
  return t.slice(1).map((v, i) => v - t[i]);
}

function summary(prefix: string, frameMs: number[]): Record<string, number> {
  const sorted = [...frameMs].sort((a, b) => a - b);
  const mean = frameMs.reduce((a, b) => a + b, 0) / frameMs.length;
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    [`${prefix}Fps`]: round(1000 / mean),
    [`${prefix}FrameMeanMs`]: round(mean),
    [`${prefix}FrameP95Ms`]: round(q(0.95)),
    [`${prefix}FrameMaxMs`]: round(sorted[sorted.length - 1]),
    // Frames that took more than two vsync intervals: what a user perceives as a stutter.
    [`${prefix}FramesOver33Ms`]: frameMs.filter((v) => v > 33.4).length,
    [`${prefix}Frames`]: frameMs.length,
  };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

export async function benchUi(): Promise<Record<string, number | string>> {
  const scratch = await mkdtemp(join(tmpdir(), 'emseg-bench-ui-'));
  const dataDir = join(scratch, 'data');
  let server: ChildProcess | null = null;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    await mkdir(dataDir, { recursive: true });
    const slices = Array.from({ length: DEPTH }, (_, z) => syntheticSlice(z));
    await writeTiffStack(join(dataDir, 'synthetic-8192.tif'), slices);
    slices.length = 0;
    const s = await startServer(dataDir, scratch);
    server = s.child;
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(s.url);
    // Open the stack the way a user of browser mode does: the server-side folder browser.
    await page.getByTestId('open-file').click();
    await page.getByLabel('Folder', { exact: true }).fill(dataDir);
    await page.getByLabel('Folder', { exact: true }).press('Enter');
    const t0 = Date.now();
    await page.getByRole('button', { name: /synthetic-8192\.tif/ }).click();
    await page.getByTestId('stack-title').waitFor();
    await settled(page);
    const openMs = Date.now() - t0;
    const viewer = page.getByTestId('viewer');
    const box = (await viewer.boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await page.mouse.move(cx, cy);

    // Slice switches at "fit" (the whole 8192² slice on screen, pyramid level 3).
    const switches = async (keys: string[]) => {
      const out: number[] = [];
      for (const key of keys) {
        const n = (await stats(page)).sliceSwitchMs.length;
        await page.keyboard.press(key);
        await page.waitForFunction((k) => (globalThis as unknown as { emsegDebug: { stats(): Stats } }).emsegDebug.stats().sliceSwitchMs.length > k, n);
        out.push((await stats(page)).sliceSwitchMs[n]);
        await settled(page);
      }
      return out;
    };
    const cold = await switches(['End']); // slice 2 was never loaded (only its neighbour 1 was prefetched)
    const level = (await stats(page)).level;
    const warm = await switches(['Home', 'ArrowRight', 'ArrowRight', 'ArrowLeft', 'ArrowLeft', 'ArrowRight', 'ArrowRight', 'ArrowLeft', 'ArrowLeft', 'ArrowRight']);

    // Panning at fit, then at 1:1 (level 0: new tiles stream in while panning), ~60 mouse events per second.
    const pan = async (dx: number, dy: number, steps: number) => {
      await page.mouse.move(cx, cy);
      await page.mouse.down();
      for (let i = 1; i <= steps; i++) {
        await page.mouse.move(cx + (dx * i) / steps, cy + (dy * i) / steps);
        await page.waitForTimeout(16);
      }
      await page.mouse.up();
    };
    const panFit = await recordFrames(page, async () => {
      await pan(300, 150, 60);
      await pan(-300, -150, 60);
    });
    await page.getByTestId('one-to-one').click();
    await settled(page);
    const panFull = await recordFrames(page, async () => {
      for (let k = 0; k < 3; k++) {
        await pan(-400, -250, 60);
        await pan(-400, 250, 60);
      }
    });
    await settled(page);
    const zoom = await recordFrames(page, async () => {
      await page.mouse.move(cx + 100, cy + 50);
      for (let i = 0; i < 90; i++) {
        await page.mouse.wheel(0, i < 45 ? 60 : -60);
        await page.waitForTimeout(16);
      }
    });

    return {
      benchmark: 'ui',
      browser: `Chromium ${browser.version()} (headless, software rendering)`,
      sliceSizePx: SIZE,
      viewport: '1280x800',
      openStackMs: openMs,
      fitLevel: level,
      sliceSwitchColdMs: Math.round(cold[0] * 10) / 10,
      sliceSwitchPrefetchedMedianMs: Math.round(median(warm) * 10) / 10,
      sliceSwitchPrefetchedMaxMs: Math.round(Math.max(...warm) * 10) / 10,
      ...summary('panFit', panFit),
      ...summary('pan1to1', panFull),
      ...summary('zoom', zoom),
      targetFps: 60,
      targetSliceSwitchMs: 50,
    };
  } finally {
    await browser.close();
    if (server) {
      const child = server;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await rm(scratch, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${JSON.stringify(await benchUi(), null, 2)}\n`);
}
