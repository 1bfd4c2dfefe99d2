#!/usr/bin/env node
// The test command: unit tests (node:test over every *.test.ts beside the code in ml/ and main/, run through tsx)
// then the Playwright end-to-end specs in e2e/. `--unit` or `--e2e` runs one half; further arguments filter files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const args = process.argv.slice(2);
const onlyUnit = args.includes('--unit');
const onlyE2e = args.includes('--e2e');
const filters = args.filter((a) => !a.startsWith('--'));

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

let status = 0;
if (!onlyE2e) {
  const files = ['ml', 'main']
    .flatMap((d) => findTests(join(root, d)))
    .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
    .sort();
  const concurrency = process.env.EMSEG_TEST_CONCURRENCY ?? '2';
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
    { cwd: root, stdio: 'inherit' },
  );
  status = r.status ?? 1;
}
if (!onlyUnit && status === 0 && existsSync(join(root, 'e2e', 'playwright.config.ts'))) {
  const cli = join(root, 'node_modules', '@playwright', 'test', 'cli.js');
  const r = spawnSync(process.execPath, [cli, 'test', '-c', 'e2e/playwright.config.ts', ...filters], {
    cwd: root,
    stdio: 'inherit',
  });
  status = r.status ?? 1;
}
process.exit(status);
