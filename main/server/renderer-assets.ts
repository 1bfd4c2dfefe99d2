// Where browser mode finds the built renderer. `emseg serve` must work right after `npm ci`, with no build step, so
// on first use (or when the renderer's sources changed) it runs Vite's build into out/renderer and stamps the folder
// with a hash of the sources; later starts reuse it in a few milliseconds. A packaged app without Vite uses whatever
// out/renderer holds.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type * as Vite from 'vite';
import type * as RendererConfig from './renderer-config';

export const RENDERER_STAMP = '.emseg-build.json';

type ViteModule = typeof Vite;
type RendererConfigModule = typeof RendererConfig;

async function listFiles(dir: string, out: string[] = []): Promise<string[]> {
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) await listFiles(p, out);
    else if (d.isFile()) out.push(p);
  }
  return out;
}

/** Hash of everything the bundle is made from: renderer sources, the contract's types, the build config. */
export async function rendererFingerprint(root: string): Promise<string> {
  const files = [
    ...(await listFiles(join(root, 'renderer'))).filter((f) => !f.endsWith('.md')),
    join(root, 'main', 'api', 'contract.ts'),
    join(root, 'main', 'server', 'renderer-config.ts'),
  ].sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(relative(root, f));
    h.update('\0');
    h.update(await readFile(f));
    h.update('\0');
  }
  return h.digest('hex');
}

async function stampOf(dir: string): Promise<string | null> {
  try {
    return (JSON.parse(await readFile(join(dir, RENDERER_STAMP), 'utf8')) as { fingerprint?: string }).fingerprint ?? null;
  } catch {
    return null;
  }
}

/** The folder of the built renderer, building it first when it is missing or stale. */
export async function ensureRenderer(root: string, log: (line: string) => void): Promise<string> {
  const outDir = join(root, 'out', 'renderer');
  const haveSources = existsSync(join(root, 'renderer', 'index.html'));
  if (!haveSources) {
    if (existsSync(join(outDir, 'index.html'))) return outDir;
    throw new Error(`no renderer: neither ${join(root, 'renderer')} nor ${outDir}`);
  }
  const fingerprint = await rendererFingerprint(root);
  if ((await stampOf(outDir)) === fingerprint && existsSync(join(outDir, 'index.html'))) return outDir;

  let vite: ViteModule;
  let config: RendererConfigModule;
  try {
    vite = await import('vite');
    config = await import('./renderer-config');
  } catch {
    if (existsSync(join(outDir, 'index.html'))) return outDir;
    throw new Error('the renderer is not built and Vite is not installed: run `npm ci` then `npm run build`');
  }
  log('emseg: building the renderer (first run or sources changed; takes a few seconds)…');
  // Build beside the target and swap, so a server already running from out/renderer never sees half a bundle.
  const tmpDir = join(root, 'out', `.renderer-build-${process.pid}`);
  const base = config.rendererViteConfig(root);
  await vite.build({
    ...base,
    configFile: false,
    logLevel: 'warn',
    build: { ...base.build, outDir: tmpDir },
  });
  await rm(outDir, { recursive: true, force: true });
  await rename(tmpDir, outDir);
  return outDir;
}
