// Exports a project as the files other tools read (multi-page TIFF, which Fiji and napari open):
//   labels.tif       instance labels, uint32, 0 = boundary (EMSeg's and napari's label convention)
//   truth-isbi.tif   ground truth in the ISBI 2012 convention, uint8, 0 = membrane, 255 = interior: slices with
//                    painted ground truth as painted, the others derived from the labels (boundary = membrane)
//   membrane-round-<r>.tif, membrane.tif
//                    the membrane maps jobs stored in the project (float32, 1 = membrane), one stack per refinement
//                    round and membrane.tif with each slice's last round: the names and values `emseg segment` writes.
//                    Slices may have been refined for different numbers of rounds (jobs run on some slices only):
//                    a slice without round r, or without any map, is NaN there ("no value", which Fiji and numpy keep
//                    apart from every probability). No map files when the project holds no maps.
//   export.json      which slices carry real ground truth and their status, which have maps and for how many rounds,
//                    and the `emseg train` command line that trains on them
//                    (`--labels truth-isbi.tif --label-membrane-value 0 --train-slices …`)
// Every file goes through a temporary file and a rename; the TIFFs are uncompressed classic TIFF with ImageJ
// metadata, so ImageJ reads each stack as one block.
import { join } from 'node:path';
import type { Image2D } from '../../ml/types';
import { writeFileAtomic } from '../engine/atomic';
import { MEMBRANE_FILE, membraneRoundFile } from '../engine/outputs';
import { formatSliceRange } from '../engine/slices';
import { writeTiffStack } from '../io';
import type { Project } from './store';

export interface ProjectExport {
  labels: string;
  truth: string;
  /** membrane.tif, or null when the project holds no maps. */
  membrane: string | null;
  /** membrane-round-<r>.tif for r = 0…, round 0 first. */
  membraneRounds: string[];
  manifest: string;
  truthSlices: number[];
}

export async function exportProject(project: Project, folder: string, pixelSizeNm?: { x: number; y: number; z?: number }): Promise<ProjectExport> {
  const { depth, width, height } = project.info;
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
  /** Round r of every slice (the slice's last round when r is absent), NaN where a slice has none. */
  async function* mapSlices(round?: number): AsyncGenerator<Image2D> {
    for (let z = 0; z < depth; z++) yield (await project.map(z, round)) ?? { width, height, data: new Float32Array(width * height).fill(NaN) };
  }
  const opts = pixelSizeNm ? { pixelSizeNm } : {};
  await writeTiffStack(labelsPath, labelSlices(), { ...opts, description: 'EMSeg instance labels (0 = boundary)' });
  await writeTiffStack(truthPath, truthIsbi(), { ...opts, description: 'EMSeg ground truth, ISBI convention (0 = membrane, 255 = interior)' });

  const roundsPerSlice = Array.from({ length: depth }, (_, z) => project.mapRounds(z));
  const rounds = Math.max(0, ...roundsPerSlice);
  const membraneRounds: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const path = join(folder, membraneRoundFile(r));
    await writeTiffStack(path, mapSlices(r), { ...opts, description: `EMSeg membrane map, round ${r} (float32, 1 = membrane; NaN: no map of this round for the slice)` });
    membraneRounds.push(path);
  }
  let membrane: string | null = null;
  if (rounds > 0) {
    membrane = join(folder, MEMBRANE_FILE);
    await writeTiffStack(membrane, mapSlices(), { ...opts, description: "EMSeg membrane map, each slice's last refinement round (float32, 1 = membrane; NaN: no map for the slice)" });
  }

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
        membrane: rounds > 0 ? MEMBRANE_FILE : null,
        membraneRounds: membraneRounds.map((_, r) => membraneRoundFile(r)),
        // Rounds of stored maps per slice (0: none, NaN in every map file).
        mapRounds: roundsPerSlice,
        train: `emseg train --images ${JSON.stringify(project.info.stackPath)} --labels ${JSON.stringify(truthPath)} --label-membrane-value 0${train} --out <model folder>`,
      },
      null,
      2,
    ),
  );
  return { labels: labelsPath, truth: truthPath, membrane, membraneRounds, manifest, truthSlices };
}
