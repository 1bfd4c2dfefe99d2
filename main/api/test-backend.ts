// Tests' backend: the real createBackend with the options every API test shares (browser transport, no job
// processes, config and results inside the test's folder); each test adds what it is about (home, sample, models).
import { join } from 'node:path';
import { createBackend, type Backend, type BackendOptions } from './backend';
import type { JobProcess } from '../jobs/protocol';

const noJobs = (): JobProcess => {
  throw new Error('no job processes in this test');
};

export function createTestBackend(dir: string, opts: Partial<BackendOptions> = {}): Promise<Backend> {
  return createBackend({
    transport: 'browser',
    spawnJob: noJobs,
    configDir: join(dir, 'config'),
    resultsDir: join(dir, 'results'),
    onEvent: () => undefined,
    ...opts,
  });
}
