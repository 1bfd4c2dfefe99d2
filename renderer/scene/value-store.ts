// A tiny external store for values that change at pointer or frame rate (cursor read-outs, zoom). Components read
// them with useSyncExternalStore, so only the few small components that show them re-render, never the app.
export class ValueStore<T> {
  private readonly listeners = new Set<() => void>();
  constructor(private value: T) {}

  get = (): T => this.value;

  set(value: T): void {
    if (Object.is(value, this.value)) return;
    this.value = value;
    for (const l of this.listeners) l();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}
