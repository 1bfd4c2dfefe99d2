#!/usr/bin/env node
// The `emseg` command. It runs the TypeScript sources directly through tsx, so `npx emseg` works right after `npm ci`
// with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./index.ts');
process.exitCode = await main(process.argv.slice(2));
