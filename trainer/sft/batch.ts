/**
 * Stage-1 micro-batches and their loss: plain teacher forcing with CE on
 * every assistant-answer token (JSON structure, desc text, coord tokens and
 * the closing `<|im_end|>`); prompt tokens get no loss.
 *
 * Reduction: the micro-batch loss is `sum(nll) / n_supervised` over the
 * supervised next-token predictions of the micro-batch (per-token mean
 * within a micro-batch; the loop then averages micro-batches equally).
 *
 * Rows: with `training.packing.enabled` the samples of a micro-batch are
 * packed into one padding-free row with 4-row position ids; otherwise one
 * sample per row, right-padded.
 */
import { tf } from "../runtime.ts";
import { weightedNll } from "../model/ops.ts";
import type { Qwen3VLConfig } from "../model/config.ts";
import { TokenRole } from "../tokenizer/answer.ts";
import {
  type CollatedBatch,
  packRow,
  padRows,
  ropeFnFor,
} from "../variant/packing.ts";
import type { RawSample } from "../variant/contract.ts";

/** The part of the model's forward contract the SFT loss uses. */
export interface ForwardModel {
  readonly config: Qwen3VLConfig;
  trainableVariables(): tf.Variable[];
  forward(args: {
    inputIds?: tf.Tensor2D;
    pixelValues?: tf.Tensor2D;
    imageGridThw?: number[][];
    positionIds?: tf.Tensor3D;
  }): { logits: tf.Tensor3D };
}

/** A collated micro-batch as tensors, ready for a forward + CE. */
export interface SftBatch {
  collated: CollatedBatch;
  /** input_ids [B, L] int32. */
  inputIds: tf.Tensor2D;
  /** position_ids [4, B, L] int32 when packed, else [3, B, L]. */
  positionIds: tf.Tensor3D;
  /** pixel_values [Npatch, D], or null for text-only rows. */
  pixelValues: tf.Tensor2D | null;
  /** Next-token target weights [B*L, V]: row (b, p-1) has 1 at id[p] for supervised p. */
  targets: tf.Tensor2D;
  /** Number of supervised predictions (the CE denominator). */
  supervised: number;
  /** Real (non-pad) tokens in the batch. */
  tokens: number;
}

/** Collates samples and builds the CE targets (outside any gradient tape). */
export function buildSftBatch(
  samples: RawSample[],
  opts: {
    modelConfig: Qwen3VLConfig;
    packing: { enabled: boolean; max_length: number };
    padId: number;
  },
): SftBatch {
  const rope = ropeFnFor(opts.modelConfig);
  const c = opts.packing.enabled
    ? packRow(samples, rope, opts.packing.max_length)
    : padRows(samples, rope, opts.padId);
  const V = opts.modelConfig.text_config.vocab_size;
  const B = c.batch, L = c.length;
  const w = new Float32Array(B * L * V);
  let supervised = 0;
  let tokens = 0;
  for (let b = 0; b < B; b++) {
    c.samples[b].forEach((s, k) => {
      const start = c.segmentStarts[b][k];
      tokens += s.inputIds.length;
      for (let p = 1; p < s.inputIds.length; p++) {
        if (s.roles[p] === TokenRole.prompt) continue;
        const id = s.inputIds[p];
        if (id < 0 || id >= V) {
          throw new Error(
            `token id ${id} in ${s.record.source} is outside the model vocabulary (${V}); the tokenizer does not belong to this model`,
          );
        }
        w[(b * L + start + p - 1) * V + id] = 1;
        supervised++;
      }
    });
  }
  return {
    collated: c,
    inputIds: tf.tensor2d(c.inputIds, [B, L], "int32"),
    // Packed rows need row 0 (segment boundaries); padded rows are one
    // sequence each, so they get the plain 3-row mRoPE ids.
    positionIds: c.packed
      ? tf.tensor3d(c.positionIds, [4, B, L], "int32")
      : tf.tensor3d(c.positionIds.subarray(B * L), [3, B, L], "int32"),
    pixelValues: c.pixelShape[0] > 0
      ? tf.tensor2d(c.pixelValues, c.pixelShape, "float32")
      : null,
    targets: tf.tensor2d(w, [B * L, V], "float32"),
    supervised,
    tokens,
  };
}

export function disposeSftBatch(b: SftBatch): void {
  for (const t of [b.inputIds, b.positionIds, b.pixelValues, b.targets]) {
    t?.dispose();
  }
}

/** One teacher-forced forward of a batch: logits [B, L, V]. */
function forwardBatch(model: ForwardModel, b: SftBatch): tf.Tensor3D {
  return model.forward({
    inputIds: b.inputIds,
    positionIds: b.positionIds,
    ...(b.pixelValues
      ? { pixelValues: b.pixelValues, imageGridThw: b.collated.imageGridThw }
      : {}),
  }).logits;
}

/**
 * Teacher-forced NLL per position [B*L] (no gradient use): row (b, p-1)
 * holds -log p(token p) for supervised p, 0 elsewhere. Call inside a tidy.
 */
export function positionNll(model: ForwardModel, b: SftBatch): tf.Tensor1D {
  const logits = forwardBatch(model, b);
  const [B, L, V] = logits.shape;
  const logp = tf.logSoftmax(logits.reshape([B * L, V]));
  return tf.neg(tf.sum(tf.mul(logp, b.targets), 1)) as tf.Tensor1D;
}

/** One teacher-forced forward and the CE over the supervised predictions. */
export function sftForwardLoss(model: ForwardModel, b: SftBatch): tf.Scalar {
  const logits = forwardBatch(model, b);
  const [B, L, V] = logits.shape;
  // logits [B, L, V] -> [B*L, V]; targets select the next token.
  const nll = weightedNll(logits.reshape([B * L, V]), b.targets);
  return tf.div(nll, Math.max(b.supervised, 1)) as tf.Scalar;
}

/** Trace context of a collated batch. */
export function packingTrace(
  c: CollatedBatch,
): { packed: boolean; segmentLengths: number[][] } {
  return { packed: c.packed, segmentLengths: c.segmentLengths };
}
