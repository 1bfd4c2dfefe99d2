// `emseg` entry: parses the subcommand and its options, prints help, and maps errors to one line and an exit code.
import { parseArgs } from 'node:util';
import { commands } from './commands/registry';
import { EXIT_INTERNAL, EXIT_USAGE, UsageError, type Command } from './command';

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'emseg — neuron segmentation for electron-microscopy stacks',
    '',
    'Usage: emseg <command> [options]   (emseg <command> --help for details)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

function commandHelp(c: Command): string {
  return [`Usage: ${c.usage}`, '', c.help.trim(), ''].join('\n');
}

/** Is this error one the user can act on (bad file, bad option) rather than a bug? */
function isUserError(e: unknown): e is Error {
  return e instanceof UsageError || (e instanceof Error && (e as { userFacing?: boolean }).userFacing === true);
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${topHelp()}\n`);
    return name ? 0 : EXIT_USAGE;
  }
  if (name === '--version') {
    process.stdout.write('emseg 0.1.0\n');
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`emseg: unknown command '${name}'. Run 'emseg --help' for the list.\n`);
    return EXIT_USAGE;
  }
  try {
    const parsed = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' }, quiet: { type: 'boolean', short: 'q' } },
      allowPositionals: true,
      strict: true,
    });
    if (parsed.values.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    return await command.run({
      values: parsed.values as Record<string, string | boolean | string[] | boolean[] | undefined>,
      positionals: parsed.positionals,
      quiet: parsed.values.quiet === true,
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (e) {
    if (isUserError(e) || (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`emseg ${name}: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`emseg ${name}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT_INTERNAL;
  }
}
