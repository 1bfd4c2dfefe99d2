// Pixel size from TIFF metadata, in nanometres. Three sources, most specific first:
//   OME-XML ImageDescription  <Pixels PhysicalSizeX="4" PhysicalSizeXUnit="nm" ...>   (default unit µm)
//   ImageJ ImageDescription   "ImageJ=...\nunit=micron\nspacing=0.05\n" with XResolution/YResolution in pixels per unit
//   plain XResolution/YResolution with ResolutionUnit inch (2, the TIFF default) or centimetre (3)
import type { PixelSizeNm } from './types';

/** Nanometres per unit, for the unit spellings ImageJ, tifffile, Bio-Formats and OME write. */
const NM_PER_UNIT: Record<string, number> = {
  pm: 1e-3,
  'Å': 0.1,
  angstrom: 0.1,
  nm: 1,
  nanometer: 1,
  nanometre: 1,
  micron: 1e3,
  microns: 1e3,
  um: 1e3,
  'µm': 1e3, // U+00B5 micro sign
  'μm': 1e3, // U+03BC Greek mu
  micrometer: 1e3,
  micrometre: 1e3,
  mm: 1e6,
  millimeter: 1e6,
  cm: 1e7,
  centimeter: 1e7,
  m: 1e9,
  meter: 1e9,
  inch: 2.54e7,
  in: 2.54e7,
};

export function nmPerUnit(unit: string): number | undefined {
  // ImageJ escapes non-ASCII characters in its description, so µm arrives as the six characters \u00B5m.
  const u = unit.trim().replace(/\\u00b5|\\u03bc/gi, 'µ');
  return NM_PER_UNIT[u] ?? NM_PER_UNIT[u.toLowerCase()];
}

/** The key=value lines of an ImageJ description, or undefined if the description is not ImageJ's. */
export function parseImageJDescription(description: string | undefined): Map<string, string> | undefined {
  if (!description?.startsWith('ImageJ=')) return undefined;
  const out = new Map<string, string>();
  for (const line of description.split(/\r?\n/)) {
    const eq = line.indexOf('=');
    if (eq > 0 && !out.has(line.slice(0, eq).trim())) out.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return out;
}

export interface OmeInfo {
  pixelSizeNm?: PixelSizeNm;
  sizeC?: number;
}

/** The first <Pixels> element of an OME-XML description, or undefined if the description is not OME-XML. */
export function parseOmeDescription(description: string | undefined): OmeInfo | undefined {
  if (!description || !/^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<(\w+:)?OME[\s>]/.test(description)) return undefined;
  const m = /<(?:\w+:)?Pixels\b([^>]*)>/.exec(description);
  if (!m) return {};
  const attrs = new Map<string, string>();
  for (const a of m[1].matchAll(/([\w:]+)\s*=\s*"([^"]*)"/g)) attrs.set(a[1], a[2]);
  const size = (axis: 'X' | 'Y' | 'Z'): number | undefined => {
    const v = Number(attrs.get(`PhysicalSize${axis}`));
    const f = nmPerUnit(attrs.get(`PhysicalSize${axis}Unit`) ?? 'µm');
    return v > 0 && Number.isFinite(v) && f !== undefined ? v * f : undefined;
  };
  const info: OmeInfo = {};
  const sizeC = Number(attrs.get('SizeC'));
  if (Number.isInteger(sizeC)) info.sizeC = sizeC;
  const x = size('X');
  if (x !== undefined) info.pixelSizeNm = withZ({ x, y: size('Y') ?? x }, size('Z'));
  return info;
}

function withZ(xy: { x: number; y: number }, z: number | undefined): PixelSizeNm {
  return z === undefined ? xy : { ...xy, z };
}

export interface ResolutionTags {
  description?: string;
  /** Pixels per resolution unit, as the RATIONAL fields give them. */
  xResolution?: number;
  yResolution?: number;
  /** 1 none, 2 inch, 3 cm; undefined when the tag is absent (the specification's default is inch). */
  resolutionUnit?: number;
}

/** The pixel size a TIFF page declares, or undefined when it declares none we can trust. */
export function pixelSizeFromTiff(t: ResolutionTags): PixelSizeNm | undefined {
  const ome = parseOmeDescription(t.description);
  if (ome?.pixelSizeNm) return ome.pixelSizeNm;

  const perPixel = (res: number | undefined, nm: number): number | undefined =>
    res !== undefined && res > 0 && Number.isFinite(res) ? nm / res : undefined;

  const ij = parseImageJDescription(t.description);
  const ijUnit = ij?.get('unit');
  const ijNm = ijUnit !== undefined ? nmPerUnit(ijUnit) : undefined;
  if (ijNm !== undefined) {
    const x = perPixel(t.xResolution, ijNm);
    if (x === undefined) return undefined;
    const spacing = Number(ij?.get('spacing'));
    return withZ({ x, y: perPixel(t.yResolution, ijNm) ?? x }, spacing > 0 ? spacing * ijNm : undefined);
  }

  const unit = t.resolutionUnit ?? 2;
  const unitNm = unit === 2 ? 2.54e7 : unit === 3 ? 1e7 : undefined;
  if (unitNm === undefined) return undefined;
  // 72 and 96 dpi are what image libraries write when they know nothing about the pixel size; reading them as
  // 353 µm pixels would only mislead.
  if (unit === 2 && (t.xResolution === 72 || t.xResolution === 96) && (t.yResolution ?? t.xResolution) === t.xResolution) {
    return undefined;
  }
  const x = perPixel(t.xResolution, unitNm);
  if (x === undefined) return undefined;
  return { x, y: perPixel(t.yResolution, unitNm) ?? x };
}
