// Starting browser mode: build the renderer if needed, create the backend with Node child processes for jobs, put
// the door in front of it and serve it. Used by `emseg serve`, by `emseg app` when Electron is missing, and by tests.
import { fileURLToPath } from 'node:url';
import { createBackend, type Backend } from '../api/backend';
import { configDir, sessionResultsDir } from '../api/dirs';
import { createDoor } from '../api/door';
import { spawnNodeJobProcess } from '../jobs/node-host';
import { ensureRenderer } from './renderer-assets';
import { newToken } from './security';
import { startServer, type RunningServer } from './server';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BrowserModeOptions {
  host?: string;
  port?: number;
  /** Folders the user opens on the command line: reachable besides home and the sample. */
  roots?: string[];
  log?: (line: string) => void;
  /** Pre-built renderer folder (tests); default: out/renderer, built on first use. */
  rendererDir?: string;
}

export interface BrowserMode {
  url: string;
  port: number;
  token: string;
  backend: Backend;
  server: RunningServer;
  close(): Promise<void>;
}

export async function startBrowserMode(opts: BrowserModeOptions = {}): Promise<BrowserMode> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rendererDir = opts.rendererDir ?? (await ensureRenderer(REPO_ROOT, log));
  const token = newToken();
  let server: RunningServer | null = null;
  const backend = await createBackend({
    transport: 'browser',
    spawnJob: spawnNodeJobProcess,
    configDir: configDir(),
    resultsDir: await sessionResultsDir(),
    roots: opts.roots,
    onEvent: (e) => server?.broadcast(e),
  });
  const door = createDoor(backend.handlers, { logInternal: (name, e) => log(`emseg: internal error in ${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`) });
  server = await startServer({ door, rendererDir, token, host: opts.host, port: opts.port });
  const s = server;
  return {
    url: s.url,
    port: s.port,
    token,
    backend,
    server: s,
    async close() {
      await s.close();
      await backend.close();
    },
  };
}
