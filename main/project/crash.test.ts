// Kill -9 in the middle of saving: a child process (crash-child.ts) edits and compacts the fixture project in a loop;
// the test kills it with SIGKILL at an acknowledged edit or right after a compaction began, then reopens the project.
// It must open, and hold exactly the first k operations of the fixture sequence, where k covers every operation
// acknowledged when the kill was decided, and at most those the child acknowledged before the kill landed plus the
// one in flight: nothing acknowledged is lost, nothing half-written is read. The child
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

/**
 * Runs the child until `when` says kill. Returns the last operation acknowledged when the kill was decided, and the
 * last one the child acknowledged at all: the kill lands a moment later, and on a busy machine the child may finish
 * another operation or two first (its acknowledgements still reach the pipe, which is synchronous on Linux).
 */
function runAndKill(folder: string, when: (line: string, acked: number) => boolean): Promise<{ acked: number; last: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, folder], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acked = -1;
    let last = -1;
    let buf = '';
    let killed = false;
    p.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('ack ')) last = Number(line.slice(4));
        if (killed) continue;
        acked = last;
        if (when(line, acked)) {
          killed = true;
          p.kill('SIGKILL');
        }
      }
    });
    // 'close', not 'exit': every line the child wrote has been read by then.
    p.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve({ acked, last }) : reject(new Error(`child exited with ${code ?? signal} before the kill`))));
  });
}

async function checkReopens(folder: string, { acked, last }: { acked: number; last: number }): Promise<void> {
  const p = await Project.open(folder);
  try {
    const got = await Promise.all(Array.from({ length: FIXTURE.depth }, (_, z) => p.slice('labels', z).then((l) => l.data)));
    // Every acknowledged operation is there; the one after the last acknowledged may have reached the journal too.
    const counts = Array.from({ length: last - acked + 2 }, (_, i) => acked + 1 + i);
    const matches = counts.filter((n) => {
      const e = fixtureStateAfter(n);
      return e.undo === p.undoDepth && e.slices.every((s, z) => Buffer.from(s.buffer).equals(Buffer.from(got[z].buffer)));
    });
    assert.ok(matches.length > 0, `after ${acked + 1} acknowledged operations (${last + 1} when the child died) the project matches no prefix of the sequence from ${acked + 1} to ${last + 2} operations (undo depth ${p.undoDepth})`);
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
      const run = await runAndKill(folder, when);
      assert.ok(run.acked >= 8, `child acknowledged only ${run.acked + 1} operations`);
      await checkReopens(folder, run);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
