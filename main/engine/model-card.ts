// A model card (README.md) for a model folder, rendered from its model.json: what the model is, what it was trained on,
// for how long, on what machine, and how it scored on validation — so a shipped model explains itself.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelRecord } from './model-store';
import { writeFileAtomic } from './atomic';
import { macsPerPixel } from '../../ml/models';
import { hasOpenRawPath } from '../../ml/models/refiner';
import { zContextOf } from '../../ml/infer/z-context';

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(4);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

const SCORE_COLUMNS = ['vrand', 'vinfo', 'vrandSplit', 'vrandMerge', 'vinfoSplit', 'vinfoMerge', 'pixelError', 'threshold', 'labelsVrand', 'labelsVinfo', 'labelsVrandSplit', 'labelsVrandMerge'];

/**
 * Where the training data came from: the ISBI 2012 citation when the model was trained on that stack, otherwise the
 * user's own stacks as the training record names them (a card must not credit data the model never saw).
 */
function dataSection(record: ModelRecord): string[] {
  const t = (record.training ?? {}) as Record<string, unknown>;
  const images = typeof t.images === 'string' ? t.images : undefined;
  if (!images) return [];
  if (/isbi ?2012/i.test(images)) {
    return ['', '## Data', '', 'Trained and validated on the ISBI 2012 challenge data (ssTEM, Drosophila first-instar larva VNC, 4 × 4 × 50 nm):',
      'cite A. Cardona et al., PLoS Biol 8(10): e1000502, 2010, and I. Arganda-Carreras et al., Front. Neuroanat. 9:142, 2015.'];
  }
  const labels = typeof t.labels === 'string' ? ` with labels ${t.labels}` : '';
  const slices = typeof t.trainSlices === 'string' ? ` (training slices ${t.trainSlices}${typeof t.valSlices === 'string' ? `, validation slices ${t.valSlices}` : ''})` : '';
  return ['', '## Data', '', `Trained on ${images}${labels}${slices}.`];
}

export async function renderModelCard(dir: string, notes: string[] = []): Promise<string> {
  const record = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as ModelRecord;
  const size = async (f: string) => stat(join(dir, f)).then((s) => `${(s.size / 1e6).toFixed(2)} MB`, () => 'absent');
  const cfg = record.config;
  const lines: string[] = [];
  const title = record.role === 'membrane' ? 'Membrane model' : 'Refinement model (Wu 2015)';
  lines.push(`# ${title}`, '');
  const z = zContextOf(cfg);
  lines.push(record.role === 'membrane'
    ? z
      ? `A U-Net mapping a normalised raw EM slice and the ${z} slice(s) on each side of it (z-context; mirrored at the ends of the stack) to P(membrane) per pixel of the slice.`
      : 'A U-Net mapping a normalised raw EM slice to P(membrane) per pixel.'
    : 'A blind-spot CNN predicting each pixel\'s membrane label from the membrane map around it (the pixel itself hidden)' +
      `${cfg.inChannels !== 2 ? '' : cfg.kind === 'refiner' && hasOpenRawPath(cfg) ? ', with the raw slice as a second channel read by its own convolutions, centre pixel included' : ', with the raw slice as a second channel (its centre hidden too)'}; applied round after round.`);
  lines.push('', '## Architecture', '');
  lines.push(`- config: \`${JSON.stringify(cfg)}\``);
  lines.push(`- ${Math.round(2 * macsPerPixel(cfg)).toLocaleString('en-US')} FLOPs per output pixel`);
  lines.push(`- files: weights.bin ${await size('weights.bin')} (${record.weightsDtype ?? 'float32'}, tfjs layer order, for fine-tuning), model.onnx ${await size('model.onnx')} (opset 13)`);
  if (record.pixelSizeNm) lines.push(`- pixel size: ${record.pixelSizeNm} nm in-plane, as trained (\`emseg segment\` resizes stacks of other pixel sizes to it)`);
  if (record.rounds !== undefined) lines.push(`- refinement rounds (chosen on validation): ${record.rounds}`);
  if (record.training) {
    lines.push('', '## Training', '');
    for (const [k, v] of Object.entries(record.training)) lines.push(`- ${k}: ${fmt(v)}`);
  }
  const val = record.validation as Record<string, unknown> | undefined;
  if (val) {
    lines.push('', '## Validation', '');
    const perRound = val.perRound as Array<Record<string, number>> | undefined;
    if (perRound) {
      // Map columns (best threshold) always; labels columns (watershed at the round's tuned thresholds) when scored.
      const columns = SCORE_COLUMNS.filter((c) => perRound.some((r) => r[c] !== undefined));
      lines.push('The map at its best threshold; `labels*`: its watershed labels at the round\'s tuned thresholds (see Segmentation).', '');
      lines.push(`| round | ${columns.join(' | ')} |`, `|---|${columns.map(() => '---').join('|')}|`);
      for (const r of perRound) lines.push(`| ${r.round} | ${columns.map((c) => (r[c] === undefined ? '' : fmt(r[c]))).join(' | ')} |`);
      if (typeof val.roundsChosenBy === 'string') lines.push('', `Rounds chosen by the ${val.roundsChosenBy}.`);
    } else {
      for (const [k, v] of Object.entries(val)) lines.push(`- ${k}: ${fmt(v)}`);
    }
  }
  if (record.segmentation) {
    const t = record.segmentation;
    lines.push('', '## Segmentation', '', `Watershed thresholds chosen on the ${t.tunedOn} (maps: ${t.maps}); \`emseg segment\` uses the row of the rounds it runs.`, '');
    lines.push('| round | seed threshold | agglomeration threshold | V_rand (training) | V_info (training) |', '|---|---|---|---|---|');
    for (const r of t.perRound) lines.push(`| ${r.round} | ${r.seedThreshold} | ${r.agglomerationThreshold} | ${fmt(r.vrand)} | ${fmt(r.vinfo)} |`);
  }
  if (record.compression) {
    // Compressed models (emseg compress): the method's parameters, its sparsity or ensemble scores, its report row.
    lines.push('', '## Compression', '');
    for (const [k, v] of Object.entries(record.compression)) lines.push(`- ${k}: ${fmt(v)}`);
  }
  if (notes.length) lines.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  lines.push(...dataSection(record), '');
  return lines.join('\n');
}

export async function writeModelCard(dir: string, notes: string[] = []): Promise<void> {
  await writeFileAtomic(join(dir, 'README.md'), await renderModelCard(dir, notes));
}
