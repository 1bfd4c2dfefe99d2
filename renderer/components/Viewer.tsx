// Hosts the scene: a div the Konva stage lives in, created once. React passes what to draw via scene.setInput();
// the pixels and the view transform never go through React state. The hover label is the only React part that
// follows the cursor, and it subscribes to the scene's cursor store by itself.
import { useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { EmsegApi } from '../../main/api/contract';
import { Scene, type SceneInput } from '../scene/scene';

function HoverLabel({ scene, show }: { scene: Scene; show: boolean }) {
  const c = useSyncExternalStore(scene.cursor.subscribe, scene.cursor.get);
  if (!show || c.label === null || c.label === 0) return null;
  return (
    <div className="hover-label" style={{ left: c.screenX + 14, top: c.screenY + 14 }} data-testid="hover-label">
      label {c.label}
    </div>
  );
}

export function Viewer({ api, input, onScene, showLabelOnHover }: { api: EmsegApi; input: SceneInput; onScene: (s: Scene | null) => void; showLabelOnHover: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const [scene, setScene] = useState<Scene | null>(null);

  useEffect(() => {
    const s = new Scene(host.current as HTMLDivElement, api);
    setScene(s);
    onScene(s);
    // Hooks for the end-to-end tests and the UI benchmark: read-only statistics and the view controls.
    (window as unknown as { emsegDebug?: unknown }).emsegDebug = { scene: s, stats: () => ({ ...s.stats, sliceSwitchMs: [...s.stats.sliceSwitchMs] }) };
    return () => {
      onScene(null);
      s.destroy();
    };
  }, [api, onScene]);

  useEffect(() => {
    scene?.setInput(input);
  }, [scene, input]);

  return (
    <div className="viewer">
      <div className="viewer-canvas" ref={host} data-testid="viewer" />
      {scene && <HoverLabel scene={scene} show={showLabelOnHover} />}
      {!input.stack && (
        <div className="viewer-empty">
          <p>Open a stack: a multi-page TIFF, a folder of slices or one image.</p>
          <p>Drop it here, use Open…, pick one from Recent, or try the sample stack.</p>
        </div>
      )}
    </div>
  );
}
