// `emseg info <stack>`: what a stack is (slice count, size, pixel type, pixel size, kind) without reading its pixels.
import { openStack, type StackInfo } from '../../io';
import { UsageError, type Command } from '../command';

function formatNm(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** "4 × 4 × 50 nm", "4 × 4 nm (z unknown)" or "unknown". */
export function formatPixelSize(info: StackInfo): string {
  const px = info.pixelSizeNm;
  if (!px) return 'unknown';
  const xy = `${formatNm(px.x)} × ${formatNm(px.y)}`;
  return px.z !== undefined ? `${xy} × ${formatNm(px.z)} nm` : `${xy} nm (z unknown)`;
}

export const infoCommand: Command = {
  name: 'info',
  summary: 'Show the size, pixel type and pixel size of a stack',
  usage: 'emseg info <stack> [--json]',
  help: `
Prints what a stack holds without reading its pixels: slice count, width × height, pixel type, pixel size in nm
(from ImageJ or OME-XML metadata or the TIFF resolution tags; "unknown" if the file does not say) and kind.

<stack> is a multi-page TIFF, a folder of single-slice PNG/TIFF/JPEG files (in natural order: 2.png before 10.png),
or a single PNG/JPEG/TIFF image.

Options:
  --json   print one JSON object instead of the table
`,
  options: { json: { type: 'boolean' } },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError(`expected one stack path, got ${ctx.positionals.length}`);
    const notices: string[] = [];
    const stack = await openStack(ctx.positionals[0], { cacheBytes: 0, onNotice: (m) => notices.push(m) });
    await stack.close();
    if (!ctx.quiet) for (const n of notices) ctx.err(`notice: ${n}`);
    const info = stack.info;
    if (ctx.values.json === true) {
      ctx.out(JSON.stringify({ ...info, pixelSizeNm: info.pixelSizeNm ?? null }));
      return 0;
    }
    const rows: [string, string][] = [
      ['path', info.path],
      ['kind', info.kind === 'folder' ? `folder of ${info.depth} image files` : info.kind === 'tiff' ? 'TIFF' : 'single image'],
      ['slices', String(info.depth)],
      ['size', `${info.width} × ${info.height} px`],
      ['pixel type', info.pixelType],
      ['pixel size', formatPixelSize(info)],
    ];
    for (const [k, v] of rows) ctx.out(`${`${k}:`.padEnd(12)}${v}`);
    return 0;
  },
};
