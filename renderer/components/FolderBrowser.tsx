// Browser mode's "Open…": a page cannot see the user's file system, so the server lists folders for it, limited to
// the home folder, the sample and folders opened before (the server refuses anything else). In Electron the
// operating system's dialog is used instead.
import { useCallback, useEffect, useState } from 'react';
import type { BrowseResult, EmsegApi } from '../../main/api/contract';

interface Props {
  api: EmsegApi;
  onOpen: (path: string) => void;
  onClose: () => void;
  /** What the folder is for, when it is not a stack (the model picker opens model folders with it). */
  title?: string;
  openLabel?: string;
}

export function FolderBrowser({ api, onOpen, onClose, title = 'Open a stack', openLabel = 'Open this folder as a stack' }: Props) {
  const [listing, setListing] = useState<BrowseResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [typed, setTyped] = useState('');

  const go = useCallback(
    (path?: string) => {
      api.browseFolder(path ? { path } : {}).then(
        (r) => {
          setListing(r);
          setTyped(r.path);
          setError(null);
        },
        (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
      );
    },
    [api],
  );

  useEffect(() => go(), [go]);

  const join = (name: string) => (listing ? `${listing.path.replace(/\/$/, '')}/${name}` : name);

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal" role="dialog" aria-label={title} onClick={(e) => e.stopPropagation()} data-testid="folder-browser">
        <h2>{title}</h2>
        <div className="roots">
          {listing?.roots.map((r) => (
            <button key={r.path} type="button" onClick={() => go(r.path)} title={r.path}>
              {r.name}
            </button>
          ))}
        </div>
        <form
          className="path-row"
          onSubmit={(e) => {
            e.preventDefault();
            go(typed);
          }}
        >
          <button type="button" disabled={!listing?.parent} onClick={() => listing?.parent && go(listing.parent)} title="Parent folder">
            ↑
          </button>
          <input value={typed} onChange={(e) => setTyped(e.target.value)} aria-label="Folder" />
        </form>
        {error && <div className="error">{error}</div>}
        <ul className="entries">
          {listing?.entries.map((en) => (
            <li key={en.name}>
              <button type="button" onClick={() => (en.kind === 'folder' ? go(join(en.name)) : onOpen(join(en.name)))} className={en.kind}>
                {en.kind === 'folder' ? `${en.name}/` : en.name}
              </button>
            </li>
          ))}
          {listing && listing.entries.length === 0 && <li className="hint">No folders or images here.</li>}
        </ul>
        <div className="modal-buttons">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="button" disabled={!listing} onClick={() => listing && onOpen(listing.path)} data-testid="open-this-folder">
            {openLabel}
          </button>
        </div>
      </div>
    </div>
  );
}
