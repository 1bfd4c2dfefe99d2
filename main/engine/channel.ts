// A one-slot async channel: the producer's push() resolves only when the consumer has taken the value. It lets one
// loop feed several streaming writers (membrane.tif, each round's map, labels.tif) slice by slice, so memory stays at
// one slice per output whatever the stack length.
export class SliceChannel<T> implements AsyncIterable<T> {
  private waitingConsumer: ((r: IteratorResult<T>) => void) | null = null;
  private pending: { value: T; taken: () => void } | null = null;
  private closed = false;

  push(value: T): Promise<void> {
    if (this.closed) throw new Error('push on a closed channel');
    return new Promise<void>((taken) => {
      if (this.waitingConsumer) {
        const c = this.waitingConsumer;
        this.waitingConsumer = null;
        c({ value, done: false });
        taken();
      } else {
        this.pending = { value, taken };
      }
    });
  }

  close(): void {
    this.closed = true;
    if (this.waitingConsumer) {
      const c = this.waitingConsumer;
      this.waitingConsumer = null;
      c({ value: undefined as never, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () =>
        new Promise<IteratorResult<T>>((resolve) => {
          if (this.pending) {
            const p = this.pending;
            this.pending = null;
            resolve({ value: p.value, done: false });
            p.taken();
          } else if (this.closed) {
            resolve({ value: undefined as never, done: true });
          } else {
            this.waitingConsumer = resolve;
          }
        }),
    };
  }
}
