// The recent-stacks list: the last stacks opened, newest first, in <config dir>/recent.json. A missing or damaged
// file is an empty list (it is a convenience, never a reason to fail).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../engine/atomic';
import type { RecentEntry } from './contract';

const MAX_RECENT = 12;

export class RecentList {
  constructor(private readonly configDir: string) {}

  private get file(): string {
    return join(this.configDir, 'recent.json');
  }

  async list(): Promise<RecentEntry[]> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as unknown;
      if (!Array.isArray(parsed)) return [];
      return parsed.filter(
        (e): e is RecentEntry =>
          typeof e === 'object' && e !== null && typeof (e as RecentEntry).path === 'string' && typeof (e as RecentEntry).name === 'string',
      );
    } catch {
      return [];
    }
  }

  async add(entry: RecentEntry): Promise<void> {
    const rest = (await this.list()).filter((e) => e.path !== entry.path);
    await mkdir(this.configDir, { recursive: true });
    await writeFileAtomic(this.file, JSON.stringify([entry, ...rest].slice(0, MAX_RECENT), null, 2));
  }
}
