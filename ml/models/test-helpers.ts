// Test helpers for models: deterministic pseudo-random inputs and batch-norm statistics that are not the identity.
import * as tf from '@tensorflow/tfjs';

export function pseudoRandom(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * scale;
  }
  return a;
}

/** Give every batch-norm layer non-trivial γ, β, μ, σ² so that folding it into a convolution is really exercised. */
export function perturbBatchNorm(model: tf.LayersModel): void {
  let seed = 11;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    // getWeights() returns the layer's live variables: read their shape, never dispose them.
    const n = layer.getWeights()[0].shape[0];
    const jitter = (base: number, amp: number) => tf.tensor1d(pseudoRandom(n, seed++, amp).map((x) => base + x));
    const ws = [jitter(1, 0.4), jitter(0, 0.2), jitter(0, 0.2), jitter(1, 0.8)];
    layer.setWeights(ws);
    tf.dispose(ws);
  }
}

/**
 * Replace every weight by seeded pseudo-random values (He-scaled for kernels), so that a test's model is the same on
 * every run: tfjs' own initialisers are not seeded, and a tiny random network can have dead units that hide what a
 * test looks for. `positive` makes every weight positive (with positive inputs every ReLU is then active).
 */
export function seedWeights(model: tf.LayersModel, seed: number, opts: { positive?: boolean } = {}): void {
  let s = seed;
  for (const layer of model.layers) {
    if (layer.getClassName() === 'BatchNormalization') continue;
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    const fresh = ws.map((w) => {
      const fanIn = w.shape.length === 4 ? w.shape[0] * w.shape[1] * w.shape[2] : 1;
      // Uniform on ±√(6/fanIn) (pseudoRandom spans ±scale/2): variance 2/fanIn, He's, so activations keep their scale.
      const scale = w.shape.length === 4 ? 2 * Math.sqrt(6 / fanIn) : 0.2;
      const v = pseudoRandom(w.size, s++, scale);
      if (opts.positive) for (let i = 0; i < v.length; i++) v[i] = Math.abs(v[i]) + 0.01;
      return tf.tensor(v, w.shape);
    });
    layer.setWeights(fresh);
    tf.dispose(fresh);
  }
}
