// The few Electron APIs EMSeg uses, typed narrowly here. Electron is an optional dependency that may be absent (CI,
// machines where its binary download is blocked), so nothing imports 'electron' statically: the main process and
// the preload load it at run time by a variable specifier, and these interfaces stand in for its type definitions.
// Each member mirrors Electron's documented signature for the options EMSeg passes.

export interface WebFrameMain {
  url: string;
  /** null for a top-level frame. */
  parent: WebFrameMain | null;
}

export interface WebContents {
  id: number;
  send(channel: string, ...args: unknown[]): void;
  on(event: 'will-navigate' | 'will-redirect', listener: (e: { preventDefault(): void; url: string }) => void): void;
  on(event: 'will-attach-webview', listener: (e: { preventDefault(): void }) => void): void;
  setWindowOpenHandler(handler: (details: { url: string }) => { action: 'deny' }): void;
  isDestroyed(): boolean;
}

export interface IpcMainInvokeEvent {
  sender: WebContents;
  senderFrame: WebFrameMain | null;
}

export interface BrowserWindowOptions {
  width: number;
  height: number;
  show: boolean;
  backgroundColor: string;
  title: string;
  webPreferences: {
    preload: string;
    contextIsolation: boolean;
    sandbox: boolean;
    nodeIntegration: boolean;
    nodeIntegrationInWorker: boolean;
    webSecurity: boolean;
    allowRunningInsecureContent: boolean;
    webviewTag: boolean;
    spellcheck: boolean;
  };
}

export interface BrowserWindow {
  webContents: WebContents;
  loadURL(url: string): Promise<void>;
  once(event: 'ready-to-show', listener: () => void): void;
  on(event: 'closed', listener: () => void): void;
  show(): void;
}

export interface UtilityProcess {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (message: unknown) => void): void;
  on(event: 'exit', listener: (code: number) => void): void;
  kill(): boolean;
}

export interface ElectronMain {
  app: {
    whenReady(): Promise<void>;
    on(event: 'window-all-closed' | 'before-quit', listener: () => void): void;
    on(event: 'web-contents-created', listener: (e: unknown, contents: WebContents) => void): void;
    quit(): void;
    getPath(name: 'userData'): string;
    getAppPath(): string;
    readonly commandLine: { appendSwitch(name: string, value?: string): void };
  };
  BrowserWindow: new (options: BrowserWindowOptions) => BrowserWindow;
  ipcMain: {
    handle(channel: string, listener: (event: IpcMainInvokeEvent, ...args: unknown[]) => Promise<unknown>): void;
  };
  dialog: {
    showOpenDialog(
      window: BrowserWindow,
      options: { title: string; properties: ('openFile' | 'openDirectory')[]; filters?: { name: string; extensions: string[] }[] },
    ): Promise<{ canceled: boolean; filePaths: string[] }>;
  };
  protocol: {
    registerSchemesAsPrivileged(schemes: { scheme: string; privileges: { standard: boolean; secure: boolean; supportFetchAPI: boolean } }[]): void;
    handle(scheme: string, handler: (request: Request) => Response | Promise<Response>): void;
  };
  session: {
    defaultSession: {
      setPermissionRequestHandler(handler: (contents: WebContents, permission: string, callback: (granted: boolean) => void) => void): void;
      setPermissionCheckHandler(handler: () => boolean): void;
    };
  };
  utilityProcess: {
    fork(modulePath: string, args: string[], options: { serviceName: string; stdio: 'inherit' | 'ignore' }): UtilityProcess;
  };
}

/** What the preload uses. */
export interface ElectronPreload {
  contextBridge: { exposeInMainWorld(key: string, api: unknown): void };
  ipcRenderer: {
    invoke(channel: string, ...args: unknown[]): Promise<unknown>;
    on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): void;
    removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): void;
  };
  webUtils: { getPathForFile(file: unknown): string };
}
