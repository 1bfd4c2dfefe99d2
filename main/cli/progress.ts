// A progress bar on stderr with rate and ETA. Redraws in place on a TTY, prints a line every few seconds otherwise
// (so CI and cluster logs stay readable), and is silent with --quiet or for work shorter than a second.

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

export function createProgressBar(label: string, total: number, opts: { quiet?: boolean; unit?: string } = {}): ProgressBar {
  const stream = process.stderr;
  const tty = stream.isTTY === true;
  const start = performance.now();
  let lastDraw = 0;
  let shown = false;
  let currentTotal = total;
  const unit = opts.unit ?? '';

  function render(done: number, message?: string): string {
    const elapsed = (performance.now() - start) / 1000;
    const frac = currentTotal > 0 ? Math.min(1, done / currentTotal) : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const rate = elapsed > 0 ? done / elapsed : 0;
    const eta = rate > 0 ? (currentTotal - done) / rate : Number.NaN;
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const rateText = rate > 0 ? ` ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)}${unit}/s` : '';
    return `${label} [${bar}] ${done}/${currentTotal}${rateText} eta ${formatDuration(eta)}${message ? ` ${message}` : ''}`;
  }

  return {
    update(done, newTotal, message) {
      if (opts.quiet) return;
      if (newTotal !== undefined) currentTotal = newTotal;
      const now = performance.now();
      // Work shorter than a second shows no bar at all (done() then prints nothing either).
      if (now - start < 1000) return;
      const interval = tty ? 100 : 5000;
      if (shown && now - lastDraw < interval && done < currentTotal) return;
      lastDraw = now;
      shown = true;
      if (tty) stream.write(`\r\x1b[2K${render(done, message)}`);
      else stream.write(`${render(done, message)}\n`);
    },
    done(message) {
      if (opts.quiet || !shown) return;
      const elapsed = (performance.now() - start) / 1000;
      const line = `${label} done in ${formatDuration(elapsed)}${message ? ` ${message}` : ''}`;
      stream.write(tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
    },
  };
}
