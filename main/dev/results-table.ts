// Produces the README's results table with the real CLI, exactly as a user would: `emseg segment --refine-rounds r`
// on the sample stack (ISBI 2012 slices 20–29, never trained on) for r = 0..N, then `emseg eval` scores each round's
// map (best threshold of the sweep: connected components) and its watershed labels (the thresholds stored with the
// model for that round, chosen on the training slices) against the ground truth. Each refined round's labels are also
// compared with round 0's (`emseg eval --baseline`): the gain with its 95 % paired-bootstrap interval over slices.
//
//   npx tsx main/dev/results-table.ts <name>=<model dir> [<name>=<model dir> …] [--rounds N]
//
// A model dir is a folder with membrane/ and refiner/ (like sample-data/models). Prints Markdown on stdout and the
// raw figures as JSON on stderr's last line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signedDifference as signed } from '../../ml/metrics';

const root = fileURLToPath(new URL('../../', import.meta.url));
const stack = join(root, 'sample-data', 'isbi2012-val', 'image');
const gt = join(root, 'sample-data', 'isbi2012-val', 'label');

function emseg(args: string[]): string {
  const r = spawnSync(process.execPath, [join(root, 'main', 'cli', 'emseg.mjs'), ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`emseg ${args.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n').pop()}`);
  return r.stdout;
}

interface Gain {
  mean: number;
  lo: number;
  hi: number;
  better: number;
  slices: number;
}

interface Scores {
  vrand: number;
  vinfo: number;
  threshold?: number;
  gain?: Gain;
}

function evalJson(args: string[]): Scores {
  const j = JSON.parse(emseg(['eval', '--gt', gt, '--gt-membrane-value', '0', ...args, '--json', '--quiet'])) as Scores & { comparison?: { vrand: Gain } };
  return { vrand: j.vrand, vinfo: j.vinfo, threshold: j.threshold, ...(j.comparison ? { gain: j.comparison.vrand } : {}) };
}

const argv = process.argv.slice(2);
const roundsAt = argv.indexOf('--rounds');
const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : 4;
const variants = argv.filter((a, i) => a.includes('=') && i !== roundsAt + 1).map((a) => a.split('=') as [string, string]);
if (variants.length === 0) throw new Error('usage: results-table.ts <name>=<model dir> … [--rounds N]');

const rows: string[] = [
  '| variant | round | V_rand (map) | V_info (map) | threshold | V_rand (labels) | V_info (labels) | labels V_rand − round 0 (95 % interval; slices better) |',
  '|---|---|---|---|---|---|---|---|',
];
const raw: Record<string, unknown> = {};
for (const [name, dir] of variants) {
  const out = mkdtempSync(join(tmpdir(), 'emseg-results-'));
  try {
    const perRound: Array<{ map: Scores; labels: Scores }> = [];
    for (let r = 0; r <= rounds; r++) {
      // Each round count is its own run: its labels come from its own map, cut at the thresholds stored for it.
      const runOut = join(out, `rounds-${r}`);
      emseg(['segment', stack, '--model', dir, '--refine-rounds', String(r), '--out', runOut, '--quiet']);
      const map = evalJson(['--membrane', join(runOut, `membrane-round-${r}.tif`)]);
      const labels = evalJson(['--seg', join(runOut, 'labels.tif'), ...(r > 0 ? ['--baseline', join(out, 'rounds-0', 'labels.tif')] : [])]);
      perRound.push({ map, labels });
      const g = labels.gain;
      const gain = g ? `${signed(g.mean)} (${signed(g.lo)} … ${signed(g.hi)}; ${g.better}/${g.slices})` : '';
      rows.push(`| ${name} | ${r} | ${map.vrand.toFixed(4)} | ${map.vinfo.toFixed(4)} | ${map.threshold?.toFixed(2) ?? ''} | ${labels.vrand.toFixed(4)} | ${labels.vinfo.toFixed(4)} | ${gain} |`);
    }
    raw[name] = { perRound };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
console.log(rows.join('\n'));
console.error(JSON.stringify(raw));
