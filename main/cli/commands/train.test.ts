// emseg train --init on images of another pixel size: slices and labels are resized to the model's pixel size, so the
// fine-tuned model stays at it; and the label resizing keeps thin membranes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CommandContext } from '../command';
import { trainCommand } from './train';
import { gridStack, tinyModel } from '../../engine/fixtures';
import { contextPlanes, resizeLabelled, toTrainingSlices, toValidationSlices } from '../../engine/datasets';
import { runCli } from './test-run';
import { initTf } from '../../../ml/tfjs/backend';
import type { ModelRecord } from '../../engine/model-store';

test('resized labels keep a one-pixel membrane when halved and double it when enlarged', () => {
  const [w, h] = [16, 8];
  const label = new Uint8Array(w * h).fill(255);
  for (let y = 0; y < h; y++) label[y * w + 7] = 0;
  const s = { index: 3, raw: { width: w, height: h, data: Uint8Array.from(label, (v) => (v === 0 ? 50 : 200)) }, label: { width: w, height: h, data: label } };
  const half = resizeLabelled(s, 0.5, 0.5, 0);
  assert.deepEqual([half.index, half.raw.width, half.raw.height, half.label.width], [3, 8, 4, 8]);
  const row = Array.from(half.label.data.subarray(0, 8));
  assert.deepEqual(row.map((v) => (v === 0 ? 'm' : '.')).join(''), '...m....', 'the membrane survives halving, in the right column');
  const twice = resizeLabelled(s, 2, 2, 0);
  assert.deepEqual(Array.from(twice.label.data.subarray(0, 32)).flatMap((v, x) => (v === 0 ? [x] : [])), [14, 15]);
  // Output column 14 sits at input column 6.75: a quarter of the interior (200), three quarters of the membrane (50).
  assert.deepEqual([twice.raw.data[0], twice.raw.data[14]].map((v) => Number(v.toFixed(3))), [200, 87.5]);
});

test('emseg train --init at another pixel size trains resized and keeps the model\'s pixel size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'emseg-train-px-'));
  try {
    const { images, labels } = await gridStack(dir, 3, 48);
    const init = await tinyModel(join(dir, 'init'), { kind: 'unet', baseChannels: 2, depth: 2, inChannels: 1 }, 'membrane', undefined, 5);
    const path = join(init, 'model.json');
    await writeFile(path, JSON.stringify({ ...(JSON.parse(await readFile(path, 'utf8')) as ModelRecord), pixelSizeNm: 4 }));
    const out = join(dir, 'out');
    const args = ['--images', images, '--labels', labels, '--label-membrane-value', '0', '--val-slices', '2', '--out', out, '--init', init,
      '--pixel-size', '8', '--base-channels', '2', '--depth', '2', '--crop', '64', '--steps', '2', '--eval-every', '2', '--batch', '1', '--workers', '1'];
    const parsed = parseArgs({ args, options: trainCommand.options, allowPositionals: true, strict: true });
    const err: string[] = [];
    const ctx: CommandContext = { values: parsed.values as CommandContext['values'], positionals: [], quiet: false, out: () => undefined, err: (l) => err.push(l) };
    assert.equal(await trainCommand.run(ctx), 0);
    assert.ok(err.some((l) => l.includes('images 8 nm, --init model 4 nm; slices and labels are resized 2× for training')), err.join('\n'));
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as ModelRecord;
    assert.equal(record.pixelSizeNm, 4);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('emseg train --z-context widens an --init model to read its neighbours, and will not drop them again', async () => {
  await initTf('cpu');
  const dir = await mkdtemp(join(tmpdir(), 'emseg-train-z-'));
  try {
    const { images, labels } = await gridStack(dir, 4, 32);
    const init = await tinyModel(join(dir, 'init'), { kind: 'unet', baseChannels: 2, depth: 1, inChannels: 1 }, 'membrane', undefined, 5);
    const data = ['--images', images, '--labels', labels, '--label-membrane-value', '0', '--val-slices', '3', '--pixel-size', '4', '--quiet'];
    const run = ['train', ...data, '--crop', '16', '--steps', '1', '--eval-every', '1', '--batch', '1', '--workers', '1'];
    const out = join(dir, 'z1');
    const ok = await runCli([...run, '--init', init, '--z-context', '1', '--section-nm', '50', '--out', out]);
    assert.equal(ok.code, 0, ok.err);
    const record = JSON.parse(await readFile(join(out, 'model.json'), 'utf8')) as ModelRecord;
    assert.deepEqual(record.config, { kind: 'unet', baseChannels: 2, depth: 1, inChannels: 3, zContext: 1 });
    assert.equal(record.sectionNm, 50);
    assert.match(await readFile(join(out, 'README.md'), 'utf8'), /and the 1 slice\(s\) on each side of it \(z-context/);
    const drop = await runCli([...run, '--init', out, '--z-context', '0', '--out', join(dir, 'z0')]);
    assert.equal(drop.code, 2);
    assert.match(drop.err, /^emseg train: .*reads 1 slice\(s\) on each side; --z-context 0 cannot drop them/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('each set reads its z-context from its own slices: a training slice never reads a validation slice', () => {
  const slice = (index: number) => ({ index, raw: { width: 2, height: 1, data: Uint8Array.of(index * 10, index * 10 + 5) }, label: { width: 2, height: 1, data: Uint8Array.of(0, 255) } });
  const train = [0, 1, 2].map(slice);
  const val = [3, 4].map(slice);
  // Each slice's own plane is the centre channel; a neighbour is the very plane of that neighbour.
  const ids = (set: ReturnType<typeof slice>[], planes: Float32Array[][]) => planes.map((p) => p.map((q) => set[planes.findIndex((r) => r[1] === q)].index));
  assert.deepEqual(ids(train, contextPlanes(train, 1)), [[1, 0, 1], [0, 1, 2], [1, 2, 1]]);
  assert.deepEqual(ids(val, contextPlanes(val, 1)), [[4, 3, 4], [3, 4, 3]]);
  const t = toTrainingSlices(train, 0, 1);
  assert.deepEqual([t[0].channels, t[0].raw.length, Array.from(t[0].target)], [3, 6, [1, 0]]);
  const v = toValidationSlices(val, 1);
  assert.deepEqual([v[1].index, v[1].channels, v[1].input.length], [4, 3, 6]);
});
