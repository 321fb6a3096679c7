/**
 * The Stage-2 loss on the final pass's logits:
 * `CE + bbox_l1_weight * L1 + bbox_giou_weight * mean(1 - GIoU)`.
 *
 * CE is `sum(w * nll) / max(sum(w), 1)` over the next-token predictions of
 * the micro-batch with per-label weights from the batch (coord tokens always
 * 0). Geometry decodes each supervised coord slot p from the logits at p - 1
 * by expectation and compares boxes in normalized [0, 1] space.
 *
 * Target selection uses dense one-hot matrices rather than `gather`: the
 * wasm backend has no gradient kernel for gather (`UnsortedSegmentSum`).
 */
import { tf } from "../runtime.ts";
import { MAX_BIN, NUM_BINS } from "../coord/codec.ts";
import type { Stage2Batch } from "./batch.ts";
import { bboxL1GiouLoss, expectationDecode } from "./geometry.ts";
import { contiguousStart } from "./softctx.ts";
import { weightedNll } from "../model/ops.ts";

export interface Stage2LossOptions {
  /** The 1000 coord token ids in bin order. */
  coordTokenIds: ArrayLike<number>;
  /** `coord_decode_temperature` (default 1). */
  coordDecodeTemperature?: number;
  bboxL1Weight: number;
  bboxGiouWeight: number;
}

export interface Stage2LossTerms {
  total: tf.Scalar;
  ce: tf.Scalar;
  /** Mean |c_hat - c_gt| over all supervised coordinates. */
  l1: tf.Scalar;
  /** Mean of `1 - GIoU` over the supervised boxes. */
  giou: tf.Scalar;
  /** `sum(w)` of the CE (its denominator before the max with 1). */
  ceWeightSum: number;
  nBoxes: number;
}

/**
 * Fails unless `logits` covers every input position: training needs
 * full-sequence logits for CE and coord decoding.
 */
export function assertFullLogits(
  logits: tf.Tensor,
  batch: number,
  length: number,
): void {
  if (
    logits.rank !== 3 || logits.shape[0] !== batch || logits.shape[1] !== length
  ) {
    throw new Error(
      `sliced logits: the training forward returned logits [${logits.shape}] for an input of [${batch}, ${length}]; training needs logits for every position (never pass logitsToKeep to a training forward)`,
    );
  }
}

/**
 * Computes the Stage-2 loss terms (call inside the gradient tape).
 *
 * @param logits [B, L, V] of the final pass over `batch`.
 * @example
 * const { total } = stage2Loss(out.logits, batch,
 *   { coordTokenIds: tok.coordIds, bboxL1Weight: 1, bboxGiouWeight: 1 });
 */
export function stage2Loss(
  logits: tf.Tensor3D,
  batch: Stage2Batch,
  opts: Stage2LossOptions,
): Stage2LossTerms {
  const { batch: B, length: L } = batch;
  assertFullLogits(logits, B, L);
  const V = logits.shape[2];
  const coordIds = Int32Array.from(opts.coordTokenIds);
  if (coordIds.length !== NUM_BINS) {
    throw new Error(`stage2Loss needs ${NUM_BINS} coord token ids`);
  }
  const coordSet = new Set(coordIds);
  const N = B * L;

  // CE targets [N, V]: row f-1 holds w[f] at id[f] (same row, t >= 1).
  const w = new Float32Array(N * V);
  let wSum = 0;
  for (let f = 0; f < N; f++) {
    const weight = batch.ceWeights[f];
    if (weight === 0) continue;
    const id = batch.inputIds[f];
    if (f % L === 0) {
      throw new Error(
        `CE weight on the first position of row ${f / L}: nothing predicts it`,
      );
    }
    if (coordSet.has(id)) {
      throw new Error(
        `CE weight ${weight} on coord token id ${id} at row ${
          Math.floor(f / L)
        }, position ${f % L}; coord tokens never get CE`,
      );
    }
    if (id < 0 || id >= V) {
      throw new Error(
        `token id ${id} is outside the model vocabulary (${V}); the tokenizer does not belong to this model`,
      );
    }
    w[(f - 1) * V + id] = weight;
    wSum += weight;
  }

  // Geometry: one-hot rows selecting logits at p - 1 for every box slot.
  const nBoxes = batch.boxes.length;
  const sel = new Float32Array(4 * nBoxes * N);
  const targets = new Float32Array(4 * nBoxes);
  batch.boxes.forEach((box, i) => {
    box.positions.forEach((p, s) => {
      if (p % L === 0 || p < 0 || p >= N) {
        throw new Error(`coord slot ${p} has no previous position in its row`);
      }
      if (!coordSet.has(batch.inputIds[p])) {
        throw new Error(
          `supervised coord slot at row ${Math.floor(p / L)}, position ${
            p % L
          } holds token id ${batch.inputIds[p]}, not a coord token`,
        );
      }
      sel[(4 * i + s) * N + (p - 1)] = 1;
      targets[4 * i + s] = box.target[s] / MAX_BIN;
    });
  });

  return tf.tidy(() => {
    const flat = tf.reshape(logits, [N, V]) as tf.Tensor2D;
    const ce = tf.div(
      weightedNll(flat, tf.tensor2d(w, [N, V])),
      Math.max(wSum, 1),
    ) as tf.Scalar;
    let l1: tf.Scalar = tf.scalar(0);
    let giou: tf.Scalar = tf.scalar(0);
    if (nBoxes > 0) {
      const start = contiguousStart(coordIds);
      let coordLogits: tf.Tensor2D; // [N, 1000]
      if (start >= 0) {
        coordLogits = tf.slice(flat, [0, start], [N, NUM_BINS]);
      } else {
        const pick = new Float32Array(V * NUM_BINS);
        coordIds.forEach((id, k) => (pick[id * NUM_BINS + k] = 1));
        coordLogits = tf.matMul(flat, tf.tensor2d(pick, [V, NUM_BINS]));
      }
      const atSlots = tf.matMul(
        tf.tensor2d(sel, [4 * nBoxes, N]),
        coordLogits,
      ); // [4n, 1000]
      const decoded = expectationDecode(
        atSlots,
        opts.coordDecodeTemperature ?? 1,
      );
      const r = bboxL1GiouLoss(
        tf.reshape(decoded, [nBoxes, 4]) as tf.Tensor2D,
        tf.tensor2d(targets, [nBoxes, 4]),
      );
      l1 = r.l1;
      giou = r.giou;
    }
    const total = tf.addN([
      ce,
      tf.mul(l1, opts.bboxL1Weight),
      tf.mul(giou, opts.bboxGiouWeight),
    ]) as tf.Scalar;
    return { total, ce, l1, giou, ceWeightSum: wSum, nBoxes };
  });
}
