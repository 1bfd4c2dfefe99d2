// `emseg serve`: browser mode. Serves the app's renderer and API on the loopback interface and prints one line, the
// URL with its token, on stdout; everything else goes to stderr. Stops on Ctrl-C, ending running jobs.
import { resolve } from 'node:path';
import { UsageError, type Command, type CommandContext } from '../command';
import { isLoopback } from '../../server/security';
import { startBrowserMode } from '../../server/browser-mode';

export async function runServe(ctx: CommandContext): Promise<number> {
  const portText = ctx.values.port;
  const port = portText === undefined ? 0 : Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected 0..65535, got ${String(portText)}`);
  const host = typeof ctx.values.host === 'string' ? ctx.values.host : '127.0.0.1';
  const rootValues = ctx.values.root;
  const roots = [...(Array.isArray(rootValues) ? rootValues.map(String) : []), ...ctx.positionals].map((p) => resolve(p));
  if (!isLoopback(host)) ctx.err(`emseg serve: listening on ${host}: anyone who can reach it and has the token can read your opened folders`);
  const app = await startBrowserMode({ host, port, roots, log: ctx.err });
  ctx.out(app.url);
  await new Promise<void>((done) => {
    const stop = () => done();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await app.close();
  return 0;
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Browser mode: serve the app on 127.0.0.1 and print its URL',
  usage: 'emseg serve [--port N] [--host 127.0.0.1] [--root FOLDER]... [FOLDER...]',
  help: `
Serves the EMSeg app (the same viewer and API as the desktop app) over HTTP on the loopback interface and prints
one line: http://127.0.0.1:<port>/?token=<token>. Open it in Chromium, Chrome, Edge or Firefox.

Every request needs the token (the page keeps it in a cookie); files are reachable only under your home folder,
the sample stack and the FOLDERs given here. Ctrl-C stops the server and any running job.

Options:
  --port N       port to listen on (default: a free one)
  --host ADDR    address to listen on (default 127.0.0.1; anything else exposes the app to your network)
  --root FOLDER  a folder outside your home to make reachable (repeatable; same as a FOLDER argument)
`,
  options: {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    root: { type: 'string', multiple: true },
  },
  run: runServe,
};
