// Entry of a batch worker process when running from source: registers tsx (resolved from this file, whatever the
// current directory), then loads the TypeScript worker loop.
import { register } from 'tsx/esm/api';

register();
await import('./worker-process.ts');
