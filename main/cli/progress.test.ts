// The CLI progress bar: rate and ETA from the work done since the first update (a resumed run starts mid-way), and
// one line per update interval when the stream is not a terminal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgressBar, formatDuration } from './progress';

function fakeBar(total: number) {
  let t = 0;
  const lines: string[] = [];
  const bar = createProgressBar('train', total, { stream: { isTTY: false, write: (s: string) => lines.push(s.trim()) }, now: () => t });
  return { bar, lines, advance: (ms: number) => (t += ms) };
}

test('a run resumed at step 300 of 600 shows the pace of this session, not 300 steps in a few seconds', () => {
  const { bar, lines, advance } = fakeBar(600);
  advance(30_000); // start-up: reading data, starting workers
  bar.update(300);
  advance(10_000);
  bar.update(310);
  assert.deepEqual(lines, [
    'train [############------------] 300/600 eta --',
    'train [############------------] 310/600 1.00/s eta 4m50s',
  ]);
});

test('a fresh run measures from its first update, and lines are at least 5 s apart off a terminal', () => {
  const { bar, lines, advance } = fakeBar(100);
  bar.update(0);
  advance(2_000);
  bar.update(4);
  advance(1_000);
  bar.update(6); // 1 s after the last line: skipped
  advance(5_000);
  bar.update(16);
  assert.deepEqual(lines, ['train [#-----------------------] 4/100 2.00/s eta 48s', 'train [####--------------------] 16/100 2.00/s eta 42s']);
  bar.done();
  assert.equal(lines.at(-1), 'train done in 8s');
  assert.equal(formatDuration(3_725), '1h02m');
});
