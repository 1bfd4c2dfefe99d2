// Job processes for browser mode and tests: a Node child process (child_process.fork) running job-boot.mjs.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromJob, JobProcess } from './protocol';

export function spawnNodeJobProcess(): JobProcess {
  const child = fork(fileURLToPath(new URL('./job-boot.mjs', import.meta.url)), [], {
    // The job's own stdout would interleave with `emseg serve`'s URL line; its notices go to stderr.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  return {
    send: (m) => child.send(m),
    onMessage: (listener) => child.on('message', (m) => listener(m as FromJob)),
    onExit: (listener) => child.on('exit', (code) => listener(code)),
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}
