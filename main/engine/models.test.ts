// Model folders are named in records and model cards the same way on every clone: 'sample-data/…' for shipped ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DEFAULT_REFINER_MODEL, modelLabel, SAMPLE_DATA } from './models';

test('modelLabel names shipped folders from the repository root and leaves others as given', () => {
  assert.equal(modelLabel(DEFAULT_REFINER_MODEL), 'sample-data/models/refiner');
  assert.equal(modelLabel(join(SAMPLE_DATA, 'models', 'compressed', 'int8')), 'sample-data/models/compressed/int8');
  assert.equal(modelLabel('/elsewhere/runs/refiner'), '/elsewhere/runs/refiner');
  assert.equal(modelLabel(join(SAMPLE_DATA, '..', 'sample-data-copy', 'm')), join(SAMPLE_DATA, '..', 'sample-data-copy', 'm'), 'a sibling folder is not under sample-data/');
});
