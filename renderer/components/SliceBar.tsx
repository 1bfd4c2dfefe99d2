// Slice navigation: a slider, the slice number (editable), and the depth. Keys (arrows, PageUp/PageDown, Home/End)
// are handled by the app so they work wherever the focus is.
import type { StackSummary } from '../../main/api/contract';

export function SliceBar({ stack, z, onZ }: { stack: StackSummary; z: number; onZ: (z: number) => void }) {
  const last = stack.depth - 1;
  return (
    <div className="slicebar">
      <button type="button" onClick={() => onZ(Math.max(0, z - 1))} disabled={z === 0} title="Previous slice (← or ↑)">
        ◀
      </button>
      <input
        type="range"
        min={0}
        max={last}
        value={z}
        onChange={(e) => onZ(Number(e.target.value))}
        disabled={last === 0}
        aria-label="Slice"
        data-testid="slice-slider"
      />
      <button type="button" onClick={() => onZ(Math.min(last, z + 1))} disabled={z === last} title="Next slice (→ or ↓)">
        ▶
      </button>
      <label>
        slice{' '}
        <input
          type="number"
          min={1}
          max={stack.depth}
          value={z + 1}
          onChange={(e) => {
            const n = Number(e.target.value);
            if (Number.isInteger(n) && n >= 1 && n <= stack.depth) onZ(n - 1);
          }}
          aria-label="Slice number"
          data-testid="slice-number"
        />{' '}
        / {stack.depth}
      </label>
    </div>
  );
}
