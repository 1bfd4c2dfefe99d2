// A progress bar on stderr with rate and ETA. Redraws in place on a TTY, prints a line every few seconds otherwise
// (so CI and cluster logs stay readable), and is silent with --quiet or for work shorter than a second. The rate counts
// only the work done since the first update, so a resumed training run (first update at step 300 of 600) shows its
// real pace and ETA, not the checkpoint's steps divided by this session's seconds.

export interface ProgressBar {
  update(done: number, total?: number, message?: string): void;
  done(message?: string): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.floor(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export interface ProgressBarOptions {
  quiet?: boolean;
  unit?: string;
  /** For tests: where the bar goes (default stderr) and the clock in ms (default performance.now). */
  stream?: { isTTY?: boolean; write(text: string): unknown };
  now?: () => number;
}

export function createProgressBar(label: string, total: number, opts: ProgressBarOptions = {}): ProgressBar {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const clock = opts.now ?? (() => performance.now());
  const start = clock();
  let base: { done: number; t: number } | undefined;
  let lastDraw = 0;
  let shown = false;
  let currentTotal = total;
  const unit = opts.unit ?? '';

  function render(done: number, now: number, message?: string): string {
    const frac = currentTotal > 0 ? Math.min(1, done / currentTotal) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const since = base ? (now - base.t) / 1000 : 0;
    const rate = base && since > 0 ? (done - base.done) / since : 0;
    const eta = rate > 0 ? (currentTotal - done) / rate : Number.NaN;
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const rateText = rate > 0 ? ` ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)}${unit}/s` : '';
    return `${label} [${bar}] ${done}/${currentTotal}${rateText} eta ${formatDuration(eta)}${message ? ` ${message}` : ''}`;
  }

  return {
    update(done, newTotal, message) {
      if (opts.quiet) return;
      if (newTotal !== undefined) currentTotal = newTotal;
      const now = clock();
      base ??= { done, t: now };
      // Work shorter than a second shows no bar at all (done() then prints nothing either).
      if (now - start < 1000) return;
      const interval = tty ? 100 : 5000;
      if (shown && now - lastDraw < interval && done < currentTotal) return;
      lastDraw = now;
      shown = true;
      if (tty) stream.write(`\r\x1b[2K${render(done, now, message)}`);
      else stream.write(`${render(done, now, message)}\n`);
    },
    done(message) {
      if (opts.quiet || !shown) return;
      const elapsed = (clock() - start) / 1000;
      const line = `${label} done in ${formatDuration(elapsed)}${message ? ` ${message}` : ''}`;
      stream.write(tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
    },
  };
}
