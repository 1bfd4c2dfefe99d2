// Model folders are named in records and model cards the same way on every clone: 'sample-data/…' for shipped ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DEFAULT_REFINER_MODEL, cpuHasVnni, int8Warning, modelLabel, SAMPLE_DATA } from './models';
import type { ModelRecord } from './model-store';

test('modelLabel names shipped folders from the repository root and leaves others as given', () => {
  assert.equal(modelLabel(DEFAULT_REFINER_MODEL), 'sample-data/models/refiner');
  assert.equal(modelLabel(join(SAMPLE_DATA, 'models', 'compressed', 'int8')), 'sample-data/models/compressed/int8');
  assert.equal(modelLabel('/elsewhere/runs/refiner'), '/elsewhere/runs/refiner');
  assert.equal(modelLabel(join(SAMPLE_DATA, '..', 'sample-data-copy', 'm')), join(SAMPLE_DATA, '..', 'sample-data-copy', 'm'), 'a sibling folder is not under sample-data/');
});

test('an int8 model with 8-bit weights warns on a CPU without VNNI, and only there', () => {
  assert.equal(cpuHasVnni('processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n'), false);
  assert.equal(cpuHasVnni('flags\t\t: fpu avx2 avx512f avx512_vnni\n'), true);
  assert.equal(cpuHasVnni('flags\t\t: fpu avx2 avx_vnni\n'), true);
  const record = (compression?: Record<string, unknown>) => ({ format: 'emseg-model', version: 1, role: 'membrane', compression } as unknown as ModelRecord);
  const full = record({ method: 'int8', reduceRange: false });
  assert.match(int8Warning('m', full, false) ?? '', /^m: int8 model with 8-bit weights .* without VNNI/);
  assert.equal(int8Warning('m', full, true), undefined, 'VNNI: 8-bit weights are fine');
  assert.equal(int8Warning('m', full, null), undefined, 'unknown CPU: no guess');
  assert.equal(int8Warning('m', record({ method: 'int8', reduceRange: true }), false), undefined, '7-bit weights are fine everywhere');
  assert.equal(int8Warning('m', record({ method: 'structured' }), false), undefined);
  assert.equal(int8Warning('m', record(), false), undefined);
});
