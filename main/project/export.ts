// Exports a project as the files other tools read (multi-page TIFF, which Fiji and napari open):
//   labels.tif       instance labels, uint32, 0 = boundary (EMSeg's and napari's label convention)
//   truth-isbi.tif   ground truth in the ISBI 2012 convention, uint8, 0 = membrane, 255 = interior: slices with
//                    painted ground truth as painted, the others derived from the labels (boundary = membrane)
//   export.json      which slices carry real ground truth and their status, and the `emseg train` command line that
//                    trains on them (`--labels truth-isbi.tif --label-membrane-value 0 --train-slices …`)
// Every file goes through a temporary file and a rename.
import { join } from 'node:path';
import type { Image2D } from '../../ml/types';
import { writeFileAtomic } from '../engine/atomic';
import { formatSliceRange } from '../engine/slices';
import { writeTiffStack } from '../io';
import type { Project } from './store';

export interface ProjectExport {
  labels: string;
  truth: string;
  manifest: string;
  truthSlices: number[];
}

export async function exportProject(project: Project, folder: string, pixelSizeNm?: { x: number; y: number; z?: number }): Promise<ProjectExport> {
  const { depth } = project.info;
  const labelsPath = join(folder, 'labels.tif');
  const truthPath = join(folder, 'truth-isbi.tif');
  async function* labelSlices(): AsyncGenerator<Image2D> {
    for (let z = 0; z < depth; z++) yield await project.slice('labels', z);
  }
  const truthSlices: number[] = [];
  async function* truthIsbi(): AsyncGenerator<Image2D> {
    for (let z = 0; z < depth; z++) {
      const has = project.hasSlice('truth', z);
      if (has) truthSlices.push(z);
      const src = await project.slice(has ? 'truth' : 'labels', z);
      const out = new Uint8Array(src.data.length);
      for (let i = 0; i < out.length; i++) out[i] = src.data[i] === 0 ? 0 : 255;
      yield { width: src.width, height: src.height, data: out };
    }
  }
  const opts = pixelSizeNm ? { pixelSizeNm } : {};
  await writeTiffStack(labelsPath, labelSlices(), { ...opts, description: 'EMSeg instance labels (0 = boundary)' });
  await writeTiffStack(truthPath, truthIsbi(), { ...opts, description: 'EMSeg ground truth, ISBI convention (0 = membrane, 255 = interior)' });
  const manifest = join(folder, 'export.json');
  const train = truthSlices.length > 0 ? ` --train-slices ${formatSliceRange(truthSlices)}` : '';
  await writeFileAtomic(
    manifest,
    JSON.stringify(
      {
        stack: project.info.stackPath,
        labels: 'labels.tif',
        truth: 'truth-isbi.tif',
        truthSlices,
        sliceStatus: project.info.sliceStatus,
        train: `emseg train --images ${JSON.stringify(project.info.stackPath)} --labels ${JSON.stringify(truthPath)} --label-membrane-value 0${train} --out <model folder>`,
      },
      null,
      2,
    ),
  );
  return { labels: labelsPath, truth: truthPath, manifest, truthSlices };
}
