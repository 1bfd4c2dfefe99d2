// A training replica in a worker thread: one core's share of every batch. Replicas exchange gradients through shared
// memory (ml/train/gradient-exchange.ts): each writes its own and sums everyone's, weighted by batch share, itself. The coordinator
// (train.ts) only says which step's gradients to apply, together with the request for the next step, so a step costs
// one round trip of small messages.
import { parentPort } from 'node:worker_threads';
import { initTf } from '../../ml/tfjs/backend';
import { buildModel, type ModelConfig } from '../../ml/models';
import { Replica, WeightAverage, getOptimizerState, getWeights, makeBatch, setOptimizerState, setWeights, type AverageState, type BatchSpec, type NamedArray } from '../../ml/train/trainer';
import type { TrainingSlice } from '../../ml/train/augment';
import { mixSeed } from '../../ml/train/rng';
import { GradientExchange, type ExchangeLayout } from '../../ml/train/gradient-exchange';
import * as tf from '@tensorflow/tfjs';

export type WorkerRequest =
  | { type: 'init'; config: ModelConfig; weights: Float32Array[]; optimizer: NamedArray[]; slices: TrainingSlice[]; spec: BatchSpec; seed: number; index: number; lr: number;
      /** Keep a moving average of the weights: its decay, and the average to continue (null: start from the weights). */
      average?: { decay: number; values: Float32Array[] | null; updates: number };
      /** The shared gradient slots (exchangeBytes(layout) bytes) and each replica's share of the batch. */
      exchange: { buffer: SharedArrayBuffer; layout: ExchangeLayout; shares: number[] } }
  /** Apply the averaged gradients of step `apply` (when given), then compute this replica's gradients of `step`. */
  | { type: 'step'; step: number; lr: number; apply?: number }
  | { type: 'apply'; step: number }
  | { type: 'state' };

export type WorkerReply =
  | { type: 'ready'; backend: string }
  /** The gradients are in this replica's slot of the step. */
  | { type: 'grads'; loss: number }
  | { type: 'applied' }
  | { type: 'state'; weights: Float32Array[]; optimizer: NamedArray[]; average?: AverageState };

let replica: Replica | undefined;
let slices: TrainingSlice[] = [];
let spec: BatchSpec;
let seed = 0;
let index = 0;
let exchange: GradientExchange | undefined;
let shares: number[] = [];

const port = parentPort;
if (!port) throw new Error('train-worker must run in a worker thread');

port.on('message', (msg: WorkerRequest) => {
  void handle(msg).catch((e: unknown) => {
    // Surface the error to the coordinator through the 'error' event.
    setImmediate(() => {
      throw e;
    });
  });
});

function applyAveraged(step: number): void {
  replica!.applyWeightedSum(exchange!.read(step), shares);
}

async function handle(msg: WorkerRequest): Promise<void> {
  switch (msg.type) {
    case 'init': {
      const info = await initTf();
      const model = buildModel(msg.config);
      setWeights(model, msg.weights);
      replica = new Replica(model, msg.lr);
      await setOptimizerState(replica.optimizer, msg.optimizer);
      if (msg.average) {
        const a = msg.average;
        replica.average = new WeightAverage(a.decay, a.values ?? getWeights(model).map((w) => new Float32Array(w)), a.updates);
      }
      slices = msg.slices;
      spec = msg.spec;
      seed = msg.seed;
      index = msg.index;
      exchange = new GradientExchange(msg.exchange.buffer, msg.exchange.layout);
      shares = msg.exchange.shares;
      port!.postMessage({ type: 'ready', backend: info.name } satisfies WorkerReply);
      return;
    }
    case 'step': {
      const r = replica!;
      if (msg.apply !== undefined) applyAveraged(msg.apply);
      r.setLearningRate(msg.lr);
      const batch = makeBatch(slices, spec, mixSeed(seed, msg.step, index));
      const { loss, grads } = r.gradients(batch);
      tf.dispose([batch.x, batch.y, batch.w]);
      exchange!.write(msg.step, index, grads);
      port!.postMessage({ type: 'grads', loss } satisfies WorkerReply);
      return;
    }
    case 'apply':
      applyAveraged(msg.step);
      port!.postMessage({ type: 'applied' } satisfies WorkerReply);
      return;
    case 'state': {
      const r = replica!;
      const weights = getWeights(r.model).map((w) => new Float32Array(w));
      const optimizer = await getOptimizerState(r.optimizer);
      const average = r.average ? { values: r.average.values.map((v) => new Float32Array(v)), updates: r.average.updates } : undefined;
      port!.postMessage({ type: 'state', weights, optimizer, average } satisfies WorkerReply);
      return;
    }
  }
}
