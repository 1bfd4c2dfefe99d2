// `emseg bench` (npm run bench): every speed and memory figure, as one JSON object on stdout. Targets live here,
// never in timed tests.
import os from 'node:os';
import { UsageError, type Command } from '../command';
import { str } from '../options';

type Bench = () => Promise<Record<string, number | string>>;

const suites: Record<string, () => Promise<Bench>> = {
  io: async () => (await import('../../bench/io')).benchIo,
  segmentation: async () => (await import('../../bench/segmentation')).benchSegmentation,
  models: async () => (await import('../../bench/models')).benchModels,
  batch: async () => (await import('../../bench/batch')).benchBatch,
  compress: async () => (await import('../../bench/compress')).benchCompress,
  cci: async () => (await import('../../bench/cci')).benchCci,
  ui: async () => (await import('../../bench/ui')).benchUi,
  proofread: async () => (await import('../../bench/proofread')).benchProofread,
};

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Run the benchmarks and print JSON',
  usage: `emseg bench [--only ${Object.keys(suites).join(',')}]`,
  help: `
Measures stack read speed, segmentation and metric speed, model inference (ONNX Runtime and tfjs-wasm, FLOPs per
pixel, achieved GFLOP/s against the machine's matrix-multiply peak), training throughput, and the other suites
registered here. Prints one JSON object: { machine, <suite>: {...} }. Progress goes to stderr.

Options:
  --only <list>   comma-separated suites to run (default: all)
`,
  options: { only: { type: 'string' } },
  async run(ctx) {
    const only = str(ctx, 'only')?.split(',').map((s) => s.trim()).filter(Boolean) ?? Object.keys(suites);
    for (const name of only) if (!suites[name]) throw new UsageError(`unknown suite '${name}' (have: ${Object.keys(suites).join(', ')})`);
    const result: Record<string, unknown> = {
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    };
    for (const name of only) {
      if (!ctx.quiet) ctx.err(`bench: ${name}…`);
      const t = performance.now();
      try {
        result[name] = await (await suites[name]())();
      } catch (e) {
        result[name] = { error: (e as Error).message.split('\n')[0] };
      }
      if (!ctx.quiet) ctx.err(`bench: ${name} done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    ctx.out(JSON.stringify(result, null, 2));
    return 0;
  },
};
