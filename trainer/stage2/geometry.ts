/**
 * Decoded-geometry losses on coord-token distributions: expectation decode of
 * a bin, then L1 and generalized IoU in normalized [0, 1] space. No detection
 * head; gradients reach the LM head through the softmax.
 */
import { tf } from "../runtime.ts";
import { MAX_BIN, NUM_BINS } from "../coord/codec.ts";

/** Epsilon in the union and enclosing areas of GIoU. */
export const GIOU_EPS = 1e-7;

/**
 * Expectation decode: `c_hat = sum_k softmax(z / T)_k * k / 999` over the
 * last axis (the 1000 coord bins, in bin order). Never argmax, so it is
 * differentiable and always inside [0, 1].
 *
 * @param coordLogits `[..., 1000]` logits restricted to the coord tokens.
 * @returns `[...]` normalized coordinates.
 * @example
 * const c = expectationDecode(tf.tensor2d([[...logits1000]])); // shape [1]
 */
export function expectationDecode(
  coordLogits: tf.Tensor,
  temperature = 1,
): tf.Tensor {
  const last = coordLogits.shape[coordLogits.rank - 1];
  if (coordLogits.rank < 1 || last !== NUM_BINS) {
    throw new Error(
      `expectationDecode needs coord logits [..., ${NUM_BINS}], got [${coordLogits.shape}]`,
    );
  }
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new RangeError(
      `coord decode temperature must be > 0, got ${temperature}`,
    );
  }
  return tf.tidy(() => {
    // Shifting by the max before dividing by T keeps z / T finite for huge
    // logits and small temperatures (softmax is shift-invariant).
    const z = coordLogits.toFloat();
    const shifted = tf.sub(z, tf.max(z, -1, true));
    const probs = tf.softmax(
      temperature === 1 ? shifted : tf.div(shifted, temperature),
    );
    const bins = tf.div(tf.range(0, NUM_BINS, 1, "float32"), MAX_BIN);
    return tf.sum(tf.mul(probs, bins), -1);
  });
}

export interface BboxLosses {
  /** Mean |pred - gt| over all 4N normalized coordinates. */
  l1: tf.Scalar;
  /** Mean over the N boxes of `1 - GIoU`. */
  giou: tf.Scalar;
}

function canonical(box: tf.Tensor2D): tf.Tensor[] {
  const [a, b, c, d] = tf.unstack(box, 1);
  const clip = (t: tf.Tensor) => tf.clipByValue(t, 0, 1);
  return [
    clip(tf.minimum(a, c)),
    clip(tf.minimum(b, d)),
    clip(tf.maximum(a, c)),
    clip(tf.maximum(b, d)),
  ];
}

/**
 * L1 and GIoU losses between predicted and ground-truth boxes, both
 * `[N, 4]` xyxy in normalized [0, 1] coordinates. GIoU canonicalizes each
 * box (min/max per axis) and clips it to [0, 1]; the L1 term sees the values
 * clipped to [0, 1] (a no-op for expectation-decoded predictions) so that no
 * input, degenerate or out of range, yields NaN/Inf. With N = 0 both losses
 * are 0.
 *
 * @example
 * const { l1, giou } = bboxL1GiouLoss(
 *   tf.tensor2d([[0.1, 0.1, 0.5, 0.5]]), tf.tensor2d([[0.1, 0.1, 0.5, 0.6]]));
 * // l1 = 0.025, giou = 1 - 0.8
 */
export function bboxL1GiouLoss(
  predXyxy: tf.Tensor2D,
  gtXyxy: tf.Tensor2D,
): BboxLosses {
  if (
    predXyxy.rank !== 2 || predXyxy.shape[1] !== 4 ||
    gtXyxy.rank !== 2 || gtXyxy.shape[1] !== 4 ||
    predXyxy.shape[0] !== gtXyxy.shape[0]
  ) {
    throw new Error(
      `bboxL1GiouLoss needs pred and gt of shape [N, 4], got [${predXyxy.shape}] and [${gtXyxy.shape}]`,
    );
  }
  const n = predXyxy.shape[0];
  if (n === 0) return { l1: tf.scalar(0), giou: tf.scalar(0) };
  return tf.tidy(() => {
    const pred = predXyxy.toFloat();
    const gt = gtXyxy.toFloat();
    const l1 = tf.mean(
      tf.abs(tf.sub(tf.clipByValue(pred, 0, 1), tf.clipByValue(gt, 0, 1))),
    ) as tf.Scalar;
    const [px1, py1, px2, py2] = canonical(pred);
    const [gx1, gy1, gx2, gy2] = canonical(gt);
    const areaP = tf.mul(tf.sub(px2, px1), tf.sub(py2, py1));
    const areaG = tf.mul(tf.sub(gx2, gx1), tf.sub(gy2, gy1));
    const iw = tf.relu(tf.sub(tf.minimum(px2, gx2), tf.maximum(px1, gx1)));
    const ih = tf.relu(tf.sub(tf.minimum(py2, gy2), tf.maximum(py1, gy1)));
    const inter = tf.mul(iw, ih);
    const union = tf.add(tf.sub(tf.add(areaP, areaG), inter), GIOU_EPS);
    const iou = tf.div(inter, union);
    const cw = tf.sub(tf.maximum(px2, gx2), tf.minimum(px1, gx1));
    const ch = tf.sub(tf.maximum(py2, gy2), tf.minimum(py1, gy1));
    const enclose = tf.add(tf.mul(cw, ch), GIOU_EPS);
    const giou = tf.sub(iou, tf.div(tf.sub(enclose, union), enclose));
    const loss = tf.mean(tf.sub(1, giou)) as tf.Scalar;
    return { l1, giou: loss };
  });
}
