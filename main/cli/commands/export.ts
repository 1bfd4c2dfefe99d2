// `emseg export <model dir>`: (re)writes model.onnx from the folder's tfjs weights, for ONNX Runtime or other tools.
import { UsageError, type Command } from '../command';
import { exportModelFolder } from '../../engine/export';

export const exportCommand: Command = {
  name: 'export',
  summary: 'Export a model folder to ONNX (model.onnx)',
  usage: 'emseg export <model dir> [--half]',
  help: `
Writes <model dir>/model.onnx (opset 13, NCHW, batch norm folded into the convolutions, sigmoid output = P(membrane))
from the folder's tfjs weights, records it in model.json, and writes the model card README.md from model.json.
'emseg train', 'emseg train-refiner' and 'emseg compress' do this themselves; use it after copying weights by hand or
to refresh an older folder.

Options:
  --half   store the weights (weights.bin and the ONNX initializers) as float16: half the size, float32 compute
`,
  options: { half: { type: 'boolean' } },
  async run(ctx) {
    if (ctx.positionals.length !== 1) throw new UsageError(`expected one model folder, got ${ctx.positionals.length}`);
    const { bytes } = await exportModelFolder(ctx.positionals[0], {}, { half: ctx.values.half === true ? true : undefined });
    ctx.out(`wrote ${ctx.positionals[0]}/model.onnx (${(bytes / 1e6).toFixed(2)} MB) and its model card README.md`);
    return 0;
  },
};
