// Finding and reading the ground truth that often sits beside an EM stack: the ISBI layout `image/` + `label/`
// (folders of slices with the same names), or TIFF pairs like `train-volume.tif` + `train-labels.tif`. Label images
// come in two kinds: segment ids (more than two values; 0 = boundary, as EMSeg's labels), or a membrane mask as ISBI
// ships it (0 = membrane, 255 = cell interior), which becomes segment ids by 4-connected components of the interior.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { connectedComponents } from '../../ml/segmentation';
import type { Image2D, Labels } from '../../ml/types';

const IMAGE_FOLDER_NAMES = ['image', 'images', 'raw'];
const LABEL_FOLDER_NAMES = ['label', 'labels', 'gt', 'groundtruth', 'ground-truth', 'ground_truth'];
const SLICE_EXTENSIONS = new Set(['.png', '.tif', '.tiff', '.jpg', '.jpeg']);

async function isDir(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

/**
 * The stack to open for a path the user chose: a folder that holds no slices itself but an `image/` folder (the
 * sample's layout) opens that folder.
 */
export async function resolveStackPath(path: string): Promise<string> {
  if (!(await isDir(path))) return path;
  const names = await readdir(path);
  if (names.some((n) => SLICE_EXTENSIONS.has(extname(n).toLowerCase()))) return path;
  for (const n of IMAGE_FOLDER_NAMES) if (await isDir(join(path, n))) return join(path, n);
  return path;
}

/** The ground-truth stack beside a raw stack, or null. */
export async function findTruthPath(stackPath: string): Promise<string | null> {
  const parent = dirname(stackPath);
  const name = basename(stackPath);
  if (await isDir(stackPath)) {
    if (!IMAGE_FOLDER_NAMES.includes(name.toLowerCase())) return null;
    for (const n of LABEL_FOLDER_NAMES) if (await isDir(join(parent, n))) return join(parent, n);
    return null;
  }
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  const candidates = [stem.replace(/volume/i, 'labels'), `${stem}-labels`, `${stem}_labels`, `${stem}.labels`].filter((c) => c !== stem);
  for (const c of candidates) if (await isFile(join(parent, c + ext))) return join(parent, c + ext);
  return null;
}

/** A ground-truth slice as segment ids (uint32, 0 = boundary). */
export function truthToLabels(img: Image2D): Labels {
  const { width, height, data } = img;
  const values = new Set<number>();
  for (let i = 0; i < data.length && values.size <= 2; i++) values.add(data[i]);
  if (values.size > 2) {
    const ids = new Uint32Array(data.length);
    for (let i = 0; i < data.length; i++) ids[i] = Math.max(0, Math.round(data[i]));
    return { width, height, data: ids };
  }
  const mask = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) mask[i] = data[i] > 0 ? 1 : 0;
  return { width, height, data: connectedComponents(mask, width, height, 4).labels };
}
