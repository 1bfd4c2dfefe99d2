// The crash test's victim (crash.test.ts): opens or creates the fixture project in the folder it is given and runs
// the fixture operations for ever, compacting often so a kill lands in the middle of a save. It prints `ack <i>` once
// operation i is journaled (what a user would see as done), `compact` just before each compaction starts and `store`
// just before a job's results (maps and proposed labels for both slices, every pixel equal to i / 1000 and i) are
// stored, which writes files while edits go on and then commits them with a compaction.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FIXTURE, fixtureInitial, fixtureOp } from './fixtures';
import { Project, type SliceResults } from './store';

const folder = process.argv[2];
if (!folder) {
  process.stderr.write('usage: crash-child.ts <project folder>\n');
  process.exit(2);
}
const exists = await stat(join(folder, 'project.json')).then(
  () => true,
  () => false,
);
// The autosave timers run too (every 5 ms), besides the explicit compactions below.
const opts = { syncIntervalMs: 5, compactIntervalMs: 5 };
const p = exists
  ? await Project.open(folder, opts)
  : await Project.create(folder, { stackPath: '/data/stack.tif', ...FIXTURE, initial: async (layer, z) => (layer === 'labels' ? fixtureInitial(z) : null) }, opts);
for (let i = 0; ; i++) {
  const op = fixtureOp(i);
  if (op.kind === 'paint') await p.edit('labels', op.z, op.make);
  else if (op.kind === 'undo') await p.undo();
  else await p.redo();
  process.stdout.write(`ack ${i}\n`);
  if (i % 3 === 2) {
    process.stdout.write('compact\n');
    await p.compact();
  }
  if (i % 4 === 3) {
    process.stdout.write('store\n');
    const n = FIXTURE.width * FIXTURE.height;
    const results = async function* (): AsyncGenerator<SliceResults> {
      for (let z = 0; z < FIXTURE.depth; z++) yield { z, maps: [new Float32Array(n).fill(i / 1000), new Float32Array(n).fill(i / 1000)], labels: new Uint32Array(n).fill(i) };
    };
    // Not awaited before the next edit: storing runs beside the edits, as when a job ends while the user works.
    void p.storeResults(results());
  }
}
