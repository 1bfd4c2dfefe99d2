// The rest of the proofreading tools as a user drives them, in Chromium against browser mode, each checked by reading
// the project's layers back through the API pixel by pixel: fill, lock (a locked segment keeps every pixel under a
// stroke and refuses a delete), cut, jumping to an error from the ranked list, ground truth painted as interior and
// membrane with the per-slice status, the help overlay listing every key; then a Predict job run with the project
// open is saved in it, and its map is there again after reopening; a Segment job's labels wait as a proposal
// until accepted (one undoable edit), and Accept all takes the proposals of two slices as one undoable edit.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import {
  apiCall,
  createProject,
  drag,
  expectUndoDepth,
  fraction,
  interior,
  openProject as openProjectIn,
  openSamplePage,
  pixels,
  projectSlice,
  sameLabels,
  settled,
  toDataPoint,
  toPage,
  viewTransform,
} from './helpers';
import type { SliceQualityResult } from '../main/api/contract';

test.describe.configure({ mode: 'serial' });

const W = 512;
let page: Page;
let scratch = '';
let folder = '';
let projectId = '';
/** The stack's ground truth of slice 0, and the project's layers when it was closed. */
let truthOriginal: Uint32Array;
let labelsAtClose: Uint32Array;
let truthAtClose: Uint32Array;

const undoDepth = (n: number) => expectUndoDepth(page, n);

/** Pixels whose centre lies within r of the segment a–b: the brush, by its definition. */
function inBrush(a: { x: number; y: number }, b: { x: number; y: number }, r: number): (x: number, y: number) => boolean {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const l2 = dx * dx + dy * dy;
  return (x, y) => {
    const t = l2 > 0 ? Math.max(0, Math.min(1, ((x + 0.5 - a.x) * dx + (y + 0.5 - a.y) * dy) / l2)) : 0;
    return Math.hypot(x + 0.5 - a.x - t * dx, y + 0.5 - a.y - t * dy) <= r;
  };
}

/**
 * Drags the current tool from data point a to b, waits until the undo stack is `depth` deep, and returns the brush of
 * radius r along the line where the mouse really went (its page points are whole CSS pixels).
 */
async function stroke(a: { x: number; y: number }, b: { x: number; y: number }, r: number, depth: number): Promise<(x: number, y: number) => boolean> {
  const from = await toPage(page, a.x, a.y);
  const to = await toPage(page, b.x, b.y);
  await drag(page, from, to);
  await undoDepth(depth);
  return inBrush(await toDataPoint(page, from), await toDataPoint(page, to), r);
}

/**
 * `after` against `before` with `value` painted where `brush` holds: pixels that differ from that expectation, and
 * pixels the brush really changed.
 */
function paintedUnder(before: Uint32Array, after: Uint32Array, brush: (x: number, y: number) => boolean, value: number): { wrong: number; changed: number } {
  let wrong = 0;
  let changed = 0;
  for (let i = 0; i < after.length; i++) {
    const expected = brush(i % W, Math.floor(i / W)) ? value : before[i];
    if (expected !== before[i]) changed++;
    if (after[i] !== expected) wrong++;
  }
  return { wrong, changed };
}

/** The 4-connected pieces of the pixels where `member` holds: a piece index per pixel (-1 outside) and their sizes. */
function pieces(member: (i: number) => boolean): { piece: Int32Array; sizes: number[] } {
  const piece = new Int32Array(W * W).fill(-1);
  const sizes: number[] = [];
  for (let s = 0; s < W * W; s++) {
    if (piece[s] >= 0 || !member(s)) continue;
    const k = sizes.length;
    let n = 0;
    const stack = [s];
    piece[s] = k;
    while (stack.length > 0) {
      const i = stack.pop() as number;
      n++;
      const x = i % W;
      for (const j of [x > 0 ? i - 1 : -1, x < W - 1 ? i + 1 : -1, i - W, i + W]) {
        if (j >= 0 && j < W * W && piece[j] < 0 && member(j)) {
          piece[j] = k;
          stack.push(j);
        }
      }
    }
    sizes.push(n);
  }
  return { piece, sizes };
}

/** Segment ids of a slice by size, largest first (boundary left out). */
function bySize(l: Uint32Array): number[] {
  const sizes = new Map<number, number>();
  for (const v of l) if (v !== 0) sizes.set(v, (sizes.get(v) ?? 0) + 1);
  return [...sizes.entries()].sort((a, b) => b[1] - a[1]).map((e) => e[0]);
}

async function projectFile(): Promise<{ sliceStatus: string[]; locked: Record<string, number[]>; maps?: Record<string, string[]> }> {
  return JSON.parse(await readFile(join(folder, 'project.json'), 'utf8')) as { sliceStatus: string[]; locked: Record<string, number[]> };
}

async function openProject(): Promise<void> {
  projectId = await openProjectIn(page, folder);
}

test.beforeAll(async ({ browser }) => {
  scratch = await mkdtemp(join(homedir(), '.emseg-e2e-tools-'));
  folder = join(scratch, 'tools.emseg');
  page = await openSamplePage(browser);
  projectId = await createProject(page, folder);
  await expect(page.getByTestId('quality-vrand')).toHaveText('V_rand 1.0000');
  await settled(page);
});

test.afterAll(async () => {
  await page.close();
  await rm(scratch, { recursive: true, force: true });
});

test('fill: a click floods exactly the 4-connected region of equal label under it', async () => {
  const before = await projectSlice(projectId, 0);
  const target = bySize(before)[3];
  const at = interior(before, W, target);
  await page.getByTestId('current-label').fill('9001');
  await page.keyboard.press('Enter');
  await page.keyboard.press('f');
  await expect(page.getByTestId('tool-fill')).toHaveAttribute('aria-pressed', 'true');
  const p = await toPage(page, at.x, at.y);
  await page.mouse.click(p.px, p.py);
  await undoDepth(1);
  const after = await projectSlice(projectId, 0);
  const hit = await toDataPoint(page, p);
  const start = Math.floor(hit.y) * W + Math.floor(hit.x);
  expect(before[start]).toBe(target);
  const region = pieces((i) => before[i] === target).piece;
  let wrong = 0;
  let filled = 0;
  for (let i = 0; i < after.length; i++) {
    const inRegion = region[i] === region[start];
    if (inRegion) filled++;
    if (after[i] !== (inRegion ? 9001 : before[i])) wrong++;
  }
  expect(wrong).toBe(0);
  expect(filled).toBeGreaterThan(100);
});

test('lock: a locked segment keeps every pixel under a stroke and refuses a delete; unlocking frees it', async () => {
  const before = await projectSlice(projectId, 0);
  const locked = bySize(before)[0];
  const c = interior(before, W, locked);
  await page.keyboard.press('k');
  const pc = await toPage(page, c.x, c.y);
  await page.mouse.click(pc.px, pc.py);
  await expect(page.getByTestId('proofread-hint')).toHaveText(`segment ${locked} locked`);
  expect((await projectFile()).locked).toEqual({ '0': [locked] });

  // A stroke of label 77 (radius 4) from inside the locked segment out across its neighbours.
  await page.getByTestId('current-label').fill('77');
  await page.keyboard.press('Enter');
  await page.keyboard.press('p');
  const brush = await stroke(c, { x: c.x + 120, y: c.y + 15 }, 4, 2);
  const after = await projectSlice(projectId, 0);
  let wrong = 0;
  let painted = 0;
  let kept = 0;
  for (let i = 0; i < after.length; i++) {
    const x = i % W;
    const y = Math.floor(i / W);
    const expected = brush(x, y) && before[i] !== locked ? 77 : before[i];
    if (brush(x, y) && before[i] === locked) kept++;
    if (expected === 77) painted++;
    if (after[i] !== expected) wrong++;
  }
  expect(wrong).toBe(0);
  expect(kept).toBeGreaterThan(50);
  expect(painted).toBeGreaterThan(200);

  // Delete on the locked segment: refused with the reason, nothing changes.
  await page.keyboard.press('d');
  await page.mouse.click(pc.px, pc.py);
  await expect(page.getByTestId('notice')).toContainText(`segment ${locked} is locked`);
  await page.getByTestId('notice').getByRole('button').click();
  expect(sameLabels(await projectSlice(projectId, 0), after)).toBe(true);
  await expect(page.getByTestId('undo')).toHaveText('Undo (2)');

  // Unlock with a second click of the lock tool; now delete empties it.
  await page.keyboard.press('k');
  await page.mouse.click(pc.px, pc.py);
  await expect(page.getByTestId('proofread-hint')).toHaveText(`segment ${locked} unlocked`);
  expect((await projectFile()).locked).toEqual({});
  await page.keyboard.press('d');
  await page.mouse.click(pc.px, pc.py);
  await undoDepth(3);
  const deleted = await projectSlice(projectId, 0);
  for (let i = 0; i < deleted.length; i++) if (deleted[i] !== (after[i] === locked ? 0 : after[i])) wrong++;
  expect(wrong).toBe(0);
  // Undo the delete: the tests below start from the stroke.
  await page.keyboard.press('Control+z');
  await undoDepth(2);
});

test('cut: a line drawn across a segment makes its pixels under the line boundary and the pieces segments', async () => {
  const before = await projectSlice(projectId, 0);
  // A segment and a row through it whose run inside the segment is long, and which a one-row cut splits in two.
  let plan: { id: number; y: number; x0: number; x1: number } | null = null;
  for (const id of bySize(before).slice(1, 12)) {
    const c = interior(before, W, id);
    const y = Math.floor(c.y);
    let x0 = Math.floor(c.x);
    let x1 = x0;
    while (x0 > 0 && before[y * W + x0 - 1] === id) x0--;
    while (x1 < W - 1 && before[y * W + x1 + 1] === id) x1++;
    if (x1 - x0 < 30 || x0 < 4 || x1 > W - 5) continue;
    const split = pieces((i) => before[i] === id && !(Math.floor(i / W) === y && i % W >= x0 && i % W <= x1));
    if (split.sizes.length === 2 && Math.min(...split.sizes) > 30) {
      plan = { id, y, x0, x1 };
      break;
    }
  }
  expect(plan).not.toBeNull();
  const { id, y, x0, x1 } = plan!;
  await page.keyboard.press('x');
  await expect(page.getByTestId('tool-cut')).toHaveAttribute('aria-pressed', 'true');
  const from = await toPage(page, x0 - 1.5, y + 0.5);
  const to = await toPage(page, x1 + 2.5, y + 0.5);
  await drag(page, from, to, 20);
  await undoDepth(3);
  await expect(page.getByTestId('proofread-hint')).toContainText('new segment');
  const after = await projectSlice(projectId, 0);
  // The cut line: pixel centres within 0.5 px of the drawn line (radius 0.5), where the segment was.
  const a = await toDataPoint(page, from);
  const b = await toDataPoint(page, to);
  const line = inBrush(a, b, 0.5);
  const fresh = before.reduce((m, v) => (v > m ? v : m), 0) + 1;
  const rest = pieces((i) => before[i] === id && !line(i % W, Math.floor(i / W)));
  const largest = rest.sizes.indexOf(Math.max(...rest.sizes));
  let wrong = 0;
  let cut = 0;
  for (let i = 0; i < after.length; i++) {
    let expected = before[i];
    if (before[i] === id) {
      if (rest.piece[i] < 0) {
        expected = 0;
        cut++;
      } else expected = rest.piece[i] === largest ? id : fresh;
    }
    if (after[i] !== expected) wrong++;
  }
  expect(rest.sizes.length).toBe(2);
  expect(cut).toBeGreaterThanOrEqual(x1 - x0);
  expect(wrong).toBe(0);
});

test('the ranked error list jumps to each error: the view centres on its pixel', async () => {
  // The cut made a split error; merging two segments by clicks makes a merge error: both are listed.
  const l = await projectSlice(projectId, 0);
  const [a, b] = bySize(l).slice(1, 3);
  await page.keyboard.press('g');
  for (const id of [a, b]) {
    const at = interior(l, W, id);
    const p = await toPage(page, at.x, at.y);
    await page.mouse.click(p.px, p.py);
  }
  await undoDepth(4);
  await expect(page.getByTestId('error-1')).toBeVisible();
  const q = await apiCall<SliceQualityResult>('sliceQuality', { projectId, z: 0 });
  expect(q.errors.map((e) => e.kind)).toContain('split');
  expect(q.errors.map((e) => e.kind)).toContain('merge');
  for (let k = 0; k < q.errors.length; k++) {
    const e = q.errors[k];
    await expect(page.getByTestId(`error-${k}`)).toContainText(`${e.kind} ${e.ids.join('/')}`);
    await page.getByTestId(`error-${k}`).click();
    const box = (await page.getByTestId('viewer').boundingBox())!;
    const t = await viewTransform(page);
    const centre = { x: (box.width / 2 - t.ox) / t.scale, y: (box.height / 2 - t.oy) / t.scale };
    expect(Math.abs(centre.x - (e.x + 0.5))).toBeLessThan(0.51);
    expect(Math.abs(centre.y - (e.y + 0.5))).toBeLessThan(0.51);
    expect(t.scale).toBeGreaterThanOrEqual(1.99 / (await page.evaluate(() => (globalThis as unknown as { devicePixelRatio: number }).devicePixelRatio)));
    // The pixel jumped to belongs to the segment the error names.
    expect((await projectSlice(projectId, 0))[e.y * W + e.x]).toBe(e.ids[0]);
  }
  await page.getByTestId('fit').click();
  await page.keyboard.press('Control+z');
  await undoDepth(3);
});

test('ground truth: the brush paints interior (255), the eraser membrane (0), exactly under the brush; slice status is kept', async () => {
  await page.keyboard.press('t');
  await expect(page.getByTestId('edit-layer')).toHaveValue('truth');
  const labelsBefore = await projectSlice(projectId, 0);
  const truth0 = await projectSlice(projectId, 0, 'truth');
  expect(new Set(truth0)).toEqual(new Set([0, 255]));
  truthOriginal = truth0;
  // Interior across membranes (radius 3), then a membrane line (radius 1) through a cell.
  await page.keyboard.press('p');
  await page.keyboard.press('[');
  await expect(page.getByTestId('brush-radius')).toHaveValue('3');
  const interiorBrush = await stroke({ x: 150, y: 300 }, { x: 260, y: 330 }, 3, 4);
  const truth1 = await projectSlice(projectId, 0, 'truth');
  const interiorStroke = paintedUnder(truth0, truth1, interiorBrush, 255);
  expect(interiorStroke.wrong).toBe(0);
  expect(interiorStroke.changed).toBeGreaterThan(20);

  await page.keyboard.press('e');
  await page.keyboard.press('[');
  await page.keyboard.press('[');
  await expect(page.getByTestId('brush-radius')).toHaveValue('1');
  const membraneBrush = await stroke({ x: 100, y: 120 }, { x: 180, y: 100 }, 1, 5);
  const truth2 = await projectSlice(projectId, 0, 'truth');
  const membraneStroke = paintedUnder(truth1, truth2, membraneBrush, 0);
  expect(membraneStroke.wrong).toBe(0);
  expect(membraneStroke.changed).toBeGreaterThan(100);
  // Painting ground truth never touches the labels.
  expect(sameLabels(await projectSlice(projectId, 0), labelsBefore)).toBe(true);

  // Per-slice status: slice 1 in progress, slice 2 done, slice 3 untouched; saved in project.json at once.
  const status = page.getByTestId('slice-status');
  await expect(status).toHaveValue('not-started');
  await status.selectOption('in-progress');
  // The select keeps the focus; the tools' keys skip focused form fields, the slice keys do not.
  await status.blur();
  await page.keyboard.press('ArrowRight');
  await expect(status).toHaveValue('not-started');
  await status.selectOption('done');
  await status.blur();
  await expect.poll(async () => (await projectFile()).sliceStatus.slice(0, 3)).toEqual(['in-progress', 'done', 'not-started']);
  await page.keyboard.press('ArrowLeft');
  await expect(status).toHaveValue('in-progress');
  await page.keyboard.press('t');
  await expect(page.getByTestId('edit-layer')).toHaveValue('labels');
});

test('the help overlay lists every key the app answers to', async () => {
  await page.keyboard.press('?');
  const help = page.getByTestId('help-overlay');
  await expect(help).toBeVisible();
  const text = (await help.innerText()).replace(/\s+/g, ' ');
  // The key column, cell by cell ('P', 'Ctrl+Shift+Z / Ctrl+Y', '[  ]', …), split into single keys.
  const listed = new Set((await help.locator('th').allInnerTexts()).flatMap((t) => t.split(/\s*(?:\/|,|\s{2,})\s*/)).map((k) => k.trim()));
  // Every key of the proofreading handler (ProofreadPanel) and of the viewer's (App).
  const keys = ['V', 'P', 'E', 'F', 'L', 'M', 'G', 'S', 'X', 'D', 'K', '[', ']', 'T', 'Ctrl+Z', 'Ctrl+Shift+Z', 'Ctrl+Y', '?', 'H', 'Esc', 'Space + drag'];
  const viewKeys = ['←', '→', '↑', '↓', 'PageUp', 'PageDown', 'Home', 'End', '0', '1', '+', '−', 'wheel'];
  for (const k of [...keys, ...viewKeys]) expect([...listed], `the overlay lists ${k}`).toContain(k);
  for (const what of ['paint', 'erase', 'fill', 'pick', 'new label', 'merge', 'split', 'cut', 'delete', 'lock', 'brush', 'ground truth', 'undo', 'redo', 'previous / next slice', 'zoom']) {
    expect(text).toContain(what);
  }
  await page.keyboard.press('Escape');
  await expect(help).toBeHidden();
  // Without a project too: the overlay is the app's, not only the proofreading panel's.
  labelsAtClose = await projectSlice(projectId, 0);
  truthAtClose = await projectSlice(projectId, 0, 'truth');
  await page.getByTestId('project-close').click();
  await expect(page.getByTestId('project-open')).toBeVisible();
  await page.keyboard.press('?');
  await expect(help).toBeVisible();
  await expect(help).toContainText('PageUp');
  await page.keyboard.press('Escape');
  await expect(help).toBeHidden();
});

test('reopening finds the statuses, the ground truth, the labels and the undo history as they were', async () => {
  await openProject();
  await undoDepth(5);
  expect(sameLabels(await projectSlice(projectId, 0), labelsAtClose)).toBe(true);
  expect(sameLabels(await projectSlice(projectId, 0, 'truth'), truthAtClose)).toBe(true);
  await expect(page.getByTestId('slice-status')).toHaveValue('in-progress');
  await page.keyboard.press('ArrowRight');
  await expect(page.getByTestId('slice-status')).toHaveValue('done');
  await page.keyboard.press('ArrowLeft');
  // Undo the two ground-truth strokes: the stack's ground truth again, the labels untouched.
  await page.keyboard.press('Control+z');
  await page.keyboard.press('Control+z');
  await undoDepth(3);
  expect(sameLabels(await projectSlice(projectId, 0, 'truth'), truthOriginal)).toBe(true);
  expect(sameLabels(await projectSlice(projectId, 0), labelsAtClose)).toBe(true);
});

test('a job run with the project open is saved in it: its map is shown from the project after reopening', async () => {
  await page.getByTestId('start-predict').click();
  // The job's end stores its map in the project and says so.
  await expect(page.getByTestId('notice')).toContainText(/Job j\d+ saved in the project: membrane maps of 1 slice/, { timeout: 150_000 });
  await expect.poll(async () => Object.keys((await projectFile()).maps ?? {})).toEqual(['0']);
  await page.getByTestId('notice').getByRole('button').click();
  await page.getByTestId('project-close').click();
  await openProject();
  await expect(page.getByTestId('layer-map-visible')).toBeVisible();
  await expect(page.getByText('Membrane map (project)')).toBeVisible();
  const stored = new Float32Array(await apiCall<ArrayBuffer>('readProject', { projectId, layer: 'round-0', z: 0, level: 0, tx: 0, ty: 0 }, true));
  expect(stored.length).toBe(W * W);
  // A membrane map: probabilities, with both membrane and cell interior on the slice.
  expect(stored.every((v) => v >= 0 && v <= 1)).toBe(true);
  expect(stored.filter((v) => v > 0.5).length).toBeGreaterThan(W * W * 0.05);
  expect(stored.filter((v) => v < 0.5).length).toBeGreaterThan(W * W * 0.3);
  // And the viewer draws it: with only the map layer on, inferno colours (membranes orange-yellow).
  for (const row of await page.locator('[data-testid^="layer-"][data-testid$="-visible"]').all()) {
    await row.setChecked((await row.getAttribute('data-testid')) === 'layer-map-visible');
  }
  await settled(page);
  expect(fraction(await pixels(page.getByTestId('viewer')), (r, _g, b) => r > 150 && r > b + 60)).toBeGreaterThan(0.05);
});

test("a segmentation job's labels wait as a proposal on a slice with labels; Accept makes them one undoable edit", async () => {
  const before = await projectSlice(projectId, 0);
  const depth = Number(((await page.getByTestId('undo').innerText()).match(/\d+/) ?? ['0'])[0]);
  await page.getByTestId('start-segment').click();
  const notice = page.getByTestId('notice');
  await expect(notice).toContainText(/Job j\d+ saved in the project: .*proposed labels for slices 1\b/, { timeout: 150_000 });
  const jobId = ((await notice.innerText()).match(/Job (j\d+)/) ?? ['', ''])[1];
  await notice.getByRole('button').click();
  // Not an edit: the labels are as they were and the undo stack did not grow.
  expect(sameLabels(await projectSlice(projectId, 0), before)).toBe(true);
  await expect(page.getByTestId('undo')).toHaveText(`Undo (${depth})`);
  await expect(page.getByTestId('proposal')).toContainText('wait for slice 1');
  await page.getByTestId('proposal-accept').click();
  await undoDepth(depth + 1);
  await expect(page.getByTestId('proposal')).toBeHidden();
  const job = new Uint32Array(await apiCall<ArrayBuffer>('readResult', { jobId, layer: 'labels', z: 0, level: 0, tx: 0, ty: 0 }, true));
  expect(sameLabels(await projectSlice(projectId, 0), job)).toBe(true);
  await page.keyboard.press('Control+z');
  await undoDepth(depth);
  expect(sameLabels(await projectSlice(projectId, 0), before)).toBe(true);
});

test('Accept all takes the proposals of two slices as one undoable edit: one undo restores both, redo and reopening keep it one', async () => {
  const depth = Number(((await page.getByTestId('undo').innerText()).match(/\d+/) ?? ['0'])[0]);
  const before = [await projectSlice(projectId, 0), await projectSlice(projectId, 1)];
  const notice = page.getByTestId('notice');
  // One Segment job on slice 1, another on slice 2: both slices have labels, so each job's labels wait as a proposal.
  const jobs: string[] = [];
  for (const z of [0, 1]) {
    if (z > 0) await page.keyboard.press('ArrowRight');
    await page.getByTestId('start-segment').click();
    await expect(notice).toContainText(new RegExp(`Job j\\d+ saved in the project: .*proposed labels for slices ${z + 1}\\b`), { timeout: 150_000 });
    jobs.push(((await notice.innerText()).match(/Job (j\d+)/) ?? ['', ''])[1]);
    await notice.getByRole('button').click();
  }
  await page.keyboard.press('ArrowLeft');
  const proposed = await Promise.all(jobs.map(async (jobId, z) => new Uint32Array(await apiCall<ArrayBuffer>('readResult', { jobId, layer: 'labels', z, level: 0, tx: 0, ty: 0 }, true))));
  const both = async (expected: Uint32Array[], what: string) => {
    for (const z of [0, 1]) expect(sameLabels(await projectSlice(projectId, z), expected[z]), `slice ${z + 1} ${what}`).toBe(true);
  };
  await expect(page.getByTestId('proposal-accept-all')).toHaveText('Accept all (2)');
  await page.getByTestId('proposal-accept-all').click();
  await undoDepth(depth + 1);
  await expect(page.getByTestId('proposal')).toBeHidden();
  await both(proposed, 'accepted');
  await page.keyboard.press('Control+z');
  await undoDepth(depth);
  await both(before, 'after one undo');
  await page.keyboard.press('Control+Shift+z');
  await undoDepth(depth + 1);
  await both(proposed, 'after redo');
  await page.getByTestId('project-close').click();
  await openProject();
  await undoDepth(depth + 1);
  await both(proposed, 'after reopening');
  await page.keyboard.press('Control+z');
  await undoDepth(depth);
  await both(before, 'after undo in the reopened project');
});
