// StackError: the one error the IO layer throws for problems with the user's files (missing, truncated, corrupt,
// unsupported). It carries the offending file and prints as one line `<file>: <problem>`; `userFacing` tells the CLI
// to print it as such with exit code 2 instead of a stack trace.

export class StackError extends Error {
  readonly file: string;
  readonly problem: string;
  readonly userFacing = true;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    // One line, whatever a decoder library put in its message.
    const oneLine = problem.replace(/\s*[\r\n]+\s*/g, ' ').trim();
    super(`${file}: ${oneLine}`, options);
    this.name = 'StackError';
    this.file = file;
    this.problem = oneLine;
  }
}

/** Turns a node:fs error about `file` into a StackError the user can act on; other errors pass through unchanged. */
export function fsError(file: string, e: unknown): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return new StackError(file, 'no such file or folder', { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new StackError(file, 'permission denied', { cause: e });
    case 'ENOTDIR':
      return new StackError(file, 'a parent of this path is not a folder', { cause: e });
    case 'ENOSPC':
      return new StackError(file, 'no space left on the device', { cause: e });
    case 'EISDIR':
      return new StackError(file, 'is a folder, expected a file', { cause: e });
    default:
      return e;
  }
}
