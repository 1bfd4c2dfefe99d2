// The desktop app: launches Electron on the built app and checks the window is the EMSeg viewer, isolated from
// Node (no require, no process), with the API exposed one function per call. Runs only where Electron's binary is
// installed; elsewhere it is skipped with the reason printed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { _electron as electron, expect, test } from '@playwright/test';
import { findElectron } from '../main/cli/commands/app';

const root = fileURLToPath(new URL('..', import.meta.url));
const found = findElectron();

test('the Electron app opens the viewer with isolation and the contract API', async () => {
  if (found.path === null) {
    console.log(`electron.spec: skipped: ${found.reason}`);
    test.skip(true, `Electron is not available: ${found.reason}`);
    return;
  }
  if (!existsSync(join(root, 'out', 'main', 'index.js'))) {
    const r = spawnSync(process.execPath, [join(root, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'], { cwd: root, stdio: 'inherit' });
    expect(r.status).toBe(0);
  }
  const app = await electron.launch({ executablePath: found.path, args: [root, '--no-sandbox'] });
  try {
    const win = await app.firstWindow();
    await expect(win.getByTestId('open-sample')).toBeVisible();
    const shape = await win.evaluate(() => {
      const w = globalThis as unknown as Record<string, unknown>;
      const api = w.emseg as Record<string, unknown>;
      return { require: typeof w.require, process: typeof w.process, calls: Object.keys(api).sort(), allFunctions: Object.values(api).every((f) => typeof f === 'function') };
    });
    expect(shape.require).toBe('undefined');
    expect(shape.process).toBe('undefined');
    expect(shape.allFunctions).toBe(true);
    expect(shape.calls).toContain('readSlice');
    expect(shape.calls).not.toContain('invoke');
    expect(shape.calls).not.toContain('send');
    await win.getByTestId('open-sample').click();
    await expect(win.getByTestId('stack-title')).toContainText('512×512×10');
  } finally {
    await app.close();
  }
});
