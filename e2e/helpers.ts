// Shared helpers of the end-to-end specs: the server's URL, waiting for the viewer to finish drawing, and reading the
// viewer's pixels from a real screenshot (what the user sees, not the DOM).
import type { Locator, Page } from '@playwright/test';
import sharp from 'sharp';

export function serverUrl(): { url: string; origin: string; token: string } {
  const url = process.env.EMSEG_E2E_URL;
  if (!url) throw new Error('EMSEG_E2E_URL is not set: run the specs through e2e/playwright.config.ts');
  const u = new URL(url);
  return { url, origin: u.origin, token: u.searchParams.get('token') ?? '' };
}

export interface Pixels {
  width: number;
  height: number;
  /** RGBA. */
  data: Buffer;
}

export async function pixels(target: Locator | Page): Promise<Pixels> {
  const png = await target.screenshot();
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

/** Fraction of pixels for which `pred(r, g, b)` holds. */
export function fraction(p: Pixels, pred: (r: number, g: number, b: number) => boolean): number {
  let n = 0;
  const total = p.width * p.height;
  for (let i = 0; i < total; i++) if (pred(p.data[i * 4], p.data[i * 4 + 1], p.data[i * 4 + 2])) n++;
  return n / total;
}

/** Mean absolute difference per channel between two screenshots of the same size (0..255). */
export function difference(a: Pixels, b: Pixels): number {
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 4) sum += Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]);
  return sum / ((a.data.length / 4) * 3);
}

/** Standard deviation of the grey level: EM texture is far from flat; an empty or failed canvas is. */
export function greyStd(p: Pixels): number {
  let s = 0;
  let s2 = 0;
  const n = p.width * p.height;
  for (let i = 0; i < n; i++) {
    const g = (p.data[i * 4] + p.data[i * 4 + 1] + p.data[i * 4 + 2]) / 3;
    s += g;
    s2 += g * g;
  }
  const m = s / n;
  return Math.sqrt(Math.max(0, s2 / n - m * m));
}

/** Distinct colours (quantised to 5 bits per channel) among saturated pixels: many for random label colours. */
export function saturatedHues(p: Pixels): number {
  const seen = new Set<number>();
  for (let i = 0; i < p.data.length; i += 4) {
    const r = p.data[i];
    const g = p.data[i + 1];
    const b = p.data[i + 2];
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) seen.add(((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3));
  }
  return seen.size;
}

interface SceneStats {
  complete: boolean;
  pending: number;
  z: number;
  level: number;
  frames: number;
  sliceSwitchMs: number[];
}

export function sceneStats(page: Page): Promise<SceneStats> {
  return page.evaluate(() => (globalThis as unknown as { emsegDebug: { stats(): SceneStats } }).emsegDebug.stats());
}

/** Waits until every visible tile is drawn and nothing is being fetched or colorized, then one more frame. */
export async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const s = (globalThis as unknown as { emsegDebug?: { stats(): SceneStats } }).emsegDebug?.stats();
    return s !== undefined && s.complete && s.pending === 0;
  });
  await page.evaluate(() => {
    const raf = (globalThis as unknown as { requestAnimationFrame(cb: () => void): number }).requestAnimationFrame;
    return new Promise<void>((r) => raf(() => raf(r)));
  });
}
