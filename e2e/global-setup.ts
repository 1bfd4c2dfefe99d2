// Starts `emseg serve` on a free port the way a user would (the real CLI, the real engine), reads the one URL line
// it prints, and hands it to the specs in EMSEG_E2E_URL. Config and cache go to a temporary folder so the tests
// never touch the user's recent list or results. Returns the teardown that stops the server.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export default async function globalSetup(): Promise<() => Promise<void>> {
  const scratch = await mkdtemp(join(tmpdir(), 'emseg-e2e-'));
  const child = spawn(process.execPath, [join(root, 'main', 'cli', 'emseg.mjs'), 'serve', '--port', '0'], {
    cwd: root,
    env: { ...process.env, EMSEG_CONFIG_DIR: join(scratch, 'config'), EMSEG_CACHE_DIR: join(scratch, 'cache') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    // The first run may build the renderer: allow two minutes on a slow machine.
    const timer = setTimeout(() => reject(new Error('emseg serve printed no URL within 120 s')), 120_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('http://'));
      if (line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
    child.on('exit', (code) => reject(new Error(`emseg serve exited with code ${code} before printing its URL`)));
  });
  if (!/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{20,}$/.test(url)) throw new Error(`unexpected URL line: ${url}`);
  process.env.EMSEG_E2E_URL = url;
  return async () => {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(scratch, { recursive: true, force: true });
  };
}
