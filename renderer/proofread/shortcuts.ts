// The keyboard shortcuts, listed once: the key handlers and the help overlay both read these tables (the viewer's
// navigation keys live in App.tsx and are listed in VIEW_SHORTCUTS).
// Letters follow napari's labels layer where it has one (P paint, E erase, F fill, L pick, M new label, [ ] brush
// size); undo and redo are the platform's usual keys. F means fill while a project is open, so fitting the slice
// moves to 0 then (Photoshop's "fit on screen"), the Fit button still does it too.
import type { ToolId } from './controller';

export interface Shortcut {
  keys: string;
  what: string;
  tool?: ToolId;
}

export const TOOL_KEYS: Record<string, ToolId> = {
  v: 'navigate',
  p: 'paint',
  e: 'erase',
  f: 'fill',
  l: 'pick',
  g: 'merge',
  s: 'split',
  x: 'cut',
  d: 'delete',
  k: 'lock',
};

export const TOOL_NAMES: Record<ToolId, string> = {
  navigate: 'Navigate',
  paint: 'Paint',
  erase: 'Erase',
  fill: 'Fill',
  pick: 'Pick label',
  merge: 'Merge',
  split: 'Split',
  cut: 'Cut',
  delete: 'Delete segment',
  lock: 'Lock segment',
};

export const SHORTCUTS: Shortcut[] = [
  { keys: 'V / Esc', what: 'navigate: drag pans (Esc also drops a half-made merge or split)', tool: 'navigate' },
  { keys: 'P', what: 'paint with the current label (ground truth: interior)', tool: 'paint' },
  { keys: 'E', what: 'erase to boundary (ground truth: membrane)', tool: 'erase' },
  { keys: 'F', what: 'fill the connected region under the click', tool: 'fill' },
  { keys: 'L', what: 'pick the label under the click', tool: 'pick' },
  { keys: 'M', what: 'new label (largest on the slice + 1)' },
  { keys: 'G', what: 'merge: click segments; the second click merges (shift-click adds more)', tool: 'merge' },
  { keys: 'S', what: 'split: draw a seed in each part; the second seed splits (shift: more parts)', tool: 'split' },
  { keys: 'X', what: 'cut: draw a line across a segment', tool: 'cut' },
  { keys: 'D', what: 'delete the segment under the click', tool: 'delete' },
  { keys: 'K', what: 'lock / unlock the segment under the click against edits', tool: 'lock' },
  { keys: '[ / ]', what: 'brush smaller / larger' },
  { keys: 'T', what: 'edit labels / ground truth' },
  { keys: 'Ctrl+Z', what: 'undo' },
  { keys: 'Ctrl+Shift+Z / Ctrl+Y', what: 'redo' },
  { keys: 'Space + drag, middle drag', what: 'pan with any tool' },
  { keys: '? / H', what: 'this help (Esc closes it)' },
];

/** The viewer's own keys (App.tsx), listed in the same overlay: they work with or without a project. */
export const VIEW_SHORTCUTS: Shortcut[] = [
  { keys: '← / →, ↑ / ↓', what: 'previous / next slice' },
  { keys: 'PageUp / PageDown', what: '10 slices back / forward' },
  { keys: 'Home / End', what: 'first / last slice' },
  { keys: 'Drag, wheel', what: 'pan; zoom at the cursor' },
  { keys: 'F / 0', what: 'fit the slice (F only without a project: there F is fill)' },
  { keys: '1', what: 'one data pixel per screen pixel' },
  { keys: '+ / −', what: 'zoom in / out' },
];
