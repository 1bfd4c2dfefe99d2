// `emseg app` (`npm start`): the desktop app when Electron's binary is installed; otherwise one line saying so, then
// browser mode. Electron is an optional dependency (its binary download fails on some machines and CI), so it is
// looked up at run time by a variable specifier and never needed for type checking or building.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Command } from '../command';
import { REPO_ROOT } from '../../server/browser-mode';
import { ensureRenderer } from '../../server/renderer-assets';
import { runServe, serveCommand } from './serve';

/** The Electron executable, or null with the reason it is unusable. */
export function findElectron(): { path: string } | { path: null; reason: string } {
  const name = 'electron';
  try {
    // The electron package's main module is the path of its binary (it throws when the download never happened).
    const p = createRequire(import.meta.url)(name) as unknown;
    if (typeof p !== 'string') return { path: null, reason: 'the electron package did not give a binary path' };
    if (!existsSync(p)) return { path: null, reason: `the Electron binary is missing (${p})` };
    return { path: p };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return { path: null, reason: code === 'MODULE_NOT_FOUND' ? 'the electron package is not installed' : 'the Electron binary is not installed' };
  }
}

export const appCommand: Command = {
  name: 'app',
  summary: 'Open the desktop app (browser mode when Electron is not installed)',
  usage: 'emseg app [--port N] [--host 127.0.0.1] [--root FOLDER]... [FOLDER...]',
  help: `
Opens the EMSeg desktop app. When Electron's binary is not installed, says so in one line and starts browser mode
instead (see emseg serve --help; the options are passed on to it).
`,
  options: serveCommand.options,
  async run(ctx) {
    const electron = findElectron();
    if (electron.path === null) {
      ctx.err(`emseg app: Electron is not available (${electron.reason}); starting browser mode instead.`);
      return runServe(ctx);
    }
    // Build main, preload and renderer when the bundle is missing; the renderer check also catches stale sources.
    await ensureRenderer(REPO_ROOT, ctx.err);
    if (!existsSync(join(REPO_ROOT, 'out', 'main', 'index.js')) || !existsSync(join(REPO_ROOT, 'out', 'preload', 'index.cjs'))) {
      ctx.err('emseg app: building the app…');
      const cli = join(REPO_ROOT, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js');
      const r = spawnSync(process.execPath, [cli, 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      if (r.status !== 0) return r.status ?? 1;
    }
    const env = { ...process.env };
    delete env.ELECTRON_RUN_AS_NODE;
    const child = spawn(electron.path, [REPO_ROOT, ...ctx.positionals], { stdio: 'inherit', env });
    return new Promise<number>((done) => child.on('exit', (code) => done(code ?? 0)));
  },
};
