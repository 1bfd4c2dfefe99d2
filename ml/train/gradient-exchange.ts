// Gradients exchanged between training replicas through shared memory, so that a step's averaging costs no message
// copies and no work on the coordinating thread.
//
// Why: with two replicas each posting its gradients (1.9 M floats for the U-Net) to a coordinator that averaged them
// and posted the average back to both, a replica waited 75–115 ms per step of ~1.5 s between sending its gradients
// and receiving the next step (2-core AMD EPYC; the coordinator's averaging loop alone took ~40 ms). Here every replica
// writes its gradients into its own slot of one SharedArrayBuffer and, at the start of the next step, sums all slots
// itself (Replica.applyWeightedSum): each on its own core, in the same order, so the sums, and so the weights, stay
// bit-identical across replicas.
//
// Slots are double-buffered by the parity of the step: a replica writes step k's gradients into parity k % 2 while a
// slower replica may still be reading parity (k − 1) % 2 for its average. A replica can only write parity k % 2 again
// at step k + 2, which the coordinator starts once every replica has finished step k + 1, and so has read step k's
// slots.

export interface ExchangeLayout {
  /** Length of each trainable variable's gradient, in training order. */
  sizes: number[];
  /** Number of replicas. */
  replicas: number;
}

const total = (sizes: number[]) => sizes.reduce((a, b) => a + b, 0);

/** Bytes of the shared buffer a layout needs: two parities × replicas × all gradients, float32. */
export function exchangeBytes(layout: ExchangeLayout): number {
  return 2 * layout.replicas * total(layout.sizes) * 4;
}

export class GradientExchange {
  private readonly slots: Float32Array[][][];

  /** Views of `buffer` (exchangeBytes(layout) long, normally a SharedArrayBuffer seen by every replica). */
  constructor(buffer: ArrayBufferLike, readonly layout: ExchangeLayout) {
    if (buffer.byteLength < exchangeBytes(layout)) throw new Error(`gradient exchange: buffer of ${buffer.byteLength} bytes, ${exchangeBytes(layout)} needed`);
    const n = total(layout.sizes);
    this.slots = [0, 1].map((parity) =>
      Array.from({ length: layout.replicas }, (_, r) => {
        let offset = ((parity * layout.replicas + r) * n) * 4;
        return layout.sizes.map((size) => {
          const view = new Float32Array(buffer, offset, size);
          offset += size * 4;
          return view;
        });
      }),
    );
  }

  /** Store one replica's gradients of a step. */
  write(step: number, replica: number, grads: ArrayLike<number>[]): void {
    const slot = this.slots[step % 2][replica];
    if (grads.length !== slot.length) throw new Error(`gradient exchange: ${grads.length} gradients for ${slot.length} variables`);
    for (let k = 0; k < slot.length; k++) {
      if (grads[k].length !== slot[k].length) throw new Error(`gradient exchange: gradient ${k} has ${grads[k].length} values, ${slot[k].length} expected`);
      slot[k].set(grads[k]);
    }
  }

  /** Every replica's gradients of a step, by replica (views of the shared memory: read them, do not keep them). */
  read(step: number): Float32Array[][] {
    return this.slots[step % 2];
  }
}
