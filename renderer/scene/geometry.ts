// Pyramid tile arithmetic on the renderer's side. The main side cuts tiles with the same formulas
// (main/api/contract.ts: levelSize, tileRect); the renderer may import only types from there, so they are repeated
// here. A disagreement cannot go unnoticed: the pixel store rejects a tile whose byte count does not match.
import type { TileGeometry } from '../../main/api/contract';

export function levelSize(g: TileGeometry, level: number): { width: number; height: number } {
  const f = 2 ** level;
  return { width: Math.ceil(g.width / f), height: Math.ceil(g.height / f) };
}

export function tileRect(g: TileGeometry, level: number, tx: number, ty: number): { x: number; y: number; width: number; height: number } | null {
  if (level < 0 || level >= g.levels) return null;
  const { width, height } = levelSize(g, level);
  const x = tx * g.tileSizePx;
  const y = ty * g.tileSizePx;
  if (x >= width || y >= height) return null;
  return { x, y, width: Math.min(g.tileSizePx, width - x), height: Math.min(g.tileSizePx, height - y) };
}
