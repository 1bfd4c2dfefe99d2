// Proofreading as a user does it, in Chromium against browser mode: create a project for the sample stack (labels
// from its ground truth), paint a stroke, merge two segments, split them again, undo, redo, close and reopen the
// project — every step made with real mouse drags and keys, and checked by reading the project's labels back
// through the API pixel by pixel. No trained model is needed: split floods the raw slice's darkness.
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import {
  createProject,
  drag as dragOn,
  expectUndoDepth,
  interior as interiorOf,
  openProject,
  openSamplePage,
  pixels,
  projectSlice,
  sameLabels,
  settled,
  toDataPoint as toData,
  toPage as toPagePoint,
  type PagePoint,
} from './helpers';

test.describe.configure({ mode: 'serial' });

const W = 512;
let page: Page;
let scratch = '';
let projectFolder = '';
let projectId = '';
const viewer = () => page.getByTestId('viewer');

/** Slice z of the project's labels, read through the API as the renderer reads tiles (the sample is one tile). */
const labels = (z = 0) => projectSlice(projectId, z);
const same = sameLabels;
const toPage = (x: number, y: number) => toPagePoint(page, x, y);
const toDataPoint = (px: number, py: number) => toData(page, { px, py });
const drag = (from: PagePoint, to: PagePoint, steps = 12) => dragOn(page, from, to, steps);
const interior = (l: Uint32Array, id: number) => interiorOf(l, W, id);
const undoDepth = (n: number) => expectUndoDepth(page, n);

test.beforeAll(async ({ browser }) => {
  // The server lets the page name folders under the home folder (and the sample's): the project goes there.
  scratch = await mkdtemp(join(homedir(), '.emseg-e2e-proofread-'));
  projectFolder = join(scratch, 'isbi-sample.emseg');
  page = await openSamplePage(browser);
});

test.afterAll(async () => {
  await page.close();
  await rm(scratch, { recursive: true, force: true });
});

let original: Uint32Array;
let painted: Uint32Array;
let merged: Uint32Array;
let split: Uint32Array;
let a = 0;
let b = 0;

test('creates a project from the sample ground truth; the live scores start at 1', async () => {
  projectId = await createProject(page, projectFolder);
  expect(projectId).toMatch(/^p\d+$/);
  await expect(page.getByTestId('quality-vrand')).toHaveText('V_rand 1.0000');
  await expect(page.getByTestId('quality-vinfo')).toHaveText('V_info 1.0000');
  original = await labels();
  expect(new Set(original).size).toBeGreaterThan(20);
  await settled(page);
});

test('a brush stroke drawn with the mouse sets exactly the pixels under the brush', async () => {
  const before = await pixels(viewer());
  await page.getByTestId('current-label').fill('4242');
  await page.keyboard.press('Enter'); // leave the number field: keys go to the tools again
  await page.keyboard.press('p');
  await expect(page.getByTestId('tool-paint')).toHaveAttribute('aria-pressed', 'true');
  // Radius 5 px: press ] once from the default 4.
  await page.keyboard.press(']');
  await expect(page.getByTestId('brush-radius')).toHaveValue('5');
  const from = await toPage(60, 80);
  const to = await toPage(200, 140);
  await drag(from, to);
  await undoDepth(1);
  const A = await toDataPoint(from.px, from.py);
  const B = await toDataPoint(to.px, to.py);
  painted = await labels();
  // The brush: pixel centres within 5 px of the segment from A to B (the mouse moved along a straight line).
  const dx = B.x - A.x;
  const dy = B.y - A.y;
  const l2 = dx * dx + dy * dy;
  let inBrush = 0;
  // Pixels that differ from the expectation, as 'x,y' (one expect at the end: an expect per pixel is very slow).
  const wrong: string[] = [];
  for (let y = 0; y < W; y++) {
    for (let x = 0; x < W; x++) {
      const t = Math.max(0, Math.min(1, ((x + 0.5 - A.x) * dx + (y + 0.5 - A.y) * dy) / l2));
      const d = Math.hypot(x + 0.5 - A.x - t * dx, y + 0.5 - A.y - t * dy);
      const i = y * W + x;
      if (d <= 5) inBrush++;
      if (painted[i] !== (d <= 5 ? 4242 : original[i])) wrong.push(`${x},${y}`);
    }
  }
  expect(wrong.slice(0, 20)).toEqual([]);
  // A 5 px brush along a ~150 px line covers about 150 × 10 + π 5² pixels.
  expect(inBrush).toBeGreaterThan(1400);
  expect(inBrush).toBeLessThan(1800);
  // And the viewer shows it: the labels layer changed on screen.
  const after = await pixels(viewer());
  let changed = 0;
  for (let i = 0; i < after.data.length; i += 4) if (Math.abs(after.data[i] - before.data[i]) + Math.abs(after.data[i + 1] - before.data[i + 1]) > 30) changed++;
  expect(changed).toBeGreaterThan(1000);
});

test('merge: clicking two segments merges the second into the first, and V_rand drops', async () => {
  // The two largest segments away from the stroke.
  const sizes = new Map<number, number>();
  for (const v of painted) if (v !== 0 && v !== 4242) sizes.set(v, (sizes.get(v) ?? 0) + 1);
  [a, b] = [...sizes.entries()].sort((x, y) => y[1] - x[1]).map((e) => e[0]);
  await page.keyboard.press('g');
  const pa = interior(painted, a);
  const pb = interior(painted, b);
  const sa = await toPage(pa.x, pa.y);
  const sb = await toPage(pb.x, pb.y);
  await page.mouse.click(sa.px, sa.py);
  await expect(page.getByTestId('proofread-hint')).toContainText(`merge: ${a}`);
  await page.mouse.click(sb.px, sb.py);
  await undoDepth(2);
  merged = await labels();
  let wrong = 0;
  for (let i = 0; i < merged.length; i++) {
    const ok = painted[i] === b ? merged[i] === a : painted[i] === 0 ? merged[i] === 0 || merged[i] === a : merged[i] === painted[i];
    if (!ok) wrong++;
  }
  expect(wrong).toBe(0);
  expect(merged.includes(b)).toBe(false);
  await expect(page.getByTestId('quality-vrand')).not.toHaveText('V_rand 1.0000');
  await expect(page.getByTestId('error-0')).toContainText(`merge ${a}`);
});

test('split: a seed in each part re-segments only the merged segment', async () => {
  await page.keyboard.press('s');
  const pa = interior(painted, a);
  const pb = interior(painted, b);
  await drag(await toPage(pa.x - 2, pa.y), await toPage(pa.x + 2, pa.y), 4);
  await expect(page.getByTestId('proofread-hint')).toContainText(`split ${a}`);
  await drag(await toPage(pb.x - 2, pb.y), await toPage(pb.x + 2, pb.y), 4);
  await undoDepth(3);
  await expect(page.getByTestId('proofread-hint')).toContainText('new segment');
  split = await labels();
  const fresh = merged.reduce((m, v) => (v > m ? v : m), 0) + 1;
  let agree = 0;
  let total = 0;
  let outside = 0;
  for (let i = 0; i < split.length; i++) {
    if (merged[i] !== a) {
      if (split[i] !== merged[i]) outside++;
      continue;
    }
    total++;
    if ((painted[i] === b && split[i] === fresh) || (painted[i] !== b && split[i] === a)) agree++;
  }
  expect(outside).toBe(0);
  expect(agree / total).toBeGreaterThan(0.99);
  await expect(page.getByTestId('quality-vrand')).toHaveText(/V_rand (0\.99|1\.0)/);
});

test('undo and redo with the keyboard restore each state exactly', async () => {
  await page.keyboard.press('Control+z');
  await undoDepth(2);
  expect(same(await labels(), merged)).toBe(true);
  await page.keyboard.press('Control+z');
  await undoDepth(1);
  expect(same(await labels(), painted)).toBe(true);
  await page.keyboard.press('Control+Shift+z');
  await undoDepth(2);
  expect(same(await labels(), merged)).toBe(true);
  await page.keyboard.press('Control+y');
  await undoDepth(3);
  expect(same(await labels(), split)).toBe(true);
  await expect(page.getByTestId('redo')).toHaveText('Redo (0)');
});

test('closing and reopening the project finds everything as it was, undo history included', async () => {
  await page.getByTestId('project-close').click();
  await expect(page.getByTestId('project-open')).toBeVisible();
  projectId = await openProject(page, projectFolder);
  await undoDepth(3);
  expect(same(await labels(), split)).toBe(true);
  await page.keyboard.press('Control+z');
  await undoDepth(2);
  expect(same(await labels(), merged)).toBe(true);
  await page.keyboard.press('Control+z');
  await page.keyboard.press('Control+z');
  await undoDepth(0);
  expect(same(await labels(), original)).toBe(true);
  await expect(page.getByTestId('quality-vrand')).toHaveText('V_rand 1.0000');
});

test('the help overlay lists the shortcuts', async () => {
  await page.keyboard.press('?');
  const help = page.getByTestId('help-overlay');
  await expect(help).toBeVisible();
  for (const text of ['paint', 'erase', 'fill', 'merge', 'split', 'lock', 'undo', 'redo']) await expect(help).toContainText(text);
  await page.keyboard.press('Escape');
  await expect(help).toBeHidden();
});
