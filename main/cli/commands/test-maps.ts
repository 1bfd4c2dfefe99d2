// Membrane maps shared by the segment command's tests.
import type { MembraneMap } from '../../../ml/types';

/**
 * 9×20 map: two basins (seed columns 1 and 7, 20 px each, above the default minimum seed size) separated by a ridge in
 * column 4; slice z lowers the ridge a little.
 */
export function ridgeMap(z: number): MembraneMap {
  const row = [0.5, 0.1, 0.5, 0.7, 0.9 - 0.01 * z, 0.7, 0.5, 0.1, 0.5];
  return { width: 9, height: 20, data: Float32Array.from(Array.from({ length: 20 }, () => row).flat()) };
}
