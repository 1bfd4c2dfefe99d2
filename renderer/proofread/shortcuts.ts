// The keyboard shortcuts, listed once: the key handlers and the help overlay both read these tables (the viewer's
// navigation keys live in App.tsx and are listed in VIEW_SHORTCUTS).
// Letters follow napari's labels layer where it has one (P paint, E erase, F fill, L pick, M new label, [ ] brush
// size); undo and redo are the platform's usual keys. F means fill while a project is open, so fitting the slice
// moves to 0 then (Photoshop's "fit on screen"), the Fit button still does it too.
import type { ToolId } from './controller';

export interface Shortcut {
  keys: string;
  what: string;
}

/** A tool as the panel shows it: the key that picks it, its button's name and what it does (for the help overlay). */
interface ToolInfo {
  key: string;
  name: string;
  what: string;
  /** Another key that picks it, listed beside the letter. */
  alsoKey?: string;
}

/** Every tool, once, in the order of the panel's buttons: the buttons, the key handler and the help overlay read it. */
export const TOOLS: Record<ToolId, ToolInfo> = {
  navigate: { key: 'v', alsoKey: 'Esc', name: 'Navigate', what: 'navigate: drag pans (Esc also drops a half-made merge or split)' },
  paint: { key: 'p', name: 'Paint', what: 'paint with the current label (ground truth: interior)' },
  erase: { key: 'e', name: 'Erase', what: 'erase to boundary (ground truth: membrane)' },
  fill: { key: 'f', name: 'Fill', what: 'fill the connected region under the click' },
  pick: { key: 'l', name: 'Pick label', what: 'pick the label under the click' },
  merge: { key: 'g', name: 'Merge', what: 'merge: click segments; the second click merges (shift-click adds more)' },
  split: { key: 's', name: 'Split', what: 'split: draw a seed in each part; the second seed splits (shift: more parts)' },
  cut: { key: 'x', name: 'Cut', what: 'cut: draw a line across a segment' },
  delete: { key: 'd', name: 'Delete segment', what: 'delete the segment under the click' },
  lock: { key: 'k', name: 'Lock segment', what: 'lock / unlock the segment under the click against edits' },
};

export const TOOL_IDS = Object.keys(TOOLS) as ToolId[];

/** The tool each letter picks. */
export const TOOL_KEYS: Record<string, ToolId> = Object.fromEntries(TOOL_IDS.map((t) => [TOOLS[t].key, t]));

/** The proofreading keys: the tools', then the others the panel answers to. */
export const SHORTCUTS: Shortcut[] = [
  ...TOOL_IDS.map((t) => ({ keys: [TOOLS[t].key.toUpperCase(), TOOLS[t].alsoKey].filter(Boolean).join(' / '), what: TOOLS[t].what })),
  { keys: 'M', what: 'new label (largest on the slice + 1)' },
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
