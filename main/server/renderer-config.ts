// The renderer's Vite configuration, shared by `npm run build` (electron.vite.config.ts) and by browser mode's
// first-run build (renderer-assets.ts), so the Electron window and the browser load the same bundle.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import react from '@vitejs/plugin-react';
import type { Plugin, UserConfig } from 'vite';
import { rendererFingerprint, RENDERER_STAMP } from './renderer-assets';

/** Stamps the output with the sources' fingerprint, so browser mode reuses a bundle `npm run build` made. */
function stamp(root: string): Plugin {
  let outDir = '';
  return {
    name: 'emseg-renderer-stamp',
    apply: 'build',
    configResolved(c) {
      outDir = c.build.outDir;
    },
    async closeBundle() {
      const fingerprint = await rendererFingerprint(root);
      await writeFile(join(outDir, RENDERER_STAMP), JSON.stringify({ fingerprint, builtAt: new Date().toISOString() }));
    },
  };
}

export function rendererViteConfig(root: string): UserConfig {
  return {
    root: join(root, 'renderer'),
    // Relative asset URLs: the same files work from app://emseg/ in Electron and from http://127.0.0.1:<port>/.
    base: './',
    plugins: [react(), stamp(root)],
    build: {
      outDir: join(root, 'out', 'renderer'),
      emptyOutDir: true,
      // Electron 45 ships Chromium 142; Debian's Chromium is newer. No transpiling down for older browsers.
      target: 'chrome120',
      // The preload polyfill is an inline script, which the Content-Security-Policy forbids; Chromium needs none.
      modulePreload: { polyfill: false },
      reportCompressedSize: false,
      rollupOptions: { input: join(root, 'renderer', 'index.html') },
    },
    worker: { format: 'es' },
  };
}
