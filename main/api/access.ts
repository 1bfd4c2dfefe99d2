// Which files a renderer may name. A caller hands us paths (openStack, browseFolder); we accept a path only when, with
// `..` and symlinks resolved, it lies inside one of the allowed roots: the folders the user opened (the sample folder,
// folders given on the command line, stacks opened or picked in a dialog) and, for browsing, the home folder.
// Everything else is 403, whatever the spelling. Resolving symlinks matters: a link inside home pointing at /etc
// would otherwise be a way out.
import { realpath } from 'node:fs/promises';
import { basename, isAbsolute, relative, resolve, sep } from 'node:path';
import { ApiError } from './door';

export class AccessGuard {
  private readonly roots = new Map<string, string>(); // real path -> display name

  /** Adds a root (ignored when it does not exist). Roots are stored with symlinks resolved. */
  async addRoot(path: string, name?: string): Promise<void> {
    try {
      const real = await realpath(path);
      if (!this.roots.has(real)) this.roots.set(real, name ?? (basename(real) || real));
    } catch {
      // A root that does not exist (no sample data installed) simply grants nothing.
    }
  }

  list(): { name: string; path: string }[] {
    return [...this.roots].map(([path, name]) => ({ name, path }));
  }

  /** Is `real` (already resolved) inside a root? */
  containsReal(real: string): boolean {
    for (const root of this.roots.keys()) {
      if (real === root) return true;
      const rel = relative(root, real);
      if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('..')) return true;
    }
    return false;
  }

  /**
   * The resolved path when `path` lies inside a root; ApiError 403 otherwise, and 404 when it is inside a root's
   * spelling but does not exist (so a missing file under an opened folder says so, while probing for files
   * elsewhere learns nothing: outside paths get 403 whether or not they exist).
   */
  async check(path: string): Promise<string> {
    if (!isAbsolute(path)) throw new ApiError('forbidden', `not an absolute path: ${path}`);
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      if (this.containsReal(resolve(path))) throw new ApiError('not-found', `${path}: no such file or folder`);
      throw new ApiError('forbidden', `${path}: outside the folders you opened`);
    }
    if (!this.containsReal(real)) throw new ApiError('forbidden', `${path}: outside the folders you opened`);
    return real;
  }
}
