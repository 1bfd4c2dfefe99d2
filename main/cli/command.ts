// What every `emseg` subcommand provides, and the shared exit codes.
import type { ParseArgsConfig } from 'node:util';

export const EXIT_OK = 0;
/** Something the user gave is wrong: a bad file, a bad option. */
export const EXIT_USAGE = 2;
/** The command ran but some of its work failed (for example some batch items). */
export const EXIT_PARTIAL = 3;
/** An unexpected internal error. */
export const EXIT_INTERNAL = 1;

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  /** Parsed option values (strings and booleans as node:util parseArgs gives them). */
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
  quiet: boolean;
  /** Human-readable output (tables, summaries). */
  out: (line: string) => void;
  /** Notices and progress go to stderr so that stdout stays machine-readable. */
  err: (line: string) => void;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Longer help text printed by `emseg <command> --help`. */
  help: string;
  options: OptionSpec;
  run(ctx: CommandContext): Promise<number>;
}

/** An error the user can fix; printed as one line, exit code 2. */
export class UsageError extends Error {}
