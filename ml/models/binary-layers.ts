// The two layers of the binarized U-Net (X. Wu et al. 2016, arXiv:1604.03058, after Courbariaux/Hubara):
//   - BinarySign: the activation, sign(x) with sign(0) = +1, straight-through gradient where |x| ≤ 1;
//   - BinaryConv2D: a 3×3 "same" convolution of sign(input) with sign(kernel), no bias (batch norm follows). The layer
//     keeps real-valued kernel weights (what the optimizer updates and what ensemble members are sampled from,
//     P(+1) = clip((w + 1) / 2, 0, 1)); training may binarize them stochastically (`stochastic`: sign(w − r),
//     r ~ U(−1, 1), which is +1 with exactly that probability) so the network learns to work under the sampling
//     that ensemble inference uses. Inference in tfjs is always deterministic: sign(w).
// Zero padding is applied after the sign, as the bitwise kernel (ml/compress/binary.ts) and the ONNX export do.
import * as tf from '@tensorflow/tfjs';
import { signSte } from '../compress/binary';

export class BinarySign extends tf.layers.Layer {
  static className = 'BinarySign';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return signSte(Array.isArray(inputs) ? inputs[0] : inputs);
  }
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }
}
tf.serialization.registerClass(BinarySign);

export interface BinaryConv2DArgs {
  filters: number;
  kernelSize: number;
  stochastic?: boolean;
  name?: string;
}

export class BinaryConv2D extends tf.layers.Layer {
  static className = 'BinaryConv2D';
  readonly filters: number;
  readonly kernelSize: number;
  readonly stochastic: boolean;
  private kernel: tf.LayerVariable | null = null;
  /** Uniform in [−1, 1]: the weights' clipping range (models trained from a float U-Net get its weights instead). */
  readonly kernelInitializer = tf.initializers.randomUniform({ minval: -1, maxval: 1 });

  constructor(args: BinaryConv2DArgs) {
    super({ name: args.name });
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.stochastic = args.stochastic ?? false;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const ci = s[s.length - 1] as number;
    this.kernel = this.addWeight('kernel', [this.kernelSize, this.kernelSize, ci, this.filters], 'float32', this.kernelInitializer);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const w = this.kernel!.read();
    const training = kwargs.training === true;
    const wb = training && this.stochastic ? signSte(tf.sub(w, tf.randomUniform(w.shape, -1, 1))) : signSte(w);
    return tf.conv2d(signSte(x) as tf.Tensor4D, wb as tf.Tensor4D, 1, 'same');
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0], s[1], s[2], this.filters];
  }

  override getConfig(): tf.serialization.ConfigDict {
    // padding/strides/activation in the Conv2D vocabulary, which the ONNX exporter reads.
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, stochastic: this.stochastic, padding: 'same', strides: [1, 1], activation: 'linear' };
  }
}
tf.serialization.registerClass(BinaryConv2D);
