// The status bar: cursor position, raw value, map value and label id under the cursor, zoom, pixel size and a scale
// bar. It follows the scene's stores by itself (useSyncExternalStore), so the pointer moving re-renders only this.
import { useSyncExternalStore } from 'react';
import type { StackSummary } from '../../main/api/contract';
import type { Scene } from '../scene/scene';

function formatValue(v: number | null, float: boolean): string {
  if (v === null) return '—';
  return float ? v.toFixed(3) : String(v);
}

/** A scale bar 60–150 px long with a round length: 1, 2 or 5 × 10^k nm, shown in nm or µm. */
export function scaleBar(nmPerPx: number, cssPxPerDataPx: number): { px: number; label: string } {
  const nmPerCssPx = nmPerPx / cssPxPerDataPx;
  const target = 100 * nmPerCssPx;
  const pow = 10 ** Math.floor(Math.log10(target));
  const nice = [1, 2, 5, 10].map((m) => m * pow).reduce((best, v) => (Math.abs(v - target) < Math.abs(best - target) ? v : best));
  return { px: nice / nmPerCssPx, label: nice >= 1000 ? `${+(nice / 1000).toPrecision(3)} µm` : `${+nice.toPrecision(3)} nm` };
}

export function StatusBar({ scene, stack }: { scene: Scene; stack: StackSummary | null }) {
  const c = useSyncExternalStore(scene.cursor.subscribe, scene.cursor.get);
  const v = useSyncExternalStore(scene.view.subscribe, scene.view.get);
  const px = stack?.pixelSizeNm;
  const bar = px ? scaleBar(px.x, v.scale) : null;
  return (
    <footer className="statusbar" data-testid="statusbar">
      <span data-testid="status-xy">{c.x === null ? 'x —, y —' : `x ${c.x}, y ${c.y}`}</span>
      <span data-testid="status-raw">raw {formatValue(c.raw, stack?.pixelType === 'float32')}</span>
      <span data-testid="status-map">map {formatValue(c.map, true)}</span>
      <span data-testid="status-label">label {c.label === null ? '—' : c.label}</span>
      <span className="spacer" />
      <span data-testid="status-zoom">
        zoom {(v.scale * 100).toFixed(v.scale < 0.1 ? 1 : 0)}%{v.level > 0 ? ` (level ${v.level})` : ''}
      </span>
      {px && (
        <span data-testid="status-pixel-size">
          {px.x}×{px.y}
          {px.z ? `×${px.z}` : ''} nm
        </span>
      )}
      {bar && (
        <span className="scalebar" data-testid="scalebar">
          <span className="scalebar-line" style={{ width: `${bar.px}px` }} />
          {bar.label}
        </span>
      )}
    </footer>
  );
}
