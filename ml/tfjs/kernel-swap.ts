// Replacing some of a tfjs backend's kernels by EMSeg's, reversibly. A set remembers the kernels it replaced, so that
// its replacements can leave the cases they do not handle to them, and so that comparisons (npm run bench, tests) can
// switch it off again. Used for the wasm backend by wasm-conv-gradients.ts, wasm-kernels.ts and ort-conv-kernels.ts.
import * as tf from '@tensorflow/tfjs';
import type { KernelFunc } from '@tensorflow/tfjs';

export class KernelSwap {
  private readonly originals = new Map<string, KernelFunc>();
  private on = false;

  constructor(
    private readonly backendName: string,
    private readonly replacements: Record<string, KernelFunc>,
  ) {}

  /** The kernel that `name`'s replacement replaced (a replacement only runs once use(true) has saved it). */
  original(name: string): KernelFunc {
    const k = this.originals.get(name);
    if (!k) throw new Error(`no original ${this.backendName} kernel ${name}`);
    return k;
  }

  active(): boolean {
    return this.on;
  }

  /** Register the replacements (on = true) or the kernels they replaced. The backend's kernels must be registered. */
  use(on: boolean): void {
    for (const [name, replacement] of Object.entries(this.replacements)) {
      const current = tf.getKernel(name, this.backendName);
      if (!current) throw new Error(`${this.backendName} kernel ${name} missing`);
      if (!this.originals.has(name)) {
        if (!on) continue;
        this.originals.set(name, current.kernelFunc);
      }
      const kernelFunc = on ? replacement : this.originals.get(name)!;
      if (current.kernelFunc === kernelFunc) continue;
      tf.unregisterKernel(name, this.backendName);
      tf.registerKernel({ kernelName: name, backendName: this.backendName, setupFunc: current.setupFunc, disposeFunc: current.disposeFunc, kernelFunc });
    }
    this.on = on;
  }
}
