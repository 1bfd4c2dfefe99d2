// The QC report's choices that need no images: which items get thumbnails in a big batch, and the page for failed and
// never-processed items (escaped, self-contained). Thumbnails themselves are checked end to end in batch.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, thumbnailChoice } from './report';
import type { ManifestRecord } from './manifest';

function rec(key: string, status: 'done' | 'failed', vrand?: number): ManifestRecord {
  return {
    v: 1,
    key,
    input: `/in/${key}.png`,
    kind: 'file',
    params: { refineRounds: null, segment: {} as never, tta: false, tilePx: 1024, writeRounds: true },
    paramsHash: 'p',
    model: { membrane: '/m', refiner: null, hash: 'sha256:00' },
    status,
    ...(status === 'failed' ? { error: `/in/${key}.png: <corrupt> & "bad"` } : {}),
    start: '2026-01-01T00:00:00Z',
    end: '2026-01-01T00:00:01Z',
    seconds: { total: 1, segment: 0.8 },
    ...(vrand !== undefined ? { metrics: { vrand, vrandSplit: 1, vrandMerge: 1, vinfo: 1, vinfoSplit: 1, vinfoMerge: 1, randError: 1 - vrand, pixelError: 0, slices: 1 } } : {}),
    host: 'h',
    pid: 1,
  };
}

test('thumbnails in a big batch: the lowest V_rand first, then an even sample; all of a small one', () => {
  const records = Array.from({ length: 1000 }, (_, i) => (i % 10 === 9 ? rec(String(i), 'failed') : rec(String(i), 'done', ((i * 37) % 1000) / 1000)));
  const chosen = thumbnailChoice(records, 100);
  assert.equal(chosen.size, 100);
  assert.ok([...chosen].every((i) => records[i].status === 'done'));
  const worst = records.flatMap((r, i) => (r.status === 'done' ? [[r.metrics!.vrand!, i] as const] : [])).sort((a, b) => a[0] - b[0]).slice(0, 50);
  for (const [, i] of worst) assert.ok(chosen.has(i), `item ${i} is among the 50 worst`);
  assert.ok(Math.max(...chosen) > 900 && Math.min(...chosen) < 100, 'the sample spans the batch');
  assert.equal(thumbnailChoice(records.slice(0, 20), 100).size, 18);
});

test('the page lists failed and missing items first, escapes what users wrote, and fetches nothing', async () => {
  const html = await buildReport('/out', [
    { key: 'a<b>', input: '/in/a<b>.png', record: rec('a<b>', 'failed') },
    { key: 'c', input: '/in/c.png' },
  ]);
  assert.match(html, /Failed and missing items/);
  assert.ok(html.includes('a&#60;b&#62;') && !html.includes('a<b>'));
  assert.ok(html.includes('&#60;corrupt&#62; &#38; &#34;bad&#34;'));
  assert.match(html, /no record: not processed/);
  assert.doesNotMatch(html, /(src|href)="(https?:|\/\/|file:)/);
});
