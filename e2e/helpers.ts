// Shared helpers of the end-to-end specs: the server's URL, waiting for the viewer to finish drawing, and reading the
// viewer's pixels from a real screenshot (what the user sees, not the DOM); for the proofreading specs, the sample
// stack opened in a page, projects created and opened from the panel, and real mouse gestures in data coordinates.
import { expect, type Browser, type Locator, type Page } from '@playwright/test';
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

// ---- proofreading: the viewer's transform, real mouse gestures in data coordinates, project layers over the API ----

/** A new page on browser mode with the sample stack (ISBI 2012 slices 20–29, 512×512×10) opened and drawn. */
export async function openSamplePage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  await page.goto(serverUrl().url);
  await page.getByTestId('open-sample').click();
  await expect(page.getByTestId('stack-title')).toContainText('512×512×10');
  await settled(page);
  return page;
}

/** The id of the project the proofreading panel shows, once it shows one. */
async function panelProjectId(page: Page): Promise<string> {
  const panel = page.getByTestId('proofread-panel');
  await expect(panel).toBeVisible();
  return (await panel.getAttribute('data-project-id')) ?? '';
}

/** Creates a project in `folder` from the panel, its labels from the stack's ground truth; returns its id. */
export async function createProject(page: Page, folder: string): Promise<string> {
  await page.getByTestId('project-folder').fill(folder);
  await page.getByTestId('project-labels-from').selectOption('truth');
  await page.getByTestId('project-create').click();
  return panelProjectId(page);
}

/** Opens the project in `folder` from the panel (no project open); returns its id. */
export async function openProject(page: Page, folder: string): Promise<string> {
  await page.getByTestId('project-folder').fill(folder);
  await page.getByTestId('project-open').click();
  return panelProjectId(page);
}

/** Waits until the undo button counts n steps and the viewer has drawn what they left. */
export async function expectUndoDepth(page: Page, n: number): Promise<void> {
  await expect(page.getByTestId('undo')).toHaveText(`Undo (${n})`);
  await settled(page);
}

/** The viewer's transform: page offset and scale from full-resolution data coordinates to the viewer's CSS pixels. */
export async function viewTransform(page: Page): Promise<{ ox: number; oy: number; scale: number }> {
  const t = await page.evaluate(() => {
    const s = (globalThis as unknown as { emsegDebug: { scene: { toData(x: number, y: number): { x: number; y: number } } } }).emsegDebug.scene;
    return [s.toData(0, 0), s.toData(100, 100)];
  });
  const scale = 100 / (t[1].x - t[0].x);
  return { ox: -t[0].x * scale, oy: -t[0].y * scale, scale };
}

export interface PagePoint {
  px: number;
  py: number;
}

/** The page point (whole CSS pixels, as a mouse gets) over data point (x, y). */
export async function toPage(page: Page, x: number, y: number): Promise<PagePoint> {
  const box = (await page.getByTestId('viewer').boundingBox())!;
  const t = await viewTransform(page);
  return { px: Math.round(box.x + t.ox + x * t.scale), py: Math.round(box.y + t.oy + y * t.scale) };
}

/** The data point under a page point: where a gesture at that point really lands. */
export async function toDataPoint(page: Page, p: PagePoint): Promise<{ x: number; y: number }> {
  const box = (await page.getByTestId('viewer').boundingBox())!;
  const t = await viewTransform(page);
  return { x: (p.px - box.x - t.ox) / t.scale, y: (p.py - box.y - t.oy) / t.scale };
}

/** A real drag: press, move in steps, release. */
export async function drag(page: Page, from: PagePoint, to: PagePoint, steps = 12): Promise<void> {
  await page.mouse.move(from.px, from.py);
  await page.mouse.down();
  await page.mouse.move(to.px, to.py, { steps });
  await page.mouse.up();
}

/** A pixel deep inside segment id of a width-wide slice (its 7×7 neighbourhood is all id), nearest its centroid. */
export function interior(l: Uint32Array, width: number, id: number): { x: number; y: number } {
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (let i = 0; i < l.length; i++) {
    if (l[i] !== id) continue;
    sx += i % width;
    sy += Math.floor(i / width);
    n++;
  }
  const cx = sx / n;
  const cy = sy / n;
  const height = l.length / width;
  let best = { x: -1, y: -1, d: Infinity };
  for (let y = 3; y < height - 3; y++) {
    for (let x = 3; x < width - 3; x++) {
      if (l[y * width + x] !== id) continue;
      let ok = true;
      for (let dy = -3; dy <= 3 && ok; dy++) for (let dx = -3; dx <= 3 && ok; dx++) ok = l[(y + dy) * width + x + dx] === id;
      const d = (x - cx) ** 2 + (y - cy) ** 2;
      if (ok && d < best.d) best = { x, y, d };
    }
  }
  if (best.d === Infinity) throw new Error(`segment ${id} has no pixel 3 px inside it`);
  return { x: best.x + 0.5, y: best.y + 0.5 };
}

/** Whether two label slices are identical (Playwright's toEqual walks a 262 144-element array far too slowly). */
export function sameLabels(x: Uint32Array, y: Uint32Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
}

/** One contract call over browser mode's HTTP, as the renderer makes it (POST with JSON; GET for pixels). */
export async function apiCall<T>(name: string, args: unknown, binary = false): Promise<T> {
  const { origin, token } = serverUrl();
  const headers = { Authorization: `Bearer ${token}` };
  const res = binary
    ? await fetch(`${origin}/api/${name}?a=${encodeURIComponent(JSON.stringify(args))}`, { headers })
    : await fetch(`${origin}/api/${name}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(args) });
  if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status} ${await res.text()}`);
  return (binary ? await res.arrayBuffer() : await res.json()) as T;
}

/** Slice z of a project layer, read as the renderer reads tiles (the sample stack is one 512² tile). */
export async function projectSlice(projectId: string, z: number, layer: 'labels' | 'truth' = 'labels'): Promise<Uint32Array> {
  return new Uint32Array(await apiCall<ArrayBuffer>('readProject', { projectId, layer, z, level: 0, tx: 0, ty: 0 }, true));
}
