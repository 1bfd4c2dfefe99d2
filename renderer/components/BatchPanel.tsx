// The batch panel: run `emseg batch`'s engine over a folder from the app. Choose the input and output folders, start,
// watch the counts, ETA and each item as it finishes, stop, and start again to resume (finished items are skipped by
// the engine's manifest, not by this panel). Any finished item opens in the viewer with its maps and labels. Batches
// run the membrane model chosen in the model picker (the Jobs panel), like jobs do.
import { useEffect, useState } from 'react';
import type { BatchInfo, EmsegApi, StackSummary } from '../../main/api/contract';
import { eta } from './JobsPanel';
import { modelSummary, useModels } from './ModelPicker';

interface Props {
  api: EmsegApi;
  /** Folder offered as the input until the user types another (the sample stack's images). */
  defaultInput: string;
  nativePicker: boolean;
  onOpened: (stack: StackSummary) => void;
  onError: (e: unknown) => void;
  onClose: () => void;
}

export function BatchPanel({ api, defaultInput, nativePicker, onOpened, onError, onClose }: Props) {
  const [input, setInput] = useState(defaultInput);
  // No default output: results belong where the user decides, never beside the input by surprise.
  const [outDir, setOutDir] = useState('');
  const [rounds, setRounds] = useState('');
  const [report, setReport] = useState(true);
  const [batches, setBatches] = useState<BatchInfo[]>([]);
  const models = useModels(api, onError);

  useEffect(() => {
    api.listBatches({}).then(setBatches, () => undefined);
    return api.onEvent((e) => {
      if (e.type !== 'batch') return;
      setBatches((bs) => {
        const i = bs.findIndex((b) => b.batchId === e.batch.batchId);
        if (i < 0) return [...bs, e.batch];
        const next = bs.slice();
        next[i] = e.batch;
        return next;
      });
    });
  }, [api]);

  const start = (inPath: string, out: string) => {
    api
      .startBatch({
        input: inPath,
        outDir: out,
        ...(rounds.trim() !== '' ? { refineRounds: Number(rounds) } : {}),
        report,
        ...(models.chosenModel !== undefined ? { membraneModel: models.chosenModel } : {}),
      })
      .then(() => undefined, onError);
  };
  const pick = (set: (p: string) => void) => api.pickPath({ mode: 'folder' }).then((r) => r && set(r.path), onError);

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal batch" role="dialog" aria-label="Batch" onClick={(e) => e.stopPropagation()} data-testid="batch-panel">
        <h2>Batch</h2>
        <label className="batch-field">
          input folder
          <input value={input} onChange={(e) => setInput(e.target.value)} data-testid="batch-input" spellCheck={false} />
          {nativePicker && (
            <button type="button" onClick={() => pick(setInput)}>
              …
            </button>
          )}
        </label>
        <label className="batch-field">
          output folder
          <input value={outDir} placeholder="a folder for the results (created)" onChange={(e) => setOutDir(e.target.value)} data-testid="batch-out" spellCheck={false} />
          {nativePicker && (
            <button type="button" onClick={() => pick(setOutDir)}>
              …
            </button>
          )}
        </label>
        <div className="hint" title={models.current?.path} data-testid="batch-model">
          membrane model: {models.current ? `${models.current.name} (${modelSummary(models.current)})` : '…'} — chosen in the Jobs panel
        </div>
        <div className="job-options">
          <label title="Refinement rounds; empty = the refiner's own choice">
            rounds <input type="number" min={0} max={20} value={rounds} placeholder="auto" onChange={(e) => setRounds(e.target.value)} className="small" />
          </label>
          <label title="Write report.html: thumbnails, timings and scores per item">
            <input type="checkbox" checked={report} onChange={(e) => setReport(e.target.checked)} /> QC report
          </label>
          <button type="button" disabled={!input.trim() || !outDir.trim()} onClick={() => start(input.trim(), outDir.trim())} data-testid="batch-start">
            Start
          </button>
        </div>
        <ul className="jobs batch-list" data-testid="batch-list">
          {[...batches].reverse().map((b) => {
            const running = b.state === 'running';
            const frac = b.todo > 0 ? b.finished / b.todo : running ? 0 : 1;
            return (
              <li key={b.batchId} className={`job job-${b.state}`} data-testid={`batch-${b.batchId}`} data-state={b.state}>
                <div className="job-head">
                  <strong title={b.input}>{b.input.split('/').pop()}</strong> <span className="hint" title={b.outDir}>→ {b.outDir.split('/').pop()}</span>
                  <span className="job-state">{b.state}</span>
                  {running ? (
                    <button type="button" onClick={() => api.stopBatch({ batchId: b.batchId }).then(() => undefined, onError)} data-testid={`batch-stop-${b.batchId}`}>
                      Stop
                    </button>
                  ) : (
                    <button type="button" onClick={() => start(b.input, b.outDir)} title="Run again: finished items are skipped" data-testid={`batch-resume-${b.batchId}`}>
                      {b.state === 'done' ? 'Run again' : 'Resume'}
                    </button>
                  )}
                </div>
                <progress max={1} value={frac} />
                <div className="hint">
                  {b.items} item(s): {b.unchanged} already done, {b.finished}/{b.todo} this run ({b.done} done, {b.failed} failed)
                  {b.mpxPerSecond !== null ? ` · ${b.mpxPerSecond} Mpx/s` : ''}
                  {running && b.etaSeconds !== null ? ` · ${eta(b.etaSeconds)}` : ''}
                </div>
                {b.error && <div className="error">{b.error}</div>}
                {b.report && <div className="hint">report: {b.report}</div>}
                <ul className="batch-items">
                  {b.itemList.map((it) => (
                    <li key={it.key} className={`batch-item item-${it.status}`} data-testid="batch-item" data-key={it.key} data-status={it.status}>
                      <span className="batch-key" title={it.input}>
                        {it.key}
                      </span>
                      <span className="hint">
                        {it.status}
                        {it.seconds !== null ? ` · ${it.seconds.toFixed(1)} s` : ''}
                        {it.vrand !== null ? ` · V_rand ${it.vrand.toFixed(3)}` : ''}
                      </span>
                      {it.status !== 'failed' ? (
                        <button
                          type="button"
                          onClick={() =>
                            api.openBatchResult({ batchId: b.batchId, key: it.key }).then((r) => {
                              onOpened(r.stack);
                              onClose();
                            }, onError)
                          }
                          data-testid="batch-open"
                        >
                          Open
                        </button>
                      ) : (
                        <span className="error" title={it.error ?? ''}>
                          {it.error}
                        </span>
                      )}
                    </li>
                  ))}
                </ul>
              </li>
            );
          })}
        </ul>
        <div className="buttons">
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </div>
  );
}
