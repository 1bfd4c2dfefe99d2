// A batch worker process: takes items from the coordinator over the IPC channel, one at a time, and answers each with
// its manifest record. Processes, not threads: a decoder crash or an out-of-memory kill takes down one worker and one
// item, which the coordinator records as failed before starting a fresh worker.
import { processItem } from './process-item';
import type { FromWorker, ToWorker } from './task';

function send(m: FromWorker): void {
  process.send?.(m);
}

// The coordinator is gone (it finished, or was killed — even with kill -9 the channel closes): stop at once rather
// than finish an item nobody will record. Its half-written output stays under .emseg/partial, which the next run clears.
process.on('disconnect', () => process.exit(0));

process.on('message', (m: ToWorker) => {
  if (m.type !== 'item') return;
  const key = m.task.item.key;
  // The stack is opened more than once per item (probe, pipeline): say each thing once.
  const said = new Set<string>();
  const onNotice = (message: string): void => {
    if (said.has(message)) return;
    said.add(message);
    send({ type: 'notice', key, message });
  };
  processItem(m.task, { onNotice }).then(
    (outcome) => send({ type: 'result', outcome, maxRssKiB: process.resourceUsage().maxRSS }),
    // processItem records every error of the item itself; reaching this is a bug: die, and the coordinator records
    // the item as failed with the exit code.
    (e: unknown) => {
      process.stderr.write(`emseg batch worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(70);
    },
  );
});

send({ type: 'ready' });
