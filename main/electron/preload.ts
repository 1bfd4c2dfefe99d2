// The preload: exposes `window.emseg`, exactly one function per contract call, each bound to its own IPC channel,
// plus the event subscription and the path of a dropped file. Never a generic send/invoke: a compromised page can
// call nothing the contract does not list. It runs sandboxed (so it is built as CommonJS, and may only require
// 'electron'), and passes no Electron object (no event, no ipcRenderer) to the page.
import { IPC_EVENT_CHANNEL, ipcChannel, type ApiEvent, type Args, type CallName, type Envelope, type PreloadApi, type Result } from '../api/contract';
import type { ElectronPreload } from './electron-api';

const electronModule = 'electron';
// A sandboxed preload has no module loader but a require() that knows 'electron'; there is no import to use instead.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { contextBridge, ipcRenderer, webUtils } = require(electronModule) as ElectronPreload;

async function call<K extends CallName>(name: K, args: Args<K>): Promise<Result<K>> {
  const r = (await ipcRenderer.invoke(ipcChannel(name), args)) as Envelope<Result<K>>;
  if (r.ok) return r.value;
  // The code travels in the message: errors crossing the context bridge keep only their message.
  throw new Error(`[${r.error.code}] ${r.error.message}`);
}

const api: PreloadApi = {
  appInfo: (a) => call('appInfo', a),
  openStack: (a) => call('openStack', a),
  sampleStack: (a) => call('sampleStack', a),
  listRecent: (a) => call('listRecent', a),
  pickPath: (a) => call('pickPath', a),
  browseFolder: (a) => call('browseFolder', a),
  readSlice: (a) => call('readSlice', a),
  readResult: (a) => call('readResult', a),
  uploadFile: (a) => call('uploadFile', a),
  startJob: (a) => call('startJob', a),
  cancelJob: (a) => call('cancelJob', a),
  listJobs: (a) => call('listJobs', a),
  createProject: (a) => call('createProject', a),
  openProject: (a) => call('openProject', a),
  closeProject: (a) => call('closeProject', a),
  readProject: (a) => call('readProject', a),
  resolveProposal: (a) => call('resolveProposal', a),
  editProject: (a) => call('editProject', a),
  undoEdit: (a) => call('undoEdit', a),
  redoEdit: (a) => call('redoEdit', a),
  newLabel: (a) => call('newLabel', a),
  lockSegment: (a) => call('lockSegment', a),
  setSliceStatus: (a) => call('setSliceStatus', a),
  sliceQuality: (a) => call('sliceQuality', a),
  exportProject: (a) => call('exportProject', a),
  startBatch: (a) => call('startBatch', a),
  stopBatch: (a) => call('stopBatch', a),
  listBatches: (a) => call('listBatches', a),
  openBatchResult: (a) => call('openBatchResult', a),
  listModels: (a) => call('listModels', a),
  openModel: (a) => call('openModel', a),
  chooseModel: (a) => call('chooseModel', a),
  onEvent(listener) {
    const handler = (_event: unknown, e: unknown) => listener(e as ApiEvent);
    ipcRenderer.on(IPC_EVENT_CHANNEL, handler);
    return () => ipcRenderer.removeListener(IPC_EVENT_CHANNEL, handler);
  },
  pathForFile: (file) => webUtils.getPathForFile(file),
};

contextBridge.exposeInMainWorld('emseg', api);
