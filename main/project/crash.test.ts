// Kill -9 in the middle of saving: a child process (crash-child.ts) edits and compacts the fixture project in a loop;
// the test kills it with SIGKILL at an acknowledged edit or right after a compaction began, then reopens the project.
// It must open, and hold exactly the first k operations of the fixture sequence, where k covers every acknowledged
// operation (plus at most the one in flight): nothing acknowledged is lost, nothing half-written is read. The child
// also stores job results (maps, proposed labels) now and then: after the kill, every one the project names reads
// back whole, all from one store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FIXTURE, fixtureStateAfter } from './fixtures';
import { Project } from './store';

const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

/** Runs the child until `when` says kill; returns the last acknowledged operation (-1 if none). */
function runAndKill(folder: string, when: (line: string, acked: number) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, folder], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acked = -1;
    let buf = '';
    let killed = false;
    p.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (killed) continue;
        if (line.startsWith('ack ')) acked = Number(line.slice(4));
        if (when(line, acked)) {
          killed = true;
          p.kill('SIGKILL');
        }
      }
    });
    p.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(acked) : reject(new Error(`child exited with ${code ?? signal} before the kill`))));
  });
}

async function checkReopens(folder: string, acked: number): Promise<void> {
  const p = await Project.open(folder);
  try {
    const got = await Promise.all(Array.from({ length: FIXTURE.depth }, (_, z) => p.slice('labels', z).then((l) => l.data)));
    // Operation acked+1 may have reached the journal before the kill; anything beyond cannot have started.
    const matches = [acked + 1, acked + 2].filter((n) => {
      const e = fixtureStateAfter(n);
      return e.undo === p.undoDepth && e.slices.every((s, z) => Buffer.from(s.buffer).equals(Buffer.from(got[z].buffer)));
    });
    assert.ok(matches.length > 0, `after ${acked + 1} acknowledged operations the project matches no prefix of the sequence (undo depth ${p.undoDepth})`);
    // Stored results: both slices from the same store (one commit), each file whole (its checksum holds).
    const stores = new Set<number>();
    for (let z = 0; z < FIXTURE.depth; z++) {
      if (p.mapRounds(z) === 0) continue;
      assert.equal(p.mapRounds(z), 2);
      const map = await p.map(z, 0);
      const proposal = await p.proposal(z);
      assert.ok(map && proposal, `slice ${z}: map and proposal stored together`);
      stores.add(proposal.data[0]);
      assert.ok(proposal.data.every((v) => v === proposal.data[0]));
      assert.ok(map.data.every((v) => Math.abs(v - proposal.data[0] / 1000) < 1e-6));
    }
    assert.ok(stores.size <= 1, 'one store, never half of two');
  } finally {
    await p.close();
  }
  // The reopen cleaned up: no temporary file and one generation's journal.
  const names = await readdir(folder);
  assert.equal(names.filter((n) => n.includes('.tmp-')).length, 0);
  assert.equal(names.filter((n) => n.startsWith('journal-')).length, 1);
}

test('kill -9 at an acknowledged edit and in the middle of compactions never loses or corrupts work', { timeout: 900_000 }, async () => {
  const root = await mkdtemp(join(tmpdir(), 'emseg-crash-test-'));
  try {
    const kills: ((line: string, acked: number) => boolean)[] = [
      (line, acked) => line.startsWith('ack') && acked === 8,
      // Right after a compaction began: the kill lands while slice files, history or project.json are being written.
      (line, acked) => line === 'compact' && acked >= 11,
      (line, acked) => line === 'compact' && acked >= 14,
      // While a job's results are being written, and just after an earlier store committed.
      (line, acked) => line === 'store' && acked >= 15,
      (line, acked) => line === 'ack 17' && acked >= 17,
    ];
    for (const [k, when] of kills.entries()) {
      const folder = join(root, `p${k}`);
      const acked = await runAndKill(folder, when);
      assert.ok(acked >= 8, `child acknowledged only ${acked + 1} operations`);
      await checkReopens(folder, acked);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
