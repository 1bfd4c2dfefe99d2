// The Electron main process (built by electron-vite to out/main/index.js). It follows Electron's security checklist:
//   - the renderer is served from a custom app:// protocol (never file://), with the same strict
//     Content-Security-Policy as browser mode, as a header and in index.html;
//   - context isolation on, sandbox on, Node integration off (also in workers), no <webview>, web security on;
//   - navigation, redirects and new windows are denied, permission requests (camera, notifications, …) refused;
//   - every IPC call arrives on its own channel and goes through the validating door, which first checks that the
//     sender is our window's main frame on app://emseg;
//   - jobs run in utility processes (main/jobs/job-process.ts), never on this process's event loop.
import { createRequire } from 'node:module';
import { readFile, realpath } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBackend } from '../api/backend';
import { CALL_NAMES, IPC_EVENT_CHANNEL, ipcChannel, type ApiEvent } from '../api/contract';
import { sessionResultsDir } from '../api/dirs';
import { createDoor } from '../api/door';
import type { FromJob, JobProcess } from '../jobs/protocol';
import { CONTENT_SECURITY_POLICY, SECURITY_HEADERS } from '../server/security';
import { resolveStatic } from '../server/static-files';
import type { BrowserWindow, ElectronMain, IpcMainInvokeEvent } from './electron-api';

const electronModule = 'electron';
const { app, BrowserWindow: Window, ipcMain, dialog, protocol, session, utilityProcess } = createRequire(import.meta.url)(electronModule) as ElectronMain;

const here = dirname(fileURLToPath(import.meta.url)); // out/main
const ORIGIN = 'app://emseg';
const RENDERER_DIR = join(here, '..', 'renderer');
const PRELOAD = join(here, '..', 'preload', 'index.cjs');
const JOB_PROCESS = join(here, 'job-process.js');
// Batch workers are child processes the batch engine forks (Electron runs a fork as plain Node), bundled beside us.
const BATCH_WORKER = join(here, 'batch-worker.js');

// Must happen before 'ready': app:// behaves like https (a secure, standard origin) so fetch, workers and the CSP's
// 'self' work as on the web.
protocol.registerSchemesAsPrivileged([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

let mainWindow: BrowserWindow | null = null;

function spawnUtilityJob(): JobProcess {
  const child = utilityProcess.fork(JOB_PROCESS, [], { serviceName: 'EMSeg job', stdio: 'inherit' });
  return {
    send: (m) => child.postMessage(m),
    onMessage: (listener) => child.on('message', (m) => listener(m as FromJob)),
    onExit: (listener) => child.on('exit', (code) => listener(code)),
    kill: () => {
      child.kill();
    },
  };
}

/** Only our own window's top frame, showing our own origin, may call the API. */
function admitted(event: IpcMainInvokeEvent): boolean {
  const w = mainWindow;
  if (!w || w.webContents.isDestroyed() || event.sender.id !== w.webContents.id) return false;
  const frame = event.senderFrame;
  return frame !== null && frame.parent === null && new URL(frame.url).origin === ORIGIN;
}

async function start(): Promise<void> {
  // Hardening that needs no window: no permission is ever granted, no navigation or new window anywhere.
  session.defaultSession.setPermissionRequestHandler((_c, _p, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  app.on('web-contents-created', (_e, contents) => {
    contents.on('will-navigate', (e) => e.preventDefault());
    contents.on('will-redirect', (e) => e.preventDefault());
    contents.on('will-attach-webview', (e) => e.preventDefault());
    contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  });

  const rendererReal = await realpath(RENDERER_DIR);
  protocol.handle('app', async (request) => {
    const url = new URL(request.url);
    if (url.host !== 'emseg') return new Response('not found', { status: 404 });
    const found = await resolveStatic(rendererReal, url.pathname);
    if ('error' in found) return new Response(found.error, { status: found.error === 'forbidden' ? 403 : 404 });
    return new Response(await readFile(found.file), { headers: { ...SECURITY_HEADERS, 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'Content-Type': found.type } });
  });

  const userData = app.getPath('userData');
  const send = (e: ApiEvent) => {
    if (mainWindow && !mainWindow.webContents.isDestroyed()) mainWindow.webContents.send(IPC_EVENT_CHANNEL, e);
  };
  // Folders named on the command line (`emseg app FOLDER`) count as opened by the user.
  const roots = process.argv.slice(2).filter((a) => !a.startsWith('-')).map((a) => resolve(a));
  const backend = await createBackend({
    transport: 'electron',
    spawnJob: spawnUtilityJob,
    batchWorkerBoot: BATCH_WORKER,
    configDir: userData,
    resultsDir: await sessionResultsDir(userData),
    roots,
    samplePath: join(app.getAppPath(), 'sample-data', 'isbi2012-val'),
    onEvent: send,
    async pickPath(mode) {
      if (!mainWindow) return null;
      const r = await dialog.showOpenDialog(mainWindow, {
        title: mode === 'folder' ? 'Open a folder of slices' : 'Open a stack',
        properties: [mode === 'folder' ? 'openDirectory' : 'openFile'],
        filters: mode === 'file' ? [{ name: 'EM stacks and images', extensions: ['tif', 'tiff', 'png', 'jpg', 'jpeg'] }] : undefined,
      });
      return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0];
    },
  });
  const door = createDoor(backend.handlers, { admit: (ctx) => admitted(ctx.caller as IpcMainInvokeEvent) });
  for (const name of CALL_NAMES) {
    ipcMain.handle(ipcChannel(name), (event, args) => door.call(name, args, { transport: 'electron', caller: event }));
  }

  mainWindow = new Window({
    width: 1440,
    height: 920,
    show: false,
    backgroundColor: '#16181c',
    title: 'EMSeg',
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  const w = mainWindow;
  w.once('ready-to-show', () => w.show());
  w.on('closed', () => {
    mainWindow = null;
  });
  await w.loadURL(`${ORIGIN}/index.html`);

  let closing = false;
  app.on('window-all-closed', () => {
    if (closing) return;
    closing = true;
    // End running jobs and delete this session's results before quitting.
    void backend.close().finally(() => app.quit());
  });
}

app.whenReady().then(start, (e: unknown) => {
  console.error('emseg: could not start', e);
  app.quit();
});
