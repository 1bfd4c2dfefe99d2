// The app as a user drives it, in Chromium against browser mode with the real engine: open the sample stack, move
// through slices, pan and zoom, run predict → refine → segment and look at every layer, cancel a job. Rendering is
// checked on screenshots of the viewer (its pixels), not only in the DOM.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test, type Page } from '@playwright/test';
import { difference, fraction, greyStd, pixels, saturatedHues, sceneStats, serverUrl, settled } from './helpers';

test.describe.configure({ mode: 'serial' });

let page: Page;
const viewer = () => page.getByTestId('viewer');

/** Shows exactly these layers (the others hidden) and waits for the drawing to finish. */
async function onlyLayers(ids: string[]): Promise<void> {
  for (const row of await page.locator('[data-testid^="layer-"][data-testid$="-visible"]').all()) {
    const id = ((await row.getAttribute('data-testid')) ?? '').replace(/^layer-/, '').replace(/-visible$/, '');
    await row.setChecked(ids.includes(id));
  }
  await settled(page);
}

/** Sets a range input the way a drag would (Playwright's fill does not move sliders). */
async function setRange(testId: string, value: number): Promise<void> {
  // React tracks the value property: set it through the prototype's setter, then fire the event React listens to.
  await page.getByTestId(testId).evaluate((el, v) => {
    const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el) as object, 'value')?.set;
    setter?.call(el, v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }, String(value));
}

async function runJob(kind: 'predict' | 'refine' | 'segment'): Promise<string> {
  const before = await page.locator('[data-testid^="job-j"]').count();
  await page.getByTestId(`start-${kind}`).click();
  const job = page.locator('[data-testid^="job-j"]').first();
  await expect(page.locator('[data-testid^="job-j"]')).toHaveCount(before + 1);
  await expect(job).toHaveAttribute('data-state', 'done', { timeout: 150_000 });
  return ((await job.getAttribute('data-testid')) ?? '').replace('job-', '');
}

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  await page.goto(serverUrl().url);
});

test.afterAll(async () => {
  await page.close();
});

test('opens the sample stack and draws its raw slice', async () => {
  await page.getByTestId('open-sample').click();
  await expect(page.getByTestId('stack-title')).toContainText('512×512×10');
  await settled(page);
  const p = await pixels(viewer());
  // EM texture: a wide spread of grey levels, and grey (not coloured) pixels.
  expect(greyStd(p)).toBeGreaterThan(25);
  expect(fraction(p, (r, g, b) => Math.abs(r - g) < 3 && Math.abs(g - b) < 3 && r > 40)).toBeGreaterThan(0.5);
});

test('the status bar reads position and raw value under the cursor', async () => {
  const box = (await viewer().boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await expect(page.getByTestId('status-xy')).toHaveText(/^x \d+, y \d+$/);
  await expect(page.getByTestId('status-raw')).toHaveText(/^raw \d+$/);
});

test('changes slices with arrow keys, PageUp/PageDown, the slider and the slice number', async () => {
  const s0 = await pixels(viewer());
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('slice-number')).toHaveValue('2');
  await settled(page);
  expect((await sceneStats(page)).z).toBe(1);
  const s1 = await pixels(viewer());
  expect(difference(s0, s1)).toBeGreaterThan(10); // another slice really is on screen
  await page.keyboard.press('PageDown');
  await expect(page.getByTestId('slice-number')).toHaveValue('10');
  await page.keyboard.press('PageUp');
  await expect(page.getByTestId('slice-number')).toHaveValue('1');
  await setRange('slice-slider', 4);
  await expect(page.getByTestId('slice-number')).toHaveValue('5');
  await page.getByTestId('slice-number').fill('1');
  await settled(page);
  expect((await sceneStats(page)).z).toBe(0);
  expect(difference(s0, await pixels(viewer()))).toBeLessThan(2); // back to the same picture
});

test('pans by dragging and zooms with the wheel at the cursor, fit and 1:1', async () => {
  await page.getByTestId('fit').click();
  await settled(page);
  const fitted = await pixels(viewer());
  const fitZoom = await page.getByTestId('status-zoom').textContent();
  const box = (await viewer().boundingBox())!;
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx, cy);
  await page.mouse.down();
  await page.mouse.move(cx + 150, cy + 60, { steps: 8 });
  await page.mouse.up();
  await settled(page);
  const panned = await pixels(viewer());
  expect(difference(fitted, panned)).toBeGreaterThan(5);
  // Zoom in at a point: the zoom read-out grows and the data pixel under the cursor stays put.
  await page.mouse.move(cx + 40, cy + 20);
  const before = await page.getByTestId('status-xy').textContent();
  await page.mouse.wheel(0, -400);
  await settled(page);
  expect(await page.getByTestId('status-zoom').textContent()).not.toBe(fitZoom);
  await page.mouse.move(cx + 40, cy + 21);
  await page.mouse.move(cx + 40, cy + 20);
  const after = await page.getByTestId('status-xy').textContent();
  const [bx, by] = (before ?? '').match(/\d+/g)!.map(Number);
  const [ax, ay] = (after ?? '').match(/\d+/g)!.map(Number);
  expect(Math.abs(ax - bx)).toBeLessThanOrEqual(1);
  expect(Math.abs(ay - by)).toBeLessThanOrEqual(1);
  const zoomed = await pixels(viewer());
  expect(difference(panned, zoomed)).toBeGreaterThan(5);
  await page.getByTestId('one-to-one').click();
  await expect(page.getByTestId('status-zoom')).toHaveText(/^zoom 100%/);
  await page.getByTestId('fit').click();
  await expect(page.getByTestId('status-zoom')).toHaveText(fitZoom ?? '');
  await settled(page);
  expect(difference(fitted, await pixels(viewer()))).toBeLessThan(2);
});

test('brightness and auto-levels change the raw rendering', async () => {
  const base = await pixels(viewer());
  await setRange('brightness', 0.4);
  await settled(page);
  const bright = await pixels(viewer());
  const mean = (p: typeof base) => fraction(p, (r) => r > 200);
  expect(mean(bright)).toBeGreaterThan(mean(base) + 0.1);
  await page.getByTestId('auto-levels').click();
  await settled(page);
  expect(difference(bright, await pixels(viewer()))).toBeGreaterThan(5);
});

test('predict: the membrane map layer renders with its colormap', async () => {
  await runJob('predict');
  await expect(page.getByTestId('layer-map')).toBeVisible();
  await onlyLayers(['map']);
  const map = await pixels(viewer());
  // Inferno colours: membranes are orange-yellow (red well above blue), interiors dark purple.
  expect(fraction(map, (r, g, b) => r > 150 && r > b + 60)).toBeGreaterThan(0.05);
  await onlyLayers(['raw', 'map']);
  const box = (await viewer().boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await expect(page.getByTestId('status-map')).toHaveText(/^map \d\.\d{3}$/);
});

test('refine: each refinement round renders, and its difference to the previous round', async () => {
  await page.getByPlaceholder('auto').fill('2');
  await runJob('refine');
  await expect(page.getByTestId('layer-round-1')).toBeVisible();
  await expect(page.getByTestId('layer-round-2')).toBeVisible();
  await onlyLayers(['round-2']);
  const round2 = await pixels(viewer());
  expect(fraction(round2, (r, g, b) => r > 150 && r > b + 60)).toBeGreaterThan(0.05);
  await page.getByTestId('layer-round-1-diff').check();
  await onlyLayers(['round-1']);
  const diff = await pixels(viewer());
  // Red (membrane added) or blue (removed) wherever round 1 changed round 0's map; black elsewhere.
  expect(fraction(diff, (r, g, b) => (r > 60 && r > b + 40) || (b > 60 && b > r + 40))).toBeGreaterThan(0.001);
  expect(difference(round2, diff)).toBeGreaterThan(5);
  await page.getByPlaceholder('auto').fill('');
});

test('segment: labels render in random colours, boundaries only, and hover shows the label id', async () => {
  await runJob('segment');
  // What the engine said shows with the job: the sample's PNG slices do not say their pixel size, and the watershed
  // runs at the thresholds stored with the models.
  const notices = page.locator('[data-testid^="job-j"]').first().getByTestId('job-notice');
  await expect(notices.filter({ hasText: 'pixel size: the stack does not say its own' })).toHaveCount(1);
  await expect(notices.filter({ hasText: 'segmentation: watershed seeds' })).toHaveCount(1);
  await expect(page.getByTestId('layer-labels')).toBeVisible();
  await onlyLayers(['labels']);
  const filled = await pixels(viewer());
  expect(saturatedHues(filled)).toBeGreaterThan(30); // many segments, many colours
  expect(fraction(filled, (r, g, b) => r + g + b > 150)).toBeGreaterThan(0.5);
  await page.getByTestId('layer-labels-boundary').check();
  await settled(page);
  const edges = await pixels(viewer());
  const lit = (p: typeof edges) => fraction(p, (r, g, b) => r + g + b > 150);
  expect(lit(edges)).toBeLessThan(lit(filled) * 0.6);
  expect(lit(edges)).toBeGreaterThan(0.02);
  await page.getByTestId('layer-labels-boundary').uncheck();
  await onlyLayers(['raw', 'labels']);
  const box = (await viewer().boundingBox())!;
  // Find a point inside a segment (label > 0) by moving around the centre.
  for (const [dx, dy] of [[0, 0], [30, 10], [-40, 25], [60, -50], [-70, -30], [15, 80]]) {
    await page.mouse.move(box.x + box.width / 2 + dx, box.y + box.height / 2 + dy);
    if (/label [1-9]/.test((await page.getByTestId('status-label').textContent()) ?? '')) break;
  }
  await expect(page.getByTestId('status-label')).toHaveText(/^label [1-9]\d*$/);
  await expect(page.getByTestId('hover-label')).toHaveText(/^label [1-9]\d*$/);
});

test('ground truth renders when the stack has one', async () => {
  await expect(page.getByTestId('layer-truth')).toBeVisible();
  await onlyLayers(['truth']);
  // The truth tiles are fetched when the layer turns on: wait for them to be drawn rather than read the first frame.
  await expect.poll(async () => saturatedHues(await pixels(viewer())), { timeout: 10_000 }).toBeGreaterThan(20);
  await onlyLayers(['raw', 'map', 'labels']);
});

test('a pixel size typed in the Jobs panel is matched to the model\'s, and the job says so', async () => {
  await page.getByTestId('pixel-size').fill('8');
  await runJob('predict');
  const notices = page.locator('[data-testid^="job-j"]').first().getByTestId('job-notice');
  await expect(notices.filter({ hasText: 'pixel size: stack 8 nm, model 4 nm; slices are resized 2×' })).toHaveCount(1);
  await page.getByTestId('pixel-size').fill('');
});

test('a running job shows progress and can be cancelled', async () => {
  await page.getByTestId('scope-all').check();
  await page.getByTestId('start-segment').click();
  const job = page.locator('[data-testid^="job-j"]').first();
  await expect(job).toHaveAttribute('data-state', 'running');
  const jobId = ((await job.getAttribute('data-testid')) ?? '').replace('job-', '');
  // Wait for the first progress report so the cancel hits a job that is really computing.
  await expect(job.getByTestId('job-progress')).toHaveText(/^\d+\/[1-9]\d* · /, { timeout: 60_000 });
  await page.getByTestId(`cancel-${jobId}`).click();
  await expect(job).toHaveAttribute('data-state', 'cancelled', { timeout: 10_000 });
  await expect(page.getByTestId(`cancel-${jobId}`)).toHaveCount(0);
  const list = async () => (await (await page.request.post(`${serverUrl().origin}/api/listJobs`, { data: {} })).json()) as { jobId: string; state: string; readySlices: number[] }[];
  const ready = (await list()).find((j) => j.jobId === jobId)!.readySlices.length;
  expect(ready).toBeLessThan(10);
  // The job's process is gone: no more slices arrive.
  await page.waitForTimeout(3000);
  const after = (await list()).find((j) => j.jobId === jobId)!;
  expect(after.state).toBe('cancelled');
  expect(after.readySlices.length).toBe(ready);
});

test('drag and drop opens dropped slices; the recent list reopens a stack', async () => {
  const sample = fileURLToPath(new URL('../sample-data/isbi2012-val/image/', import.meta.url));
  const files = await Promise.all(['20.png', '21.png', '22.png'].map(async (name) => ({ name, bytes: [...(await readFile(join(sample, name)))] })));
  // A drop as the browser delivers it: a DataTransfer holding File objects (browser mode never sees their paths).
  const dataTransfer = await page.evaluateHandle((fs) => {
    const dt = new (globalThis as unknown as { DataTransfer: new () => { items: { add(f: File): void } } }).DataTransfer();
    for (const f of fs) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: 'image/png' }));
    return dt;
  }, files);
  await page.locator('.app').dispatchEvent('drop', { dataTransfer });
  await expect(page.getByTestId('stack-title')).toContainText('512×512×3');
  await settled(page);
  expect(greyStd(await pixels(viewer()))).toBeGreaterThan(25);
  await page.getByTestId('recent').click();
  await page.getByTestId('recent-list').getByRole('button', { name: /isbi2012-val\/image/ }).click();
  await expect(page.getByTestId('stack-title')).toContainText('512×512×10');
});
