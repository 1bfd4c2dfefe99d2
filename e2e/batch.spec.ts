// The batch panel as a user drives it, with the real engine and the shipped models: batch three sample slices into a
// fresh folder, watch the items finish, run it again (nothing is redone), and open one result in the viewer, where
// its labels really render (many label colours on a screenshot of the viewer).
import { cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { pixels, saturatedHues, serverUrl, settled } from './helpers';

const root = fileURLToPath(new URL('..', import.meta.url));

test('batch a folder, rerun without redoing anything, open a result in the viewer', async ({ page }) => {
  // A batch reads from and writes to folders the user may open: the server's home folder (same user as this test).
  await mkdir(join(homedir(), '.cache'), { recursive: true });
  const scratch = await mkdtemp(join(homedir(), '.cache', 'emseg-e2e-batch-'));
  try {
    const input = join(scratch, 'in');
    await mkdir(input, { recursive: true });
    for (const n of [20, 21, 22]) await cp(join(root, 'sample-data', 'isbi2012-val', 'image', `${n}.png`), join(input, `${n}.png`));
    const out = join(scratch, 'out');

    await page.goto(serverUrl().url);
    await page.getByTestId('open-batch').click();
    await page.getByTestId('batch-input').fill(input);
    await page.getByTestId('batch-out').fill(out);
    await page.getByTestId('batch-start').click();
    // The newest batch is listed first; pin each by its id (a bare .first() would follow the list as it grows).
    const newest = page.locator('[data-testid^="batch-b"]');
    await expect(newest).toHaveCount(1);
    const first = page.getByTestId((await newest.first().getAttribute('data-testid'))!);
    await expect(first).toHaveAttribute('data-state', 'done', { timeout: 170_000 });
    await expect(first.getByTestId('batch-item')).toHaveCount(3);
    for (const key of ['20', '21', '22']) await expect(first.locator(`[data-key="${key}"]`)).toHaveAttribute('data-status', 'done');
    const manifest = (await readFile(join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n');
    expect(manifest).toHaveLength(3);

    // Run it again: every item is found unchanged, nothing is recomputed, the manifest gets no new line.
    await first.getByRole('button', { name: 'Run again' }).click();
    await expect(newest).toHaveCount(2);
    const second = page.getByTestId((await newest.first().getAttribute('data-testid'))!);
    await expect(second).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
    await expect(second.locator('[data-status="unchanged"]')).toHaveCount(3);
    expect((await readFile(join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(3);

    // Open slice 21's result: the viewer shows its input with the batch's segmentation over it.
    await second.locator('[data-key="21"]').getByTestId('batch-open').click();
    await expect(page.getByTestId('batch-panel')).toHaveCount(0);
    await expect(page.getByTestId('stack-title')).toContainText('21.png');
    await settled(page);
    const hues = saturatedHues(await pixels(page.getByTestId('viewer')));
    expect(hues).toBeGreaterThan(30);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
});
