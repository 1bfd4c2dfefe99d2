// The proofreading tools' pointer handling, outside React: it turns pointer events (already in data coordinates, from
// the scene) into the stroke on the overlay while the button is down, and into one contract call when the gesture
// ends — a brush stroke is one edit committed on pointer-up, as one delta on the main side. Tool settings are read
// from the host at each event, so React only re-renders when a setting changes, never per pointer move.
//
// Gestures: paint/erase drag; fill, pick, delete and lock click; merge clicks segments (the second plain click merges,
// shift-click adds more); split draws seeds (the second plain seed splits the segment under the first seed, shift
// adds more groups); cut drags a line across one segment.
import type { EditResult, EmsegApi, ProjectLayer, ProjectSummary, ProofreadEdit } from '../../main/api/contract';
import type { OverlayShape, PointerTool, Scene } from '../scene/scene';

export type ToolId = 'navigate' | 'paint' | 'erase' | 'fill' | 'pick' | 'merge' | 'split' | 'cut' | 'delete' | 'lock';

export interface ToolSettings {
  tool: ToolId;
  /** Brush radius in full-resolution pixels. */
  radiusPx: number;
  /** Label the brush and fill paint with (labels layer). */
  label: number;
  layer: ProjectLayer;
}

export interface ControllerHost {
  api: EmsegApi;
  scene: Scene;
  project(): ProjectSummary | null;
  z(): number;
  settings(): ToolSettings;
  /** The label under a full-resolution pixel of the layer being edited, from the tiles on screen; null if unknown. */
  valueAt(x: number, y: number): number | null;
  onEdited(r: EditResult): void;
  onPicked(label: number): void;
  onLocked(z: number, locked: number[]): void;
  onError(e: unknown): void;
  /** A short line about the gesture in progress ('merge: 2 picked, click another to merge'), '' when idle. */
  onHint(text: string): void;
}

// Ground truth in the ISBI convention: the brush paints interior (255), the eraser paints membrane (0).
const TRUTH_INTERIOR = 255;
const TRUTH_MEMBRANE = 0;
// Seeds are drawn with a brush no wider than 3 px: a seed marks a place, it should not reach across a membrane.
const MAX_SEED_RADIUS_PX = 1.5;

const COLORS: Record<ToolId, string> = {
  navigate: '#fff',
  paint: '#ffd400',
  erase: '#00e5ff',
  fill: '#ffd400',
  pick: '#fff',
  merge: '#ff3df2',
  split: '#7dff3d',
  cut: '#ff3030',
  delete: '#ff3030',
  lock: '#fff',
};

export class ProofreadController {
  private line: number[] | null = null;
  private seeds: number[][] = [];
  private picks: { id: number; x: number; y: number }[] = [];
  /** Edits go out one after another, in the order the user made them. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: ControllerHost) {}

  /** Drops a half-made gesture (Escape, another tool, another slice). */
  reset(): void {
    this.line = null;
    this.seeds = [];
    this.picks = [];
    this.host.scene.setOverlay([]);
    this.host.onHint('');
  }

  /** Runs edits and other calls in order; failures go to the host and do not stop later calls. */
  run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    const p = this.chain.then(fn).catch((e: unknown) => {
      this.host.onError(e);
      return undefined;
    });
    this.chain = p;
    return p;
  }

  private commit(edit: ProofreadEdit, layer: ProjectLayer = this.host.settings().layer): void {
    const project = this.host.project();
    if (!project) return;
    const z = this.host.z();
    void this.run(async () => {
      const r = await this.host.api.editProject({ projectId: project.projectId, z, layer, edit });
      // The stroke stays until the edited tiles are drawn; an edit that changed nothing has no tiles to wait for.
      if (r.changedPx > 0) this.host.scene.clearOverlayWhenDrawn();
      else this.host.scene.setOverlay([]);
      this.host.onEdited(r);
      return r;
    }).then((r) => {
      if (r === undefined) this.host.scene.setOverlay([]);
    });
  }

  private idAt(x: number, y: number): number | null {
    return this.host.valueAt(Math.floor(x), Math.floor(y));
  }

  private shapes(extra: OverlayShape[] = []): OverlayShape[] {
    const s = this.host.settings();
    const seedWidth = 2 * Math.min(MAX_SEED_RADIUS_PX, s.radiusPx);
    const out: OverlayShape[] = this.seeds.map((g, k) => ({ points: g, widthPx: seedWidth, color: k === 0 ? '#7dff3d' : '#3dd2ff', opacity: 0.9 }));
    for (const p of this.picks) out.push({ points: [p.x, p.y], widthPx: 8, color: COLORS.merge, opacity: 0.9 });
    return [...out, ...extra];
  }

  /** The scene's tool for the current settings (null for navigate: the left button pans). */
  tool(): PointerTool | null {
    const id = this.host.settings().tool;
    if (id === 'navigate') return null;
    const drags = id === 'paint' || id === 'erase' || id === 'split' || id === 'cut';
    return {
      cursor: drags ? 'crosshair' : 'pointer',
      down: (x, y) => {
        if (!this.host.project()) return false;
        if (drags) {
          this.line = [x, y];
          this.draw();
        }
        return true;
      },
      move: (x, y) => {
        if (!this.line) return;
        const n = this.line.length;
        // Vertices closer than a tenth of a pixel add nothing to the stroke but bytes.
        if (Math.hypot(x - this.line[n - 2], y - this.line[n - 1]) < 0.1) return;
        this.line.push(x, y);
        this.draw();
      },
      up: (x, y, e) => this.finish(id, x, y, e.shiftKey),
    };
  }

  private draw(): void {
    const s = this.host.settings();
    if (!this.line) return;
    const width = s.tool === 'cut' ? 1 : s.tool === 'split' ? 2 * Math.min(MAX_SEED_RADIUS_PX, s.radiusPx) : 2 * s.radiusPx;
    this.host.scene.setOverlay(this.shapes([{ points: this.line, widthPx: width, color: COLORS[s.tool], opacity: s.tool === 'paint' || s.tool === 'erase' ? 0.55 : 0.9 }]));
  }

  private finish(id: ToolId, x: number, y: number, shift: boolean): void {
    const s = this.host.settings();
    const project = this.host.project();
    const line = this.line;
    this.line = null;
    if (!project) return;
    const truth = s.layer === 'truth';
    switch (id) {
      case 'paint':
      case 'erase': {
        if (!line) return;
        const label = truth ? (id === 'paint' ? TRUTH_INTERIOR : TRUTH_MEMBRANE) : id === 'paint' ? s.label : 0;
        this.commit({ tool: 'paint', points: line, radiusPx: s.radiusPx, label });
        return;
      }
      case 'fill':
        this.commit({ tool: 'fill', x, y, label: truth ? TRUTH_INTERIOR : s.label });
        return;
      case 'pick': {
        const v = this.idAt(x, y);
        if (v !== null) this.host.onPicked(v);
        return;
      }
      case 'delete': {
        const v = this.idAt(x, y);
        if (v) this.commit({ tool: 'delete', id: v }, 'labels');
        return;
      }
      case 'lock': {
        const v = this.idAt(x, y);
        if (!v) return;
        const z = this.host.z();
        const isLocked = (project.locked[String(z)] ?? []).includes(v);
        void this.run(async () => {
          const r = await this.host.api.lockSegment({ projectId: project.projectId, z, id: v, locked: !isLocked });
          this.host.onLocked(z, r.locked);
          this.host.onHint(`segment ${v} ${isLocked ? 'unlocked' : 'locked'}`);
        });
        return;
      }
      case 'merge': {
        const v = this.idAt(x, y);
        if (!v) return;
        if (!this.picks.some((p) => p.id === v)) this.picks.push({ id: v, x, y });
        if (this.picks.length >= 2 && !shift) {
          const ids = this.picks.map((p) => p.id);
          this.picks = [];
          this.host.scene.setOverlay([]);
          this.host.onHint('');
          this.commit({ tool: 'merge', ids }, 'labels');
          return;
        }
        this.host.onHint(`merge: ${this.picks.map((p) => p.id).join(' + ')}; click another segment to merge (shift: add more)`);
        this.host.scene.setOverlay(this.shapes());
        return;
      }
      case 'split': {
        if (!line) return;
        this.seeds.push(line);
        const target = this.idAt(this.seeds[0][0], this.seeds[0][1]);
        if (!target) {
          this.seeds = [];
          this.host.scene.setOverlay([]);
          this.host.onHint('split: start the first seed inside the segment to split');
          return;
        }
        if (this.seeds.length >= 2 && !shift) {
          const seeds = this.seeds;
          this.seeds = [];
          this.host.onHint('');
          this.commit({ tool: 'split', id: target, seeds, radiusPx: Math.min(MAX_SEED_RADIUS_PX, s.radiusPx) }, 'labels');
          return;
        }
        this.host.onHint(`split ${target}: ${this.seeds.length} seed${this.seeds.length > 1 ? 's' : ''}; draw the next seed in the other part (shift: more parts)`);
        this.host.scene.setOverlay(this.shapes());
        return;
      }
      case 'cut': {
        if (!line) return;
        // The segment cut is the one the line covers most (sampled at its vertices and midpoints).
        const votes = new Map<number, number>();
        for (let k = 0; k + 1 < line.length; k += 2) {
          const v = this.idAt(line[k], line[k + 1]);
          if (v) votes.set(v, (votes.get(v) ?? 0) + 1);
        }
        const best = [...votes.entries()].sort((a, b) => b[1] - a[1])[0];
        if (!best) {
          this.host.scene.setOverlay([]);
          return;
        }
        this.commit({ tool: 'cut', id: best[0], points: line, radiusPx: 0.5 }, 'labels');
        return;
      }
      case 'navigate':
        return;
    }
  }
}
