// Entry of every EMSeg worker thread when running from source: registers tsx (resolved from this file, so it works
// whatever the current directory) and then loads the TypeScript module named in workerData.entry.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
