// Entry of a job child process when running from source (browser mode, `emseg serve`): registers tsx, resolved from
// this file whatever the current directory, then loads the TypeScript job process. The Electron app instead runs the
// bundled out/main/job-process.mjs in a utility process.
import { register } from 'tsx/esm/api';

register();
await import('./job-process.ts');
