// Refinement rounds (Wu 2015): the refiner maps the current membrane map (and, for two-channel refiners, the
// normalised raw slice) to a new map; round r's output is round r+1's input.
import type { MapModel } from './onnx-session';
import { predictTiled, type TiledOptions } from './tiled';
import { planar } from './z-context';

/** Planar CHW input of a refiner: channel 0 the map, channel 1 (optional) the normalised raw slice. */
export function refinerInput(map: Float32Array, raw: Float32Array | null, inChannels: number): Float32Array {
  if (inChannels === 1) return map;
  if (!raw) throw new Error('this refiner needs the raw slice as its second channel');
  return planar([map, raw]);
}

/**
 * Maps after rounds 1..rounds (round 0, the input, is not repeated), each passed through `keep` as it is made (the
 * pipeline resizes them back to the stack's pixel size there, so only the current round stays at the model's).
 */
export async function refineRounds(model: MapModel, inChannels: number, map0: Float32Array, raw: Float32Array | null, height: number, width: number, rounds: number, opts: TiledOptions, keep: (m: Float32Array) => Float32Array = (m) => m): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  let current = map0;
  for (let r = 1; r <= rounds; r++) {
    current = await predictTiled(model, refinerInput(current, raw, inChannels), inChannels, height, width, opts);
    out.push(keep(current));
  }
  return out;
}
