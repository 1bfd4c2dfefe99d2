// The model picker: which membrane model Predict, Refine, Segment and Batch run. It lists the shipped model, the
// compressed ones (sample-data/models/compressed) and folders the user opened, each with its row of the compression
// table (`emseg compress --report`: method, file size, speed, V_rand / V_info, ΔV_rand), so choosing a smaller or
// faster model shows what it costs in accuracy. The choice is kept on the main side (models.json), not in the page:
// browser mode gets a new origin (port) each session, and the next session should start with the same model.
import { useCallback, useEffect, useState } from 'react';
import type { EmsegApi, ModelInfo, ModelList } from '../../main/api/contract';
import { FolderBrowser } from './FolderBrowser';

const NOT_MEASURED = 'not measured yet';

/** The model list and the choice, refreshed on demand; `chosenModel` is what jobs pass as params.membraneModel. */
export function useModels(api: EmsegApi, onError: (e: unknown) => void) {
  const [list, setList] = useState<ModelList | null>(null);
  const refresh = useCallback(() => api.listModels({}).then(setList, onError), [api, onError]);
  useEffect(() => {
    void refresh();
  }, [refresh]);
  const choose = useCallback(
    (path: string) =>
      api.chooseModel({ path }).then(
        (r) => setList((l) => (l ? { ...l, chosen: r.chosen } : l)),
        onError,
      ),
    [api, onError],
  );
  /** Adds a folder to the list and chooses it: opening a model is asking to use it. */
  const open = useCallback(
    async (path: string) => {
      try {
        const m = await api.openModel({ path });
        await api.chooseModel({ path: m.path });
        await refresh();
      } catch (e) {
        onError(e);
      }
    },
    [api, onError, refresh],
  );
  // With no choice made, the main side runs the shipped model: show that one as chosen.
  const current = list ? (list.models.find((m) => m.path === list.chosen) ?? list.models.find((m) => m.origin === 'shipped') ?? null) : null;
  return { list, current, chosenModel: list?.chosen ?? undefined, refresh, choose, open };
}

const fmt = (v: number | null, digits: number): string => (v === null ? NOT_MEASURED : v.toFixed(digits));
const signed = (v: number): string => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(4)}`;

function deltaText(m: ModelInfo): string {
  if (m.method === 'none') return 'reference';
  return m.deltaVrand === null ? NOT_MEASURED : signed(m.deltaVrand);
}

function speedText(m: ModelInfo): string {
  if (m.mpxPerS === null) return NOT_MEASURED;
  return `${m.mpxPerS.toFixed(2)}${m.speedup !== null && m.method !== 'none' ? ` (${m.speedup.toFixed(2)}×)` : ''}`;
}

function source(m: ModelInfo): string {
  if (m.measured === 'report') return 'figures from emseg compress --report';
  if (m.measured === 'validation') return 'V_rand / V_info from the validation scores written with the model; speed not measured yet';
  return 'not measured yet: emseg compress --report measures it';
}

/** One line for the sidebar: name, method, size, speed and V_rand of the chosen model. */
export function modelSummary(m: ModelInfo): string {
  const parts = [m.method === 'none' ? 'uncompressed' : m.method, `${(m.fileBytes / 1e6).toFixed(2)} MB`];
  if (m.mpxPerS !== null) parts.push(`${m.mpxPerS.toFixed(2)} Mpx/s`);
  if (m.vrand !== null) parts.push(`V_rand ${m.vrand.toFixed(4)}${m.deltaVrand !== null && m.method !== 'none' ? ` (${signed(m.deltaVrand)})` : ''}`);
  if (m.mpxPerS === null && m.vrand === null) parts.push(NOT_MEASURED);
  if (m.pixelSizeNm !== null) parts.push(`${m.pixelSizeNm} nm/px`);
  if (m.zContext > 0) parts.push(`reads ±${m.zContext} slice${m.zContext > 1 ? 's' : ''}`);
  return parts.join(' · ');
}

interface Props {
  api: EmsegApi;
  models: ReturnType<typeof useModels>;
  nativePicker: boolean;
  onError: (e: unknown) => void;
  onClose: () => void;
}

export function ModelPicker({ api, models, nativePicker, onError, onClose }: Props) {
  const [browsing, setBrowsing] = useState(false);
  const { list, current, refresh, choose, open } = models;
  // Compressed folders may have appeared since the panel first asked (a compress run finishing): ask again.
  useEffect(() => {
    void refresh();
  }, [refresh]);
  const openFolder = () => {
    if (!nativePicker) {
      setBrowsing(true);
      return;
    }
    api.pickPath({ mode: 'folder' }).then((r) => (r ? open(r.path) : undefined), onError);
  };
  // The folder browser is a sibling, not a child: a click on its backdrop must not also close this dialog.
  return (
    <>
      <div className="modal-backdrop" onClick={onClose}>
        <div className="modal model-picker" role="dialog" aria-label="Membrane model" onClick={(e) => e.stopPropagation()} data-testid="model-picker">
          <h2>Membrane model</h2>
          <p className="hint">
            Predict, Refine, Segment and Batch run the chosen model. Figures are each model&apos;s row of the compression table (ISBI 2012 slices 20–29;
            speed = tiled ONNX Runtime inference); ΔV_rand compares with the uncompressed model.
          </p>
          <div className="model-table-wrap">
            <table className="model-table">
              <thead>
                <tr>
                  <th />
                  <th>model</th>
                  <th>method</th>
                  <th>file (MB)</th>
                  <th>Mpx/s</th>
                  <th>V_rand</th>
                  <th>ΔV_rand</th>
                  <th>V_info</th>
                </tr>
              </thead>
              <tbody>
                {list?.models.map((m) => {
                  const chosen = current?.path === m.path;
                  return (
                    <tr
                      key={m.path}
                      className={chosen ? 'chosen' : undefined}
                      onClick={() => void choose(m.path)}
                      title={`${m.path}\n${source(m)}`}
                      data-testid="model-row"
                      data-name={m.name}
                      data-chosen={chosen ? 'true' : 'false'}
                    >
                      <td>
                        <input type="radio" name="model" checked={chosen} onChange={() => void choose(m.path)} aria-label={m.name} />
                      </td>
                      <td>
                        {m.name}
                        {m.origin !== 'compressed' && <span className="hint"> ({m.origin})</span>}
                      </td>
                      <td>{m.method === 'none' ? 'none' : m.method}</td>
                      <td className="num">{(m.fileBytes / 1e6).toFixed(2)}</td>
                      {m.measured === null ? (
                        <td colSpan={4} className="hint">
                          {NOT_MEASURED}
                        </td>
                      ) : (
                        <>
                          <td className={`num${m.mpxPerS === null ? ' hint' : ''}`} data-testid="model-speed">
                            {speedText(m)}
                          </td>
                          <td className="num" data-testid="model-vrand">
                            {fmt(m.vrand, 4)}
                          </td>
                          <td className={`num${m.deltaVrand === null ? ' hint' : ''}`} data-testid="model-delta">
                            {deltaText(m)}
                          </td>
                          <td className="num">{fmt(m.vinfo, 4)}</td>
                        </>
                      )}
                    </tr>
                  );
                })}
                {list && list.models.length === 0 && (
                  <tr>
                    <td colSpan={8} className="hint">
                      No membrane model found: open a model folder (emseg train or emseg compress writes one).
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          <div className="modal-buttons">
            <button type="button" onClick={openFolder} data-testid="model-open-folder" title="A folder written by emseg train or emseg compress">
              Open model folder…
            </button>
            <span className="spacer" />
            <button type="button" onClick={onClose} data-testid="model-picker-close">
              Close
            </button>
          </div>
        </div>
      </div>
      {browsing && (
        <FolderBrowser
          api={api}
          title="Open a model folder"
          openLabel="Use this folder as the model"
          onOpen={(path) => {
            setBrowsing(false);
            void open(path);
          }}
          onClose={() => setBrowsing(false)}
        />
      )}
    </>
  );
}
