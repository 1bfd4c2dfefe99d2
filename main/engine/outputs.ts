// File names of a segmentation's membrane maps, in one place: `emseg segment` and batch items write them, the app
// opens batch results by them, and a project's export writes the same ones, so a folder reads alike whatever made it.

/** The final membrane map (float32, 1 = membrane): the last refinement round. */
export const MEMBRANE_FILE = 'membrane.tif';

/** The membrane map after refinement round r (round 0: the membrane model's output). */
export function membraneRoundFile(round: number): string {
  return `membrane-round-${round}.tif`;
}
