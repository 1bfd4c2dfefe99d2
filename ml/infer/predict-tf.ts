// Whole-slice prediction with a tfjs model: used for validation during training and as the reference the ONNX path
// is checked against. Pads by reflection to the model's size multiple, predicts, crops, applies the sigmoid.
import * as tf from '@tensorflow/tfjs';

/** Input is HWC (channels interleaved); returns P(membrane) per pixel. */
export function predictTf(model: tf.LayersModel, input: Float32Array, width: number, height: number, channels: number, multiple: number): Float32Array {
  const ph = Math.ceil(height / multiple) * multiple;
  const pw = Math.ceil(width / multiple) * multiple;
  const out = tf.tidy(() => {
    let x = tf.tensor4d(input, [1, height, width, channels]);
    if (ph !== height || pw !== width) x = tf.mirrorPad(x, [[0, 0], [0, ph - height], [0, pw - width], [0, 0]], 'reflect');
    let y = model.predict(x) as tf.Tensor4D;
    if (ph !== height || pw !== width) y = y.slice([0, 0, 0, 0], [1, height, width, 1]);
    return tf.sigmoid(y);
  });
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return new Float32Array(data);
}
