// Every `emseg` subcommand, in the order `emseg --help` lists them.
import type { Command } from '../command';
import { infoCommand } from './info';
import { evalCommand } from './eval';
import { segmentCommand } from './segment';
import { trainCommand } from './train';
import { trainRefinerCommand } from './train-refiner';
import { benchCommand } from './bench';
import { exportCommand } from './export';
import { serveCommand } from './serve';
import { appCommand } from './app';
import { batchCommand } from './batch';
import { compressCommand } from './compress';
import { slurmCommand } from './slurm';
import { tuneSegmentationCommand } from './tune-segmentation';

export const commands: Command[] = [infoCommand, trainCommand, trainRefinerCommand, tuneSegmentationCommand, exportCommand, compressCommand, segmentCommand, batchCommand, slurmCommand, evalCommand, serveCommand, appCommand, benchCommand];
