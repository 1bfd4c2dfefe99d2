// Test helper: runs the CLI in-process and collects what it prints.
import { main } from '../index';

/** Runs `emseg <argv>` in-process and collects the CLI's (string) lines; node:test's binary chunks pass through. */
export async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = process.stdout.write;
  const err = process.stderr.write;
  const texts = { out: '', err: '' };
  const collect = (real: typeof out, into: 'out' | 'err'): typeof out =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      if (typeof chunk !== 'string') return (real as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      texts[into] += chunk;
      return true;
    } as typeof out;
  process.stdout.write = collect(out, 'out');
  process.stderr.write = collect(err, 'err');
  try {
    return { code: await main(argv), ...texts };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
