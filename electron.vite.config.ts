// electron-vite: the Electron main process (and the job utility process), the preload, and the renderer.
//   out/main/index.js, job-process.js, batch-worker.js   ESM, Node dependencies left external (loaded from node_modules)
//   out/preload/index.cjs                         CommonJS: sandboxed preloads cannot be ES modules
//   out/renderer/                                 the same bundle browser mode serves (main/server/renderer-config.ts)
//
// electron-vite reads Electron's version from node_modules/electron to choose the Node and Chromium targets and the
// ES-module output. Electron is an optional dependency that may be missing (its binary download is blocked on some
// machines and in CI), so when it is, we give electron-vite the major version from package.json through
// ELECTRON_MAJOR_VER, the variable it reads first.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'electron-vite';
import { rendererViteConfig } from './main/server/renderer-config';

const root = dirname(fileURLToPath(import.meta.url));

function electronMajor(): string {
  try {
    const pkg = createRequire(import.meta.url)('electron/package.json') as { version: string };
    return pkg.version.split('.')[0];
  } catch {
    const ours = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
    const wanted = ours.optionalDependencies?.electron ?? '';
    return /(\d+)/.exec(wanted)?.[1] ?? '45';
  }
}
process.env.ELECTRON_MAJOR_VER ??= electronMajor();

const renderer = rendererViteConfig(root);

export default defineConfig({
  main: {
    build: {
      outDir: join(root, 'out', 'main'),
      rollupOptions: {
        input: {
          index: join(root, 'main', 'electron', 'main.ts'),
          'job-process': join(root, 'main', 'jobs', 'job-process.ts'),
          'batch-worker': join(root, 'main', 'batch', 'worker-process.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      outDir: join(root, 'out', 'preload'),
      rollupOptions: {
        input: { index: join(root, 'main', 'electron', 'preload.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    ...renderer,
    build: { ...renderer.build },
  },
});
