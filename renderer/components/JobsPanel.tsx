// Jobs: start predict (membrane model), refine (plus refinement rounds) and segment (plus watershed) on the open
// stack, all slices or the current one, with the membrane model chosen in the model picker; follow progress and ETA;
// cancel. The list shows every job of the session.
import { useEffect, useState } from 'react';
import type { EmsegApi, JobInfo, JobKind, JobParams, StackSummary } from '../../main/api/contract';
import { ModelPicker, modelSummary, useModels } from './ModelPicker';

/** Time left for a progress line (jobs and batches). */
export function eta(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 60) return `${Math.ceil(seconds)} s left`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s left` : `${Math.floor(m / 60)} h ${m % 60} min left`;
}

const KIND_NAMES: Record<JobKind, string> = { predict: 'Predict', refine: 'Refine', segment: 'Segment', pipeline: 'Pipeline' };

interface Props {
  api: EmsegApi;
  /** Electron's folder dialog is available (else the model picker uses the folder browser). */
  nativePicker: boolean;
  stack: StackSummary | null;
  z: number;
  jobs: JobInfo[];
  onStart: (kind: JobKind, params: JobParams) => void;
  onCancel: (jobId: string) => void;
  onError: (e: unknown) => void;
}

/** Last part of a folder path, for the job list. */
const folderName = (path: string): string => path.split(/[\\/]/).filter(Boolean).pop() ?? path;

export function JobsPanel({ api, nativePicker, stack, z, jobs, onStart, onCancel, onError }: Props) {
  const [scope, setScope] = useState<'slice' | 'all'>('slice');
  const [rounds, setRounds] = useState('');
  const [tta, setTta] = useState(false);
  const [pixelSize, setPixelSize] = useState('');
  // A pixel size typed for one stack is not another's.
  const stackId = stack?.stackId;
  useEffect(() => setPixelSize(''), [stackId]);
  const [refiner, setRefiner] = useState('');
  const [picking, setPicking] = useState(false);
  const models = useModels(api, onError);
  const params = (): JobParams => ({
    ...(scope === 'slice' ? { slices: [z] } : {}),
    ...(rounds.trim() !== '' ? { rounds: Number(rounds) } : {}),
    ...(tta ? { tta: true } : {}),
    ...(Number(pixelSize) > 0 ? { pixelSizeNm: Number(pixelSize) } : {}),
    ...(models.chosenModel !== undefined ? { membraneModel: models.chosenModel } : {}),
    ...(refiner.trim() !== '' ? { refiner: refiner.trim() } : {}),
  });
  const start = (kind: JobKind) => onStart(kind, params());
  return (
    <section className="panel" aria-label="Jobs">
      <h2>Jobs</h2>
      <div className="job-model">
        <span className="job-model-name" title={models.current ? `${models.current.path}\n${modelSummary(models.current)}` : undefined} data-testid="model-current">
          model: <strong>{models.current?.name ?? (models.list ? 'none found' : '…')}</strong>
        </span>
        <button type="button" onClick={() => setPicking(true)} data-testid="model-choose" title="Choose the membrane model: shipped, compressed or a folder of yours">
          Choose…
        </button>
        {models.current && (
          <div className="hint" data-testid="model-summary">
            {modelSummary(models.current)}
          </div>
        )}
      </div>
      <div className="job-buttons">
        {(['predict', 'refine', 'segment'] as const).map((k) => (
          <button key={k} type="button" disabled={!stack} onClick={() => start(k)} data-testid={`start-${k}`}>
            {KIND_NAMES[k]}
          </button>
        ))}
      </div>
      <div className="job-options">
        <label>
          <input type="radio" name="scope" checked={scope === 'slice'} onChange={() => setScope('slice')} /> this slice
        </label>
        <label>
          <input type="radio" name="scope" checked={scope === 'all'} onChange={() => setScope('all')} data-testid="scope-all" /> all {stack?.depth ?? ''} slices
        </label>
        <label title="Refinement rounds; empty = the refiner's own choice">
          rounds <input type="number" min={0} max={20} value={rounds} placeholder="auto" onChange={(e) => setRounds(e.target.value)} className="small" />
        </label>
        <label title="Test-time augmentation: average over 8 flips and rotations (8× slower)">
          <input type="checkbox" checked={tta} onChange={(e) => setTta(e.target.checked)} /> TTA
        </label>
        <label title="The stack's pixel size in nm; empty = what its file says. Stacks imaged at another pixel size than the model's are resized to the model's for it, and the maps back.">
          nm/px{' '}
          <input
            type="number"
            min={0.01}
            step="any"
            value={pixelSize}
            placeholder={stack?.pixelSizeNm ? String(Number(stack.pixelSizeNm.x.toPrecision(3))) : 'unknown'}
            onChange={(e) => setPixelSize(e.target.value)}
            className="small"
            data-testid="pixel-size"
          />
        </label>
      </div>
      <details className="job-models">
        <summary>Refiner</summary>
        <label title="Folder of a refiner (emseg train-refiner); empty = the shipped one">
          refiner <input value={refiner} placeholder="shipped" onChange={(e) => setRefiner(e.target.value)} data-testid="refiner-model" />
        </label>
      </details>
      <ul className="jobs" data-testid="job-list">
        {[...jobs].reverse().map((j) => {
          const active = j.state === 'running' || j.state === 'queued';
          const frac = j.total > 0 ? j.done / j.total : 0;
          return (
            <li key={j.jobId} className={`job job-${j.state}`} data-testid={`job-${j.jobId}`} data-state={j.state}>
              <div className="job-head">
                <strong>{KIND_NAMES[j.kind]}</strong> <span className="hint">{j.stackName}</span>
                <span className="job-state">{j.state}</span>
                {active && (
                  <button type="button" onClick={() => onCancel(j.jobId)} data-testid={`cancel-${j.jobId}`}>
                    Cancel
                  </button>
                )}
              </div>
              <progress max={1} value={frac} />
              <div className="hint" data-testid="job-progress">
                {j.done}/{j.total || '?'} · {j.stage}
                {active && j.etaSeconds !== null ? ` · ${eta(j.etaSeconds)}` : ''}
                {j.membraneModel !== undefined && (
                  <span title={j.membraneModel} data-testid="job-model">
                    {` · model ${folderName(j.membraneModel)}`}
                  </span>
                )}
              </div>
              {j.notices.map((n) => (
                <div key={n} className="hint job-notice" data-testid="job-notice">
                  {n}
                </div>
              ))}
              {j.error && <div className="error">{j.error}</div>}
            </li>
          );
        })}
      </ul>
      {picking && <ModelPicker api={api} models={models} nativePicker={nativePicker} onError={onError} onClose={() => setPicking(false)} />}
    </section>
  );
}
