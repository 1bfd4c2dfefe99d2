// The model picker as a user drives it, with the real engine: predict with the shipped model, open a model folder of
// one's own through the picker (its row of the compression table shows), predict again with it, and check that the
// job really ran that model: the folder is the shipped model with its output layer negated, so its membrane map is
// 1 − the shipped model's map at every pixel (sigmoid(−x) = 1 − sigmoid(x)), read back under the cursor. The choice
// survives a reload. Needs no compressed folder: the model is made here, in a scratch folder of the home folder.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test, type Page } from '@playwright/test';
import { serverUrl, settled } from './helpers';

const root = fileURLToPath(new URL('..', import.meta.url));
const SHIPPED = join(root, 'sample-data', 'models', 'membrane');

interface ModelJson {
  weights: { name: string; shape: number[] }[];
  weightsDtype?: 'float32' | 'float16';
  onnx?: string;
  [key: string]: unknown;
}

/**
 * A copy of the shipped membrane model whose 1×1 output layer (kernel and bias) has the opposite sign, with no
 * model.onnx (the job exports the graph from these weights) and a made-up report row for the picker to show.
 */
async function invertedModel(dir: string): Promise<void> {
  const record = JSON.parse(await readFile(join(SHIPPED, 'model.json'), 'utf8')) as ModelJson;
  const weights = new Uint8Array(await readFile(join(SHIPPED, 'weights.bin')));
  const bytesPer = record.weightsDtype === 'float16' ? 2 : 4;
  let offset = 0;
  let flipped = 0;
  for (const w of record.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.name.startsWith('logits/')) {
      // Little-endian: the sign bit is the top bit of each value's last byte, in float16 and float32 alike.
      for (let i = 0; i < n; i++) weights[offset + i * bytesPer + bytesPer - 1] ^= 0x80;
      flipped += n;
    }
    offset += n * bytesPer;
  }
  if (flipped === 0 || offset !== weights.length) throw new Error('unexpected weight manifest in the shipped model');
  delete record.onnx;
  record.compression = {
    method: 'inverted',
    source: { dir: SHIPPED, validation: { vrand: 0.9697 } },
    report: { model: 'inverted', method: 'inverted', fileMB: 3.89, mpxPerS: 0.5, vrand: 0.0312, vinfo: 0.5012, threshold: 0.5, threads: 2, slices: 10 },
  };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'weights.bin'), weights);
  await writeFile(join(dir, 'model.json'), JSON.stringify(record, null, 2));
}

async function runPredict(page: Page): Promise<ReturnType<Page['getByTestId']>> {
  const jobs = page.locator('[data-testid^="job-j"]');
  const before = await jobs.count();
  await page.getByTestId('start-predict').click();
  await expect(jobs).toHaveCount(before + 1);
  // The newest job is listed first; pin it by its id.
  const job = page.getByTestId((await jobs.first().getAttribute('data-testid'))!);
  await expect(job).toHaveAttribute('data-state', 'done', { timeout: 150_000 });
  return job;
}

/** Map values under the cursor at a few points of the viewer (the newest job's map of this slice). */
async function mapValues(page: Page, points: [number, number][]): Promise<number[]> {
  await settled(page);
  const box = (await page.getByTestId('viewer').boundingBox())!;
  const out: number[] = [];
  for (const [fx, fy] of points) {
    // Move off and back: the readout follows pointer moves.
    await page.mouse.move(box.x + 5, box.y + 5);
    await page.mouse.move(box.x + box.width * fx, box.y + box.height * fy);
    await expect(page.getByTestId('status-map')).toHaveText(/^map \d\.\d{3}$/);
    out.push(Number(((await page.getByTestId('status-map').textContent()) ?? '').replace('map ', '')));
  }
  return out;
}

async function chooseRow(page: Page, name: string): Promise<void> {
  await page.getByTestId('model-choose').click();
  const row = page.locator(`[data-testid="model-row"][data-name="${name}"]`);
  await row.click();
  await expect(row).toHaveAttribute('data-chosen', 'true');
  await page.getByTestId('model-picker-close').click();
  await expect(page.getByTestId('model-current')).toContainText(name);
}

test('choose a model in the picker and run a job with it', async ({ page }) => {
  await mkdir(join(homedir(), '.cache'), { recursive: true });
  const scratch = await mkdtemp(join(homedir(), '.cache', 'emseg-e2e-models-'));
  const modelDir = join(scratch, 'inverted');
  try {
    await invertedModel(modelDir);
    await page.goto(serverUrl().url);
    await page.getByTestId('open-sample').click();
    await expect(page.getByTestId('stack-title')).toContainText('512×512×10');

    // The shipped model is listed with its method and size; choose it and predict this slice.
    await chooseRow(page, 'membrane');
    await expect(page.getByTestId('model-summary')).toContainText('uncompressed');
    const shippedJob = await runPredict(page);
    await expect(shippedJob.getByTestId('job-model')).toHaveText('· model membrane');
    const points: [number, number][] = [
      [0.5, 0.5],
      [0.42, 0.37],
      [0.61, 0.58],
      [0.33, 0.64],
      [0.55, 0.3],
    ];
    const shipped = await mapValues(page, points);

    // Open the inverted model's folder through the picker (browser mode: the server's folder browser).
    await page.getByTestId('model-choose').click();
    await page.getByTestId('model-open-folder').click();
    const browser = page.getByTestId('folder-browser');
    await expect(browser).toContainText('Open a model folder');
    // Type the folder once the browser has listed its first folder (it fills the field with that path).
    await expect(browser.getByLabel('Folder')).toHaveValue(/^\//);
    await browser.getByLabel('Folder').fill(modelDir);
    await browser.getByLabel('Folder').press('Enter');
    await expect(browser.getByLabel('Folder')).toHaveValue(modelDir);
    await browser.getByTestId('open-this-folder').click();
    await expect(browser).toHaveCount(0);
    // Its row of the table: method, speed and scores from the report row in its model.json; ΔV_rand against the source.
    const row = page.locator('[data-testid="model-row"][data-name="inverted"]');
    await expect(row).toHaveAttribute('data-chosen', 'true');
    await expect(row).toContainText('inverted (opened)');
    await expect(row.getByTestId('model-speed')).toHaveText('0.50');
    await expect(row.getByTestId('model-vrand')).toHaveText('0.0312');
    await expect(row.getByTestId('model-delta')).toHaveText('−0.9385');
    await page.getByTestId('model-picker-close').click();
    await expect(page.getByTestId('model-current')).toContainText('inverted');

    // Predict with it: the job names the model, and its map is the shipped map turned over.
    const invertedJob = await runPredict(page);
    await expect(invertedJob.getByTestId('job-model')).toHaveText('· model inverted');
    const inverted = await mapValues(page, points);
    for (let i = 0; i < points.length; i++) expect(Math.abs(shipped[i] + inverted[i] - 1), `point ${i}: ${shipped[i]} and ${inverted[i]}`).toBeLessThan(0.03);
    // Not a flat map that would pass for any model: membrane and interior both appear among the points.
    expect(Math.max(...shipped.map((v, i) => Math.abs(v - inverted[i])))).toBeGreaterThan(0.5);

    // The choice is kept by the main side: a reload (a new page) starts with the same model.
    await page.reload();
    await expect(page.getByTestId('model-current')).toContainText('inverted');
    // Leave the shipped model chosen for whatever runs next on this server.
    await chooseRow(page, 'membrane');
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});
