// Seeded initial weights (seedInitialWeights): the same seed gives the same model, each kernel drawn from its layer's
// own initializer (so with its scale), and the constants (biases, batch norm) stay as built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildModel, seedInitialWeights, type ModelConfig } from '.';

const rms = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0) / a.length);

test('seeded initial weights repeat for a seed, differ between seeds, and keep each initializer\'s scale', () => {
  const configs: ModelConfig[] = [
    { kind: 'unet', baseChannels: 8, depth: 2, inChannels: 1 },
    { kind: 'unet', baseChannels: 4, depth: 1, inChannels: 1, binary: {} },
    { kind: 'refiner', inChannels: 2, branchLayers: 2, channels: 8, headLayers: 1 },
  ];
  for (const cfg of configs) {
    const [a, b, c] = [1, 1, 2].map((seed) => {
      const m = buildModel(cfg);
      const built = m.getWeights().map((w) => w.dataSync().slice());
      seedInitialWeights(m, seed);
      const names = m.weights.map((w) => w.originalName);
      return { built, names, after: m.getWeights().map((w) => w.dataSync().slice()) };
    });
    const kernels = a.names.map((n, i) => (n.endsWith('/kernel') ? i : -1)).filter((i) => i >= 0);
    assert.ok(kernels.length >= 3, `${cfg.kind}: ${kernels.length} kernels`);
    a.after.forEach((w, i) => {
      assert.deepEqual(Array.from(w), Array.from(b.after[i]), `${cfg.kind} ${a.names[i]}: same seed, same values`);
      if (kernels.includes(i)) {
        assert.notDeepEqual(Array.from(w), Array.from(c.after[i]), `${cfg.kind} ${a.names[i]}: another seed, other values`);
        // The same distribution as the unseeded draw: the same RMS but for sampling (with ≥ 64 values a factor 2 is
        // more than 4 standard deviations of the ratio away).
        const ratio = rms(w) / rms(a.built[i]);
        if (w.length >= 64) assert.ok(ratio > 0.5 && ratio < 2, `${cfg.kind} ${a.names[i]}: RMS ${rms(w)} against ${rms(a.built[i])} unseeded`);
      } else {
        assert.deepEqual(Array.from(w), Array.from(a.built[i]), `${cfg.kind} ${a.names[i]}: a constant stays as built`);
      }
    });
  }
});
