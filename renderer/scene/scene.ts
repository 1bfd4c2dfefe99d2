// The viewer's scene: draws the stack with Konva, outside React. React hands it what to show (stack, slice, layers
// and their styles) through setInput(); the view transform (pan, zoom) lives here and changes at pointer rate
// without touching React. Each frame:
//
//   view transform ─> pyramid level (finest level not finer than the screen) ─> tiles on screen, centre first
//     ├─ pixel store (TileStore): missing tiles are wished for, visible first, then the next and previous slices
//     ├─ bitmaps (BitmapCache): tiles with data are colorized by workers into ImageBitmaps
//     └─ Konva: one Image node per tile per layer under one transformed group; until a tile's bitmap exists the same
//        place shows a coarser level or the previous slice's tile, so panning and slice switching never flash black.
//
// Two Konva layers, both listening(false): the tiles, and above them the overlay where the stroke being drawn (brush,
// seeds, cut line) and picked points live, so drawing a stroke never redraws a tile. Nothing on them takes pointer
// events; the container's DOM handlers pan and zoom, or hand the left button to the active tool (setTool).
import Konva from 'konva';
import type { EmsegApi, StackSummary, TileGeometry } from '../../main/api/contract';
import { BitmapCache } from './bitmaps';
import { styleKey, type TileStyle } from './colorize';
import { Priority, tileKey, TileStore, type TileAddress, type TileSource } from './tile-store';
import { levelSize, tileRect } from './geometry';
import { ValueStore } from './value-store';

export interface LayerSpec {
  id: string;
  source: TileSource;
  style: TileStyle;
  opacity: number;
  /** The previous round, for the difference view. */
  previous?: TileSource;
  /** Slices that have data (results of a job still running); every slice when absent. */
  ready?: ReadonlySet<number>;
}

export interface SceneInput {
  stack: StackSummary | null;
  z: number;
  /** Visible layers, bottom to top. */
  layers: LayerSpec[];
  /** Where the status bar reads values under the cursor. */
  readout: { raw?: TileSource; map?: TileSource; labels?: TileSource };
}

export interface CursorInfo {
  /** Full-resolution pixel under the cursor; null outside the slice. */
  x: number | null;
  y: number | null;
  raw: number | null;
  map: number | null;
  label: number | null;
  /** Screen position within the viewer, for the hover label. */
  screenX: number;
  screenY: number;
}

export interface ViewInfo {
  /** CSS pixels per full-resolution pixel. */
  scale: number;
  level: number;
}

export interface SceneStats {
  frames: number;
  /** Milliseconds from setting a new slice to the first frame with every visible tile of it drawn. */
  sliceSwitchMs: number[];
  /** Tiles drawn in the last frame, and whether all were exact (no stand-ins). */
  tilesDrawn: number;
  complete: boolean;
  pending: number;
  z: number;
  level: number;
}

/** A proofreading tool's pointer handlers, in full-resolution data coordinates (continuous: pixel x covers [x, x+1)). */
export interface PointerTool {
  /** Left button went down at (x, y); return false to let the scene pan instead. */
  down(x: number, y: number, e: PointerEvent): boolean;
  move(x: number, y: number, e: PointerEvent): void;
  up(x: number, y: number, e: PointerEvent): void;
  /** CSS cursor over the viewer while the tool is active. */
  cursor: string;
}

/** What the overlay shows: polylines with a width in data pixels, and markers. */
export interface OverlayShape {
  points: number[];
  /** Stroke width in data pixels (a brush of radius r draws 2r). */
  widthPx: number;
  color: string;
  opacity?: number;
}

const NO_CURSOR: CursorInfo = { x: null, y: null, raw: null, map: null, label: null, screenX: 0, screenY: 0 };
// Zoom limits relative to "fit": far enough out to see the stack small, in to 32 screen pixels per data pixel.
const MIN_ZOOM_OF_FIT = 0.25;
const MAX_SCALE = 32;

export class Scene {
  readonly tiles: TileStore;
  readonly bitmaps = new BitmapCache();
  readonly cursor = new ValueStore<CursorInfo>(NO_CURSOR);
  readonly view = new ValueStore<ViewInfo>({ scale: 1, level: 0 });
  readonly stats: SceneStats = { frames: 0, sliceSwitchMs: [], tilesDrawn: 0, complete: true, pending: 0, z: 0, level: 0 };

  private readonly stage: Konva.Stage;
  private readonly layer: Konva.Layer;
  private readonly world: Konva.Group;
  private readonly overlay: Konva.Layer;
  private readonly overlayWorld: Konva.Group;
  private tool: PointerTool | null = null;
  private toolPointer: number | null = null;
  private spaceDown = false;
  private clearOverlayWhenComplete = false;
  private clearOverlayOnInput = false;
  private readonly groups = new Map<string, { group: Konva.Group; nodes: Konva.Image[] }>();
  /** Which bitmap each tile place showed last (any slice): the stand-in while the new slice's tile is on its way. */
  private readonly lastAt = new Map<string, string>();
  private input: SceneInput = { stack: null, z: 0, layers: [], readout: {} };
  private scale = 1;
  private ox = 0;
  private oy = 0;
  private raf = 0;
  private switchStartedAt: number | null = null;
  private pointer: { x: number; y: number } | null = null;
  private drag: { id: number; x: number; y: number } | null = null;
  private readonly resize: ResizeObserver;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly container: HTMLDivElement,
    api: EmsegApi,
  ) {
    this.tiles = new TileStore(api);
    this.stage = new Konva.Stage({ container, width: container.clientWidth || 1, height: container.clientHeight || 1, listening: false });
    this.layer = new Konva.Layer({ listening: false });
    this.world = new Konva.Group({ listening: false });
    this.layer.add(this.world);
    this.stage.add(this.layer);
    this.overlay = new Konva.Layer({ listening: false });
    this.overlayWorld = new Konva.Group({ listening: false });
    this.overlay.add(this.overlayWorld);
    this.stage.add(this.overlay);
    window.addEventListener('keydown', this.onKey);
    window.addEventListener('keyup', this.onKey);
    this.unsubscribe = this.tiles.subscribe(() => {
      this.requestRender();
      this.updateCursor();
    });
    this.bitmaps.onReady = () => this.requestRender();
    this.resize = new ResizeObserver(() => {
      const first = this.stage.width() <= 1;
      this.stage.size({ width: container.clientWidth || 1, height: container.clientHeight || 1 });
      if (first) this.fit();
      this.requestRender();
    });
    this.resize.observe(container);
    container.addEventListener('pointerdown', this.onPointerDown);
    container.addEventListener('pointermove', this.onPointerMove);
    container.addEventListener('pointerup', this.onPointerUp);
    container.addEventListener('pointercancel', this.onPointerUp);
    container.addEventListener('pointerleave', this.onPointerLeave);
    container.addEventListener('wheel', this.onWheel, { passive: false });
  }

  destroy(): void {
    cancelAnimationFrame(this.raf);
    this.resize.disconnect();
    this.unsubscribe();
    this.container.removeEventListener('pointerdown', this.onPointerDown);
    this.container.removeEventListener('pointermove', this.onPointerMove);
    this.container.removeEventListener('pointerup', this.onPointerUp);
    this.container.removeEventListener('pointercancel', this.onPointerUp);
    this.container.removeEventListener('pointerleave', this.onPointerLeave);
    this.container.removeEventListener('wheel', this.onWheel);
    window.removeEventListener('keydown', this.onKey);
    window.removeEventListener('keyup', this.onKey);
    this.stage.destroy();
    this.bitmaps.destroy();
  }

  setInput(input: SceneInput): void {
    const prev = this.input;
    this.input = input;
    if (this.clearOverlayOnInput) {
      this.clearOverlayOnInput = false;
      this.clearOverlayWhenComplete = true;
    }
    if (input.stack?.stackId !== prev.stack?.stackId) {
      this.tiles.clear();
      this.bitmaps.clear();
      this.lastAt.clear();
      this.switchStartedAt = null;
      if (input.stack) this.fit();
    } else if (input.z !== prev.z) {
      this.switchStartedAt = performance.now();
    }
    this.requestRender();
    this.updateCursor();
  }

  // ---- view -------------------------------------------------------------------------------------------------------

  private get size(): { width: number; height: number } {
    return { width: this.stage.width(), height: this.stage.height() };
  }

  private fitScale(): number {
    const s = this.input.stack;
    if (!s) return 1;
    const { width, height } = this.size;
    // 4% margin so the slice's edge is visibly the edge.
    return Math.min(width / s.width, height / s.height) * 0.96;
  }

  /** Whole slice in view, centred. */
  fit(): void {
    const s = this.input.stack;
    if (!s) return;
    this.scale = this.fitScale();
    const { width, height } = this.size;
    this.ox = (width - s.width * this.scale) / 2;
    this.oy = (height - s.height * this.scale) / 2;
    this.requestRender();
  }

  /** One data pixel per device pixel, keeping the centre of the view where it is. */
  oneToOne(): void {
    const { width, height } = this.size;
    this.zoomAt(1 / (window.devicePixelRatio || 1) / this.scale, width / 2, height / 2);
  }

  zoomBy(factor: number): void {
    const { width, height } = this.size;
    this.zoomAt(factor, width / 2, height / 2);
  }

  panBy(dx: number, dy: number): void {
    this.ox += dx;
    this.oy += dy;
    this.requestRender();
  }

  /** Zoom by `factor` keeping the data point under screen point (cx, cy) fixed. */
  zoomAt(factor: number, cx: number, cy: number): void {
    const min = this.fitScale() * MIN_ZOOM_OF_FIT;
    const next = Math.min(MAX_SCALE, Math.max(min, this.scale * factor));
    const f = next / this.scale;
    this.ox = cx - (cx - this.ox) * f;
    this.oy = cy - (cy - this.oy) * f;
    this.scale = next;
    this.requestRender();
    this.updateCursor();
  }

  /** Centres the view on a full-resolution pixel (the error list's "jump to"), zooming in to at least 2 px per pixel. */
  centerOn(x: number, y: number): void {
    const { width, height } = this.size;
    this.scale = Math.max(this.scale, 2 / (window.devicePixelRatio || 1));
    this.ox = width / 2 - (x + 0.5) * this.scale;
    this.oy = height / 2 - (y + 0.5) * this.scale;
    this.requestRender();
    this.updateCursor();
  }

  /** Full-resolution data coordinates (continuous) of a point in the viewer's CSS pixels. */
  toData(screenX: number, screenY: number): { x: number; y: number } {
    return { x: (screenX - this.ox) / this.scale, y: (screenY - this.oy) / this.scale };
  }

  // ---- tools and overlay ------------------------------------------------------------------------------------------

  /** The tool that gets the left button (null: the left button pans). Space + drag and the middle button always pan. */
  setTool(tool: PointerTool | null): void {
    this.tool = tool;
    this.toolPointer = null;
    this.container.style.cursor = tool?.cursor ?? '';
  }

  /** Replaces what the overlay shows. */
  setOverlay(shapes: OverlayShape[]): void {
    this.clearOverlayWhenComplete = false;
    this.overlayWorld.destroyChildren();
    for (const sh of shapes) {
      const dot = sh.points.length === 2;
      // Konva draws nothing for a one-point line: a point is a disc of the same width.
      const node = dot
        ? new Konva.Circle({ x: sh.points[0], y: sh.points[1], radius: sh.widthPx / 2, fill: sh.color, opacity: sh.opacity ?? 0.6, listening: false })
        : new Konva.Line({ points: sh.points, stroke: sh.color, strokeWidth: sh.widthPx, lineCap: 'round', lineJoin: 'round', opacity: sh.opacity ?? 0.6, listening: false });
      this.overlayWorld.add(node);
    }
    this.overlay.batchDraw();
  }

  /**
   * Clears the overlay once the next input (the edited layer's new revision) is fully drawn: after an edit the stroke
   * stays on screen until the edited tiles replace it, so it never blinks out before the labels under it change.
   */
  clearOverlayWhenDrawn(): void {
    this.clearOverlayOnInput = true;
  }

  private readonly onKey = (e: KeyboardEvent) => {
    if (e.key === ' ') this.spaceDown = e.type === 'keydown';
  };

  private local(e: PointerEvent): { x: number; y: number } {
    const r = this.container.getBoundingClientRect();
    return this.toData(e.clientX - r.left, e.clientY - r.top);
  }

  // ---- pointer ----------------------------------------------------------------------------------------------------

  private readonly onPointerDown = (e: PointerEvent) => {
    // Middle button and space + drag pan always; the left button goes to the active tool, or pans without one.
    if (e.button !== 0 && e.button !== 1) return;
    e.preventDefault();
    this.container.setPointerCapture(e.pointerId);
    if (e.button === 0 && !this.spaceDown && this.tool && this.input.stack) {
      const p = this.local(e);
      if (this.tool.down(p.x, p.y, e)) {
        this.toolPointer = e.pointerId;
        return;
      }
    }
    this.drag = { id: e.pointerId, x: e.clientX, y: e.clientY };
    this.container.dataset.panning = 'true';
  };

  private readonly onPointerMove = (e: PointerEvent) => {
    const r = this.container.getBoundingClientRect();
    this.pointer = { x: e.clientX - r.left, y: e.clientY - r.top };
    if (this.tool && this.toolPointer === e.pointerId) {
      const p = this.toData(this.pointer.x, this.pointer.y);
      this.tool.move(p.x, p.y, e);
    } else if (this.drag && this.drag.id === e.pointerId) {
      this.ox += e.clientX - this.drag.x;
      this.oy += e.clientY - this.drag.y;
      this.drag.x = e.clientX;
      this.drag.y = e.clientY;
      this.requestRender();
    }
    this.updateCursor();
  };

  private readonly onPointerUp = (e: PointerEvent) => {
    if (this.tool && this.toolPointer === e.pointerId) {
      this.toolPointer = null;
      const p = this.local(e);
      this.tool.up(p.x, p.y, e);
      return;
    }
    if (this.drag?.id !== e.pointerId) return;
    this.drag = null;
    delete this.container.dataset.panning;
  };

  private readonly onPointerLeave = () => {
    this.pointer = null;
    this.cursor.set(NO_CURSOR);
  };

  private readonly onWheel = (e: WheelEvent) => {
    e.preventDefault();
    const r = this.container.getBoundingClientRect();
    // Lines (Firefox) are ~33 px; one notch of a mouse wheel (100 px) zooms by 16%, a touchpad's small deltas smoothly.
    const px = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaY;
    this.zoomAt(Math.exp(-px * 0.0015), e.clientX - r.left, e.clientY - r.top);
  };

  // ---- read-outs ----------------------------------------------------------------------------------------------------

  /** Value of a source at a full-resolution pixel, from the finest tile in the store (level 0, else the one drawn). */
  valueAt(source: TileSource | undefined, x: number, y: number): number | null {
    const s = this.input.stack;
    if (!source || !s) return null;
    for (const level of [0, this.stats.level]) {
      const f = 2 ** level;
      const lx = Math.floor(x / f);
      const ly = Math.floor(y / f);
      const tx = Math.floor(lx / s.tileSizePx);
      const ty = Math.floor(ly / s.tileSizePx);
      const t = this.tiles.peek(tileKey(source, { z: this.input.z, level, tx, ty }));
      if (t) return t.data[(ly - ty * s.tileSizePx) * t.width + (lx - tx * s.tileSizePx)];
    }
    return null;
  }

  private updateCursor(): void {
    const s = this.input.stack;
    if (!this.pointer || !s) return;
    const x = Math.floor((this.pointer.x - this.ox) / this.scale);
    const y = Math.floor((this.pointer.y - this.oy) / this.scale);
    const inside = x >= 0 && y >= 0 && x < s.width && y < s.height;
    const { readout } = this.input;
    const prev = this.cursor.get();
    const next: CursorInfo = inside
      ? {
          x,
          y,
          raw: this.valueAt(readout.raw, x, y),
          map: this.valueAt(readout.map, x, y),
          label: this.valueAt(readout.labels, x, y),
          screenX: this.pointer.x,
          screenY: this.pointer.y,
        }
      : { ...NO_CURSOR, screenX: this.pointer.x, screenY: this.pointer.y };
    const same =
      prev.x === next.x && prev.y === next.y && prev.raw === next.raw && prev.map === next.map && prev.label === next.label && prev.screenX === next.screenX && prev.screenY === next.screenY;
    if (!same) this.cursor.set(next);
  }

  // ---- drawing ------------------------------------------------------------------------------------------------------

  requestRender(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.render();
    });
  }

  private groupFor(id: string, index: number): { group: Konva.Group; nodes: Konva.Image[] } {
    let g = this.groups.get(id);
    if (!g) {
      g = { group: new Konva.Group({ listening: false }), nodes: [] };
      this.groups.set(id, g);
      this.world.add(g.group);
    }
    g.group.zIndex(Math.min(index, this.world.children.length - 1));
    return g;
  }

  /** Level whose pixels are just not smaller than the screen's (device) pixels. */
  private chooseLevel(s: StackSummary): number {
    const devicePxPerDataPx = this.scale * (window.devicePixelRatio || 1);
    const level = Math.floor(Math.log2(1 / devicePxPerDataPx));
    return Math.max(0, Math.min(s.levels - 1, level));
  }

  /** Tiles of a level that intersect the screen, the ones nearest the centre first. */
  private visibleTiles(s: StackSummary, level: number): { tx: number; ty: number }[] {
    const { width, height } = this.size;
    const f = 2 ** level;
    const span = s.tileSizePx * f; // one tile's width in full-resolution pixels
    const lv = levelSize(s, level);
    const x0 = Math.max(0, Math.floor(-this.ox / this.scale / span));
    const y0 = Math.max(0, Math.floor(-this.oy / this.scale / span));
    const x1 = Math.min(Math.ceil(lv.width / s.tileSizePx) - 1, Math.floor((width - this.ox) / this.scale / span));
    const y1 = Math.min(Math.ceil(lv.height / s.tileSizePx) - 1, Math.floor((height - this.oy) / this.scale / span));
    const cx = (width / 2 - this.ox) / this.scale / span;
    const cy = (height / 2 - this.oy) / this.scale / span;
    const out: { tx: number; ty: number; d: number }[] = [];
    for (let ty = y0; ty <= y1; ty++) for (let tx = x0; tx <= x1; tx++) out.push({ tx, ty, d: (tx + 0.5 - cx) ** 2 + (ty + 0.5 - cy) ** 2 });
    return out.sort((a, b) => a.d - b.d);
  }

  private bitmapKey(layer: LayerSpec, a: TileAddress): string {
    const k = `${tileKey(layer.source, a)}|${styleKey(layer.style)}`;
    return layer.previous ? `${k}|${tileKey(layer.previous, a)}` : k;
  }

  /** The bitmap of one tile, asking for its data and its colorizing as needed; wishes collects missing data. */
  private bitmapFor(layer: LayerSpec, a: TileAddress, g: TileGeometry, priority: Priority, wishes: Parameters<TileStore['want']>[0]): ImageBitmap | undefined {
    const rect = tileRect(g, a.level, a.tx, a.ty);
    if (!rect) return undefined;
    const key = this.bitmapKey(layer, a);
    return this.bitmaps.get(key, () => {
      const data = this.tiles.get(tileKey(layer.source, a));
      const prev = layer.previous ? this.tiles.get(tileKey(layer.previous, a)) : undefined;
      if (!data) wishes.push({ source: layer.source, addr: a, geometry: g, width: rect.width, height: rect.height, priority });
      if (layer.previous && !prev) wishes.push({ source: layer.previous, addr: a, geometry: g, width: rect.width, height: rect.height, priority });
      if (!data || (layer.previous && !prev)) return null;
      return { style: layer.style, width: rect.width, height: rect.height, data: data.data, previous: prev?.data };
    });
  }

  private render(): void {
    const s = this.input.stack;
    this.bitmaps.beginFrame();
    this.world.position({ x: this.ox, y: this.oy });
    this.world.scale({ x: this.scale, y: this.scale });
    this.overlayWorld.position({ x: this.ox, y: this.oy });
    this.overlayWorld.scale({ x: this.scale, y: this.scale });
    this.overlay.batchDraw();
    if (!s) {
      for (const g of this.groups.values()) g.group.visible(false);
      this.layer.batchDraw();
      return;
    }
    const level = this.chooseLevel(s);
    const f = 2 ** level;
    const { z } = this.input;
    const tiles = this.visibleTiles(s, level);
    const wishes: Parameters<TileStore['want']>[0] = [];
    // Magnified data pixels stay crisp squares (what one wants to judge a membrane); minified ones are smoothed.
    this.layer.imageSmoothingEnabled(this.scale * (window.devicePixelRatio || 1) < 1);

    let drawn = 0;
    let complete = true;
    const used = new Set<string>();
    this.input.layers.forEach((layer, index) => {
      const g = this.groupFor(layer.id, index);
      used.add(layer.id);
      g.group.visible(true);
      g.group.opacity(layer.opacity);
      const ready = !layer.ready || layer.ready.has(z);
      const list: { bitmap: ImageBitmap; x: number; y: number; w: number; h: number }[] = [];
      const exact: typeof list = [];
      const parents = new Set<string>();
      if (ready) {
        for (const { tx, ty } of tiles) {
          const a = { z, level, tx, ty };
          const rect = tileRect(s, level, tx, ty);
          if (!rect) continue;
          const place = { x: rect.x * f, y: rect.y * f, w: rect.width * f, h: rect.height * f };
          const bitmap = this.bitmapFor(layer, a, s, Priority.Visible, wishes);
          const slot = `${layer.id}|${level}|${tx}|${ty}`;
          if (bitmap) {
            exact.push({ bitmap, ...place });
            this.lastAt.set(slot, this.bitmapKey(layer, a));
            continue;
          }
          complete = false;
          // Stand-ins: a coarser level of this slice, else whatever this place showed last (the previous slice).
          let found = false;
          for (let up = level + 1; up < s.levels && !found; up++) {
            const k = up - level;
            const pa = { z, level: up, tx: tx >> k, ty: ty >> k };
            const pk = this.bitmapKey(layer, pa);
            if (parents.has(pk)) {
              found = true;
              break;
            }
            const pb = this.bitmaps.has(pk) ? this.bitmaps.get(pk) : undefined;
            const pr = tileRect(s, up, pa.tx, pa.ty);
            if (pb && pr) {
              const pf = 2 ** up;
              parents.add(pk);
              list.push({ bitmap: pb, x: pr.x * pf, y: pr.y * pf, w: pr.width * pf, h: pr.height * pf });
              found = true;
            }
          }
          const lastKey = this.lastAt.get(slot);
          const last = !found && lastKey && this.bitmaps.has(lastKey) ? this.bitmaps.get(lastKey) : undefined;
          if (last) list.push({ bitmap: last, ...place });
        }
      }
      list.push(...exact);
      drawn += list.length;
      // Reuse Konva nodes: creating and destroying them per frame would churn the garbage collector while panning.
      while (g.nodes.length < list.length) {
        const node = new Konva.Image({ image: undefined, listening: false, perfectDrawEnabled: false });
        g.nodes.push(node);
        g.group.add(node);
      }
      g.nodes.forEach((node, i) => {
        const d = list[i];
        if (!d) {
          node.visible(false);
          return;
        }
        node.setAttrs({ image: d.bitmap, x: d.x, y: d.y, width: d.w, height: d.h, visible: true });
      });
    });
    for (const [id, g] of this.groups) if (!used.has(id)) g.group.visible(false);

    // Prefetch the next and previous slices: their data, then (when workers are free) their bitmaps.
    for (const dz of [1, -1]) {
      const pz = z + dz;
      if (pz < 0 || pz >= s.depth) continue;
      for (const layer of this.input.layers) {
        if (layer.ready && !layer.ready.has(pz)) continue;
        for (const { tx, ty } of tiles) this.bitmapFor(layer, { z: pz, level, tx, ty }, s, Priority.Prefetch, wishes);
      }
    }
    this.tiles.want(wishes);
    this.layer.batchDraw();

    this.stats.frames++;
    this.stats.tilesDrawn = drawn;
    this.stats.complete = complete;
    this.stats.pending = this.tiles.pending() + this.bitmaps.busyCount();
    this.stats.z = z;
    this.stats.level = level;
    if (complete && this.clearOverlayWhenComplete && this.stats.pending === 0) this.setOverlay([]);
    if (complete && this.switchStartedAt !== null) {
      this.stats.sliceSwitchMs.push(performance.now() - this.switchStartedAt);
      this.switchStartedAt = null;
    }
    const v = this.view.get();
    if (v.scale !== this.scale || v.level !== level) this.view.set({ scale: this.scale, level });
  }
}
