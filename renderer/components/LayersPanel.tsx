// The layers panel: visibility and opacity per layer, display controls of the raw data (brightness, contrast,
// auto-levels), the difference view of refinement rounds and the boundary-only mode of labels.
import type { LayerRow, LayerSetting, RawDisplay } from '../layers';
import { defaultSetting } from '../layers';

interface Props {
  rows: LayerRow[];
  settings: Record<string, LayerSetting>;
  onSetting: (id: string, s: LayerSetting) => void;
  raw: RawDisplay;
  onRaw: (r: RawDisplay) => void;
  onAutoLevels: () => void;
  onResetLevels: () => void;
}

export function LayersPanel({ rows, settings, onSetting, raw, onRaw, onAutoLevels, onResetLevels }: Props) {
  return (
    <section className="panel" aria-label="Layers">
      <h2>Layers</h2>
      {rows.length === 0 && <p className="hint">No stack open.</p>}
      <ul className="layers">
        {rows.map((row) => {
          const s = settings[row.id] ?? defaultSetting(row.id);
          const set = (patch: Partial<LayerSetting>) => onSetting(row.id, { ...s, ...patch });
          return (
            <li key={row.id} className={row.available ? '' : 'unavailable'} data-testid={`layer-${row.id}`}>
              <label className="layer-name">
                <input type="checkbox" checked={s.visible} onChange={(e) => set({ visible: e.target.checked })} data-testid={`layer-${row.id}-visible`} />
                {row.name}
                {!row.available && <span className="hint"> (not computed for this slice)</span>}
              </label>
              <input
                type="range"
                min={0}
                max={1}
                step={0.05}
                value={s.opacity}
                onChange={(e) => set({ opacity: Number(e.target.value) })}
                aria-label={`${row.name} opacity`}
                data-testid={`layer-${row.id}-opacity`}
              />
              {row.kind === 'round' && (
                <label className="layer-option" title="Show what this round changed: red = membrane added, blue = removed">
                  <input type="checkbox" checked={s.diff ?? false} onChange={(e) => set({ diff: e.target.checked })} data-testid={`layer-${row.id}-diff`} />
                  difference to round {(row.round ?? 1) - 1}
                </label>
              )}
              {(row.kind === 'labels' || row.kind === 'truth' || row.kind === 'proposal') && (
                <label className="layer-option">
                  <input type="checkbox" checked={s.boundaryOnly ?? false} onChange={(e) => set({ boundaryOnly: e.target.checked })} data-testid={`layer-${row.id}-boundary`} />
                  boundaries only
                </label>
              )}
              {row.kind === 'raw' && (
                <div className="raw-controls">
                  <label>
                    brightness
                    <input type="range" min={-1} max={1} step={0.01} value={raw.brightness} onChange={(e) => onRaw({ ...raw, brightness: Number(e.target.value) })} data-testid="brightness" />
                  </label>
                  <label>
                    contrast
                    <input
                      type="range"
                      min={-2}
                      max={2}
                      step={0.01}
                      value={Math.log2(raw.contrast)}
                      onChange={(e) => onRaw({ ...raw, contrast: 2 ** Number(e.target.value) })}
                      data-testid="contrast"
                    />
                  </label>
                  <div className="buttons">
                    <button type="button" onClick={onAutoLevels} title="Stretch the 0.5–99.5 percentiles of what is on screen to black–white" data-testid="auto-levels">
                      Auto levels
                    </button>
                    <button type="button" onClick={onResetLevels}>
                      Reset
                    </button>
                  </div>
                </div>
              )}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
