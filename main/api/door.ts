// The validating door: every call from a renderer, over Electron IPC or browser mode's HTTP, comes through here.
// It rejects unknown call names, asks the transport whether the caller may call at all (the Electron sender check),
// validates the arguments with the contract's validator for that call, runs the handler, and turns every failure
// into { code, message } with one line the user can read. Handlers therefore only ever see well-typed arguments.
import { ContractError, isCallName, validators, type Args, type CallName, type Envelope, type ErrorCode, type Result } from './contract';

/** An error with a contract error code; handlers throw it for 403, 404 and friends. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Who is calling: enough for handlers that act on behalf of a window (the native dialog needs its parent). */
export interface CallContext {
  transport: 'electron' | 'browser';
  /** Transport-specific handle of the caller (the Electron WebContents), opaque to the door. */
  caller?: unknown;
}

export type Handlers = { [K in CallName]: (args: Args<K>, ctx: CallContext) => Promise<Result<K>> };

export interface Door {
  /** Runs one call; never throws (every failure becomes an error envelope). */
  call(name: unknown, args: unknown, ctx: CallContext): Promise<Envelope<unknown>>;
}

export interface DoorOptions {
  /** Transport check run before anything else, e.g. that an IPC message comes from our own window. */
  admit?: (ctx: CallContext) => boolean;
  /** Where unexpected errors go (their stack traces are not sent to the renderer). */
  logInternal?: (name: string, e: unknown) => void;
}

/** Is this an error whose message is meant for the user (a bad file, a missing model) rather than a bug? */
function isUserFacing(e: unknown): e is Error {
  return e instanceof Error && (e as { userFacing?: unknown }).userFacing === true;
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim().slice(0, 500);
}

export function createDoor(handlers: Handlers, opts: DoorOptions = {}): Door {
  const logInternal = opts.logInternal ?? ((name, e) => console.error(`emseg: call ${name} failed:`, e));
  return {
    async call(name, rawArgs, ctx) {
      const err = (code: ErrorCode, message: string): Envelope<never> => ({ ok: false, error: { code, message: oneLine(message) } });
      if (opts.admit && !opts.admit(ctx)) return err('forbidden', 'caller not admitted');
      if (!isCallName(name)) return err('not-found', `no such call: ${String(name).slice(0, 64)}`);
      let args: unknown;
      try {
        args = validators[name](rawArgs, name);
      } catch (e) {
        if (e instanceof ContractError) return err('bad-request', e.message);
        throw e;
      }
      try {
        // The cast is the one place the map from name to handler loses its link to the argument type.
        const handler = handlers[name] as (a: unknown, c: CallContext) => Promise<unknown>;
        return { ok: true, value: await handler(args, ctx) };
      } catch (e) {
        if (e instanceof ApiError) return err(e.code, e.message);
        if (isUserFacing(e)) return err('user', e.message);
        logInternal(name, e);
        return err('internal', `internal error in ${name}: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
  };
}
