// The batch QC report: one self-contained HTML page (inline CSS, thumbnails as data: URIs, plots as inline SVG, no
// script, nothing fetched) that a user scrolls through the morning after a run. At the top: counts, failures with their
// one-line errors, and plots of the metrics and timings across items (each point links to its item). Below: one card
// per item with thumbnails of the middle slice — raw, membrane map, labels over the raw — its timings and its scores.
//
// Thumbnails are made from the files on disk when the report is written (not by the workers), so `--merge` can write
// the report of a run done in shards on other machines. Slices are reduced to thumbnail size before colouring, so a
// 16k² slice costs its own read and no more.
import { join } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../engine/atomic';
import { openStack } from '../io';
import type { Image2D } from '../../ml/types';
import type { ManifestRecord } from './manifest';

export interface ReportEntry {
  key: string;
  input: string;
  /** The item's latest record; absent when it was never processed (a shard that did not run). */
  record?: ManifestRecord;
}

export interface ReportOptions {
  title?: string;
  /** Longest thumbnail edge in pixels. */
  thumbPx?: number;
  /** Items that get thumbnails at most (each adds ~100 KB to the page). */
  maxThumbnailItems?: number;
  onNotice?: (message: string) => void;
}

const DEFAULT_THUMB_PX = 192;
// About 30 MB of page: still opens in a browser in a second or two. Past that, a page of 10 000 items' thumbnails
// would be a gigabyte nobody scrolls through.
const DEFAULT_MAX_THUMBNAIL_ITEMS = 300;

/**
 * Which done items get thumbnails when there are too many: half the budget for the lowest V_rand (what a user wants
 * to look at), the rest spread evenly over the others.
 */
export function thumbnailChoice(records: ReadonlyArray<ManifestRecord | undefined>, budget: number): Set<number> {
  const done = records.flatMap((r, i) => (r?.status === 'done' ? [i] : []));
  if (done.length <= budget) return new Set(done);
  const scored = done.filter((i) => typeof records[i]!.metrics?.vrand === 'number');
  const worst = scored.sort((a, b) => records[a]!.metrics!.vrand! - records[b]!.metrics!.vrand!).slice(0, Math.floor(budget / 2));
  const chosen = new Set(worst);
  const rest = done.filter((i) => !chosen.has(i));
  const n = budget - chosen.size;
  for (let k = 0; k < n; k++) chosen.add(rest[Math.floor((k * rest.length) / n)]);
  return chosen;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const fmt = (v: number | null | undefined, digits = 4): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

interface Thumb {
  width: number;
  height: number;
  /** Source pixel (x, y) of each thumbnail pixel's block: [x0, x1) × [y0, y1). */
  xs: Int32Array;
  ys: Int32Array;
}

function thumbGeometry(width: number, height: number, maxPx: number): Thumb {
  const scale = Math.min(1, maxPx / Math.max(width, height));
  const tw = Math.max(1, Math.round(width * scale));
  const th = Math.max(1, Math.round(height * scale));
  const xs = new Int32Array(tw + 1);
  const ys = new Int32Array(th + 1);
  for (let i = 0; i <= tw; i++) xs[i] = Math.min(width, Math.round((i * width) / tw));
  for (let i = 0; i <= th; i++) ys[i] = Math.min(height, Math.round((i * height) / th));
  return { width: tw, height: th, xs, ys };
}

/** Block means of a grey or map slice, scaled to 0..255: uint8 as is, float maps as P·255, others from min to max. */
function greyThumb(img: Image2D, t: Thumb, kind: 'raw' | 'map'): Uint8Array {
  const { data, width } = img;
  let lo = 0;
  let hi = 255;
  if (kind === 'map') hi = 1;
  else if (!(data instanceof Uint8Array)) {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) hi = lo + 1;
  }
  const out = new Uint8Array(t.width * t.height);
  for (let ty = 0; ty < t.height; ty++) {
    for (let tx = 0; tx < t.width; tx++) {
      let sum = 0;
      let n = 0;
      for (let y = t.ys[ty]; y < Math.max(t.ys[ty + 1], t.ys[ty] + 1); y++) {
        for (let x = t.xs[tx]; x < Math.max(t.xs[tx + 1], t.xs[tx] + 1); x++) {
          sum += data[y * width + x];
          n++;
        }
      }
      out[ty * t.width + tx] = Math.max(0, Math.min(255, Math.round(((sum / n - lo) / (hi - lo)) * 255)));
    }
  }
  return out;
}

/** A stable, well-spread colour per label id (golden-ratio hues), so neighbours rarely share one. */
function labelColour(id: number): [number, number, number] {
  const h = (id * 0.618033988749895) % 1;
  const s = 0.75;
  const v = 0.95;
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const u = v * (1 - (1 - f) * s);
  const [r, g, b] = [
    [v, u, p],
    [q, v, p],
    [p, v, u],
    [p, q, v],
    [u, p, v],
    [v, p, q],
  ][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

/** Labels (nearest sample at each block's centre) at 55 % over the grey thumbnail; boundary (0) shows the raw. */
function overlayThumb(labels: Image2D, grey: Uint8Array, t: Thumb): Uint8Array {
  const out = new Uint8Array(t.width * t.height * 3);
  for (let ty = 0; ty < t.height; ty++) {
    const y = Math.min(labels.height - 1, (t.ys[ty] + t.ys[ty + 1]) >> 1);
    for (let tx = 0; tx < t.width; tx++) {
      const x = Math.min(labels.width - 1, (t.xs[tx] + t.xs[tx + 1]) >> 1);
      const id = labels.data[y * labels.width + x];
      const g = grey[ty * t.width + tx];
      const o = (ty * t.width + tx) * 3;
      if (id === 0) {
        out[o] = out[o + 1] = out[o + 2] = g;
      } else {
        const c = labelColour(id);
        for (let k = 0; k < 3; k++) out[o + k] = Math.round(0.55 * c[k] + 0.45 * g);
      }
    }
  }
  return out;
}

async function png(data: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<string> {
  const buf = await sharp(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { raw: { width, height, channels } }).png().toBuffer();
  return `data:image/png;base64,${buf.toString('base64')}`;
}

async function readSliceOf(path: string, z: number): Promise<Image2D> {
  const s = await openStack(path, { cacheBytes: 0 });
  try {
    return await s.readSlice(Math.min(z, s.info.depth - 1));
  } finally {
    await s.close();
  }
}

/** Raw, map and overlay thumbnails of the item's middle slice, as data: URIs. */
export async function itemThumbnails(outDir: string, r: ManifestRecord, maxPx = DEFAULT_THUMB_PX): Promise<{ z: number; raw: string; map: string; overlay: string }> {
  const z = Math.floor((r.slices ?? 1) / 2);
  const raw = await readSliceOf(r.input, z);
  const t = thumbGeometry(raw.width, raw.height, maxPx);
  const grey = greyThumb(raw, t, 'raw');
  const rawUri = await png(grey, t.width, t.height, 1);
  const map = await readSliceOf(join(outDir, r.key, 'membrane.tif'), z);
  const mapUri = await png(greyThumb(map, t, 'map'), t.width, t.height, 1);
  const labels = await readSliceOf(join(outDir, r.key, 'labels.tif'), z);
  const overlayUri = await png(overlayThumb(labels, grey, t), t.width, t.height, 3);
  return { z, raw: rawUri, map: mapUri, overlay: overlayUri };
}

interface Series {
  name: string;
  colour: string;
  values: Array<number | null>;
}

/** A line plot over items (x = item index) with points linking to the items' cards. */
function linePlot(title: string, series: Series[], keys: string[], yMax: number | null, unit: string): string {
  const W = 900;
  const H = 220;
  const m = { l: 48, r: 12, t: 24, b: 28 };
  const n = keys.length;
  const all = series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  if (all.length === 0) return '';
  const top = yMax ?? (all.reduce((a, b) => Math.max(a, b), 0) * 1.1 || 1);
  const x = (i: number): number => m.l + (n <= 1 ? (W - m.l - m.r) / 2 : (i * (W - m.l - m.r)) / (n - 1));
  const y = (v: number): number => H - m.b - (Math.min(v, top) / top) * (H - m.t - m.b);
  const parts: string[] = [`<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title)}">`, `<text x="${m.l}" y="15" class="pt">${esc(title)}</text>`];
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${m.l - 6}" y="${y(v) + 4}" class="ax" text-anchor="end">${v.toPrecision(3)}</text>`);
  }
  parts.push(`<text x="${W - m.r}" y="${H - 6}" class="ax" text-anchor="end">item →</text>`);
  series.forEach((s, si) => {
    let path = '';
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      path += `${path === '' ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    if (n > 1) parts.push(`<path d="${path}" fill="none" stroke="${s.colour}" stroke-width="1.5"/>`);
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      parts.push(`<a href="#item-${i}"><circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${s.colour}"><title>${esc(keys[i])}: ${s.name} ${v.toPrecision(4)}${unit}</title></circle></a>`);
    });
    parts.push(`<rect x="${m.l + 10 + si * 130}" y="${H - 14}" width="10" height="10" fill="${s.colour}"/><text x="${m.l + 24 + si * 130}" y="${H - 5}" class="ax">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta{color:#555}.ok{color:#1a7f37}.bad{color:#c62828}.muted{color:#777}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #e5e5e5;vertical-align:top}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px;margin:10px 0}
.card.failed{border-color:#e57373;background:#fff5f5}
.thumbs{display:flex;gap:8px;flex-wrap:wrap;margin:6px 0}.thumbs figure{margin:0}
.thumbs img{image-rendering:pixelated;border:1px solid #ccc;display:block;width:192px;height:auto}
figcaption{font-size:12px;color:#666}
svg{background:#fff;border:1px solid #ddd;border-radius:6px;margin:6px 0;max-width:900px}
.pt{font-size:13px;font-weight:600}.ax{font-size:11px;fill:#555}.grid{stroke:#eee}
code{font-size:12px;word-break:break-all}
`;

const METRIC_COLUMNS: Array<[keyof NonNullable<ManifestRecord['metrics']>, string]> = [
  ['vrand', 'V_rand'],
  ['vrandSplit', 'split'],
  ['vrandMerge', 'merge'],
  ['vinfo', 'V_info'],
  ['vinfoSplit', 'split'],
  ['vinfoMerge', 'merge'],
  ['pixelError', 'pixel error'],
];

function mean(values: Array<number | null | undefined>): number | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/** Builds the page; thumbnails are made one item at a time. */
export async function buildReport(outDir: string, entries: readonly ReportEntry[], opts: ReportOptions = {}): Promise<string> {
  const records = entries.map((e) => e.record);
  const done = records.filter((r) => r?.status === 'done') as ManifestRecord[];
  const failed = entries.filter((e) => e.record?.status === 'failed');
  const missing = entries.filter((e) => !e.record);
  const keys = entries.map((e) => e.key);
  const anyMetrics = done.some((r) => r.metrics);
  const model = done[0]?.model ?? records.find(Boolean)?.model;
  const params = done[0]?.params ?? records.find(Boolean)?.params;
  const withThumbs = thumbnailChoice(records, opts.maxThumbnailItems ?? DEFAULT_MAX_THUMBNAIL_ITEMS);
  const totalSeconds = records.reduce((a, r) => a + (r?.seconds.total ?? 0), 0);
  const mpx = done.reduce((a, r) => a + ((r.width ?? 0) * (r.height ?? 0) * (r.slices ?? 0)) / 1e6, 0);

  const html: string[] = [
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(opts.title ?? 'EMSeg batch report')}</title><style>${CSS}</style></head><body>`,
    `<h1>${esc(opts.title ?? 'EMSeg batch report')}</h1>`,
    `<div class="meta">${esc(outDir)} · written ${esc(new Date().toISOString())}</div>`,
    `<p><b>${entries.length}</b> item(s): <span class="ok">${done.length} done</span>, <span class="${failed.length ? 'bad' : 'muted'}">${failed.length} failed</span>` +
      (missing.length ? `, <span class="bad">${missing.length} not processed</span>` : '') +
      ` · ${totalSeconds.toFixed(1)} s of worker time for ${mpx.toFixed(2)} Mpx` +
      (anyMetrics ? ` · mean V_rand <b>${fmt(mean(done.map((r) => r.metrics?.vrand)))}</b>, V_info <b>${fmt(mean(done.map((r) => r.metrics?.vinfo)))}</b>` : '') +
      '</p>',
  ];
  if (model) html.push(`<div class="meta">model <code>${esc(model.membrane)}</code>${model.refiner ? ` + refiner <code>${esc(model.refiner)}</code>` : ''} <span class="muted">${esc(model.hash.slice(0, 19))}</span></div>`);
  if (params) html.push(`<div class="meta">parameters <code>${esc(JSON.stringify(params))}</code></div>`);

  if (failed.length || missing.length) {
    html.push('<h2 class="bad">Failed and missing items</h2><table><tr><th>item</th><th>error</th></tr>');
    entries.forEach((e, i) => {
      if (e.record?.status === 'failed') html.push(`<tr><td><a href="#item-${i}">${esc(e.key)}</a></td><td>${esc(e.record.error ?? '')}</td></tr>`);
      else if (!e.record) html.push(`<tr><td><a href="#item-${i}">${esc(e.key)}</a></td><td>no record: not processed (did its shard run?)</td></tr>`);
    });
    html.push('</table>');
  }

  html.push('<h2>Across items</h2>');
  if (anyMetrics) {
    html.push(
      linePlot(
        'Scores per item (higher is better)',
        [
          { name: 'V_rand', colour: '#1565c0', values: records.map((r) => r?.metrics?.vrand ?? null) },
          { name: 'V_info', colour: '#ef6c00', values: records.map((r) => r?.metrics?.vinfo ?? null) },
        ],
        keys,
        1,
        '',
      ),
    );
  }
  html.push(
    linePlot(
      'Time per item (seconds)',
      [
        { name: 'total', colour: '#455a64', values: records.map((r) => (r?.status === 'done' ? r.seconds.total : null)) },
        { name: 'segment', colour: '#2e7d32', values: records.map((r) => (r?.status === 'done' ? (r.seconds.segment ?? null) : null)) },
      ],
      keys,
      null,
      ' s',
    ),
  );

  html.push('<h2>Items</h2>');
  if (withThumbs.size < done.length) html.push(`<p class="muted">Thumbnails for ${withThumbs.size} of ${done.length} done items: the lowest V_rand first, then a sample of the rest.</p>`);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const r = e.record;
    const cls = r?.status === 'done' ? 'card' : 'card failed';
    html.push(`<div class="${cls}" id="item-${i}"><b>${esc(e.key)}</b> <span class="${r?.status === 'done' ? 'ok' : 'bad'}">${r ? r.status : 'not processed'}</span>`);
    html.push(`<div class="muted"><code>${esc(e.input)}</code>${r?.width ? ` · ${r.width}×${r.height} × ${r.slices} slice(s)` : ''}</div>`);
    if (r?.status === 'failed') html.push(`<div class="bad">${esc(r.error ?? '')}</div>`);
    if (r?.status === 'done' && withThumbs.has(i)) {
      try {
        const t = await itemThumbnails(outDir, r, opts.thumbPx);
        html.push(
          '<div class="thumbs">',
          `<figure><img src="${t.raw}" alt="raw"><figcaption>raw, slice ${t.z}</figcaption></figure>`,
          `<figure><img src="${t.map}" alt="membrane map"><figcaption>membrane map</figcaption></figure>`,
          `<figure><img src="${t.overlay}" alt="labels"><figcaption>labels over raw</figcaption></figure>`,
          '</div>',
        );
      } catch (err) {
        const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
        opts.onNotice?.(`report: no thumbnails for ${e.key}: ${msg}`);
        html.push(`<div class="bad">thumbnails unavailable: ${esc(msg)}</div>`);
      }
    }
    if (r?.status === 'done') {
      const s = r.seconds;
      html.push(
        `<div>time ${fmt(s.total, 2)} s (hash ${fmt(s.hash, 2)}, segment ${fmt(s.segment, 2)}${s.metrics !== undefined ? `, metrics ${fmt(s.metrics, 2)}` : ''}) · ${esc(r.end)} on ${esc(r.host)}${r.shard ? `, shard ${esc(r.shard)}` : ''}</div>`,
      );
      if (r.metrics) {
        html.push(`<table><tr>${METRIC_COLUMNS.map(([, h]) => `<th class="num">${h}</th>`).join('')}</tr>`);
        html.push(`<tr>${METRIC_COLUMNS.map(([k]) => `<td class="num">${fmt(r.metrics![k])}</td>`).join('')}</tr></table>`);
        html.push(`<div class="muted">ground truth <code>${esc(r.gt?.path ?? '')}</code>, mean of ${r.metrics.slices} slice(s)</div>`);
      }
    }
    html.push('</div>');
  }
  html.push('</body></html>');
  return html.join('\n');
}

export async function writeReport(outDir: string, entries: readonly ReportEntry[], opts: ReportOptions = {}): Promise<string> {
  const path = join(outDir, 'report.html');
  await writeFileAtomic(path, await buildReport(outDir, entries, opts));
  return path;
}
