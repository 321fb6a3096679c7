/**
 * Stage-2 training sequences and their collation.
 *
 * Channel A trains on the rendered GT answer. Channel B trains on
 * `prompt + rollout prefix (generated ids, unchanged) + FN-append tail +
 * <|im_end|>`. Both end up as `Stage2Batch`: rows with 4-row position ids,
 * per-token CE weights and the boxes that receive geometry losses.
 */
import type { Xyxy } from "../coord/pixels.ts";
import { faultActive } from "../common/faults.ts";
import type { GtObject } from "../data/types.ts";
import {
  type CollatedBatch,
  fillCount,
  packRow,
  padRows,
  type RopeFn,
} from "../variant/packing.ts";
import type { RawSample } from "../variant/contract.ts";
import { InputError } from "../errors.ts";
import { classifyAnswerTokens, TokenRole } from "../tokenizer/answer.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { serializeAppendFragment } from "../rollout/fn_append.ts";
import type { MatchResult } from "../rollout/match.ts";
import type { ParsedRollout } from "../rollout/parse.ts";

export type BoxKind = "gt" | "matched" | "fn";

/** One box that receives L1/GIoU: its 4 coord-token positions and target. */
export interface SupervisedBox {
  /** Positions of the x1, y1, x2, y2 coord tokens (in the sequence / row). */
  positions: [number, number, number, number];
  /** Target box in coord bins. */
  target: Xyxy;
  /** GT answer (A), matched rollout prediction (B) or appended FN (B). */
  kind: BoxKind;
}

/** One training sequence before collation. */
export interface Stage2Sequence {
  sample: RawSample;
  /** Token ids [T]. */
  inputIds: Int32Array;
  /** `TokenRole` per token [T]; B's rollout prefix is `prompt` (no CE). */
  roles: Uint8Array;
  promptLength: number;
  boxes: SupervisedBox[];
  /** Positions of every answer coord token (soft-context slots). */
  coordSlots: number[];
}

/**
 * A collated micro-batch ready for the forward and the loss: the loop's
 * collation (ids, 4-row position ids, pixels, segments) plus the Stage-2
 * supervision mapped to flat row positions.
 */
export interface Stage2Batch extends Omit<CollatedBatch, "samples"> {
  /** CE weight of the label at each position [B, L] (label t is predicted from t-1). */
  ceWeights: Float32Array;
  /** Boxes with `positions` as flat indices `row * L + t`. */
  boxes: SupervisedBox[];
  /** Answer coord-token positions as flat indices `row * L + t`. */
  coordSlots: number[];
}

/** CE weight of a token role: structure/eot 1, desc `descCeWeight`, else 0. */
export function roleWeight(role: number, descCeWeight: number): number {
  switch (role) {
    case TokenRole.structure:
    case TokenRole.eot:
      return 1;
    case TokenRole.desc:
      return descCeWeight;
    default:
      return 0;
  }
}

/** Channel A: the rendered GT answer, every GT box supervised. */
export function buildChannelASequence(sample: RawSample): Stage2Sequence {
  const boxes: SupervisedBox[] = sample.objects.map((o, i) => {
    const slots = sample.coordSlots.filter((s) => s.object === i);
    if (slots.length !== 4) {
      throw new Error(
        `${sample.record.source}: object ${i} has ${slots.length} coord slots in the rendered answer, expected 4`,
      );
    }
    return {
      positions: slots.map((s) => s.pos) as SupervisedBox["positions"],
      target: o.bbox_2d,
      kind: "gt" as const,
    };
  });
  return {
    sample,
    inputIds: sample.inputIds,
    roles: sample.roles,
    promptLength: sample.promptLength,
    boxes,
    coordSlots: sample.coordSlots
      .filter((s) => !(faultActive("softctx-drop-object") && s.object === 0))
      .map((s) => s.pos),
  };
}

/**
 * Channel B: Y_train = prompt + rollout prefix ids + tokenized FN-append
 * fragment + `<|im_end|>`. The prefix gets no CE; the tail gets CE by role.
 * Matched predictions are supervised at their prefix coord positions with
 * the matched GT box; FN objects at their tail coord positions. `gts` must
 * be the list the rollout was matched against (its order is the GT order).
 */
export function buildChannelBSequence(
  tokenizer: Tokenizer,
  sample: RawSample,
  rollout: ParsedRollout,
  match: MatchResult,
  gts: readonly GtObject[] = sample.objects,
): Stage2Sequence {
  const fnObjects = match.unmatchedGts.map((j) => gts[j]);
  const fragment = serializeAppendFragment(
    fnObjects,
    rollout.maxObjectIndex + 1,
    rollout.prefixText,
  );
  const tail = tokenizer.encode(fragment);
  tail.push(tokenizer.specialIds.imEnd);
  const P = sample.promptLength;
  const prefixStart = P;
  const tailStart = P + rollout.prefixIds.length;
  const inputIds = new Int32Array(tailStart + tail.length);
  inputIds.set(sample.inputIds.subarray(0, P), 0);
  inputIds.set(rollout.prefixIds, prefixStart);
  inputIds.set(tail, tailStart);
  const roles = new Uint8Array(inputIds.length); // prompt + prefix: no CE
  roles.set(classifyAnswerTokens(tokenizer, tail), tailStart);

  const boxes: SupervisedBox[] = [];
  for (const pair of match.pairs) {
    const pred = rollout.predictions[pair.pred];
    boxes.push({
      positions: pred.coordPositions.map((p) =>
        prefixStart + p
      ) as SupervisedBox["positions"],
      target: gts[pair.gt].bbox_2d,
      kind: "matched",
    });
  }
  const tailCoords: number[] = [];
  tail.forEach((id, i) => {
    if (tokenizer.coordBinOfId(id) !== undefined) {
      tailCoords.push(tailStart + i);
    }
  });
  if (tailCoords.length !== 4 * fnObjects.length) {
    throw new InputError(
      `FN-append tail for ${sample.record.source} tokenized to ${tailCoords.length} coord tokens, expected ${
        4 * fnObjects.length
      }; the tokenizer does not keep coord tokens intact`,
    );
  }
  fnObjects.forEach((o, i) => {
    const positions = tailCoords.slice(4 * i, 4 * i + 4);
    positions.forEach((p, s) => {
      if (tokenizer.coordBinOfId(inputIds[p]) !== o.bbox_2d[s]) {
        throw new Error(
          `FN-append tail for ${sample.record.source}: coord slot ${s} of appended object ${i} is not the GT bin ${
            o.bbox_2d[s]
          }`,
        );
      }
    });
    boxes.push({
      positions: positions as SupervisedBox["positions"],
      target: o.bbox_2d,
      kind: "fn",
    });
  });
  const coordSlots: number[] = [];
  for (let t = P; t < inputIds.length; t++) {
    if (tokenizer.coordBinOfId(inputIds[t]) !== undefined) coordSlots.push(t);
  }
  return { sample, inputIds, roles, promptLength: P, boxes, coordSlots };
}

export interface CollateOptions {
  /** mRoPE positions of one sequence (the model's `getRopeIndex`). */
  rope: RopeFn;
  /** Pack sequences into padding-free rows of at most `maxLength` tokens. */
  packing: { enabled: boolean; maxLength: number };
  padId: number;
  descCeWeight: number;
}

/** Stacks single-row collations into [B, L], right-padding rows with `padId`. */
function stackRows(rows: CollatedBatch[], padId: number): CollatedBatch {
  if (rows.length === 1) return rows[0];
  const B = rows.length;
  const L = Math.max(...rows.map((r) => r.length));
  const inputIds = new Int32Array(B * L).fill(padId);
  const positionIds = new Int32Array(4 * B * L);
  rows.forEach((r, b) => {
    inputIds.set(r.inputIds, b * L);
    for (let k = 0; k < 4; k++) {
      const src = r.positionIds.subarray(k * r.length, (k + 1) * r.length);
      const base = k * B * L + b * L;
      positionIds.set(src, base);
      // Pads continue the last segment's positions; causal attention keeps
      // real tokens from seeing them and they carry no loss.
      let last = src[r.length - 1];
      for (let i = r.length; i < L; i++) positionIds[base + i] = ++last;
    }
  });
  const pixelRows = rows.reduce((n, r) => n + r.pixelShape[0], 0);
  const dim = rows[0].pixelShape[1];
  const pixelValues = new Float32Array(pixelRows * dim);
  let off = 0;
  for (const r of rows) {
    pixelValues.set(r.pixelValues, off);
    off += r.pixelValues.length;
  }
  return {
    inputIds,
    batch: B,
    length: L,
    positionIds,
    pixelValues,
    pixelShape: [pixelRows, dim],
    imageGridThw: rows.flatMap((r) => r.imageGridThw),
    segmentLengths: rows.flatMap((r) => r.segmentLengths),
    segmentStarts: rows.flatMap((r) => r.segmentStarts),
    samples: rows.flatMap((r) => r.samples),
    packed: rows[0].packed,
  };
}

/**
 * Collates sequences into rows (packed greedily in order when packing is on,
 * else one per row) with 4-row position ids, and maps CE weights, boxes and
 * coord slots to flat row positions.
 */
export function collateStage2(
  seqs: Stage2Sequence[],
  opts: CollateOptions,
): Stage2Batch {
  if (seqs.length === 0) throw new Error("cannot collate zero sequences");
  if (opts.packing.enabled) {
    const long = seqs.find((s) => s.inputIds.length > opts.packing.maxLength);
    if (long) {
      // A config limit the run outgrew (bad input, exit 2), found mid-run
      // because rollout lengths are known only after generation.
      throw new InputError(
        `${long.sample.record.source}: Stage-2 sequence of ${long.inputIds.length} tokens exceeds custom.extra.rollout_matching.packing_length ${opts.packing.maxLength}; raise packing_length or lower rollout_matching.max_new_tokens`,
      );
    }
  }
  // packRow/padRows read inputIds from the sample: hand them the sequence's.
  const asSamples: RawSample[] = seqs.map((s) => ({
    ...s.sample,
    inputIds: s.inputIds,
    roles: s.roles,
  }));
  let collated: CollatedBatch;
  if (opts.packing.enabled) {
    const rows: CollatedBatch[] = [];
    let i = 0;
    while (i < asSamples.length) {
      const n = fillCount(
        asSamples.slice(i).map((s) => s.inputIds.length),
        asSamples.length,
        opts.packing.maxLength,
      );
      rows.push(
        packRow(asSamples.slice(i, i + n), opts.rope, opts.packing.maxLength),
      );
      i += n;
    }
    collated = stackRows(rows, opts.padId);
  } else collated = padRows(asSamples, opts.rope, opts.padId);

  const { batch: B, length: L } = collated;
  const ceWeights = new Float32Array(B * L);
  const boxes: SupervisedBox[] = [];
  const coordSlots: number[] = [];
  let k = 0;
  collated.segmentStarts.forEach((starts, row) => {
    starts.forEach((start) => {
      const s = seqs[k++];
      const base = row * L + start;
      s.roles.forEach((
        r,
        t,
      ) => (ceWeights[base + t] = roleWeight(r, opts.descCeWeight)));
      for (const b of s.boxes) {
        boxes.push({
          ...b,
          positions: b.positions.map((p) =>
            base + p
          ) as SupervisedBox["positions"],
        });
      }
      for (const p of s.coordSlots) coordSlots.push(base + p);
    });
  });
  const { samples: _samples, ...rows } = collated;
  return { ...rows, ceWeights, boxes, coordSlots };
}

/** Per-sample Channel-B inputs: the parsed rollout and its matching. */
export interface RolloutResult {
  rollout: ParsedRollout;
  match: MatchResult;
}

/**
 * Builds a collated Stage-2 micro-batch: Channel A from the GT answers,
 * Channel B from each sample's parsed rollout and matching (same order as
 * `samples`).
 *
 * @example
 * const batch = buildStage2Batch({ channel: "B", tokenizer, samples,
 *   rollouts, rope, packing: { enabled: true, maxLength: 2048 },
 *   padId: tokenizer.specialIds.pad, descCeWeight: 1 });
 */
export function buildStage2Batch(
  opts: CollateOptions & {
    channel: "A" | "B";
    tokenizer: Tokenizer;
    samples: RawSample[];
    rollouts?: RolloutResult[];
  },
): Stage2Batch {
  let seqs: Stage2Sequence[];
  if (opts.channel === "A") seqs = opts.samples.map(buildChannelASequence);
  else {
    const r = opts.rollouts;
    if (!r || r.length !== opts.samples.length) {
      throw new Error(
        `Channel B needs one rollout per sample, got ${
          r?.length ?? 0
        } for ${opts.samples.length}`,
      );
    }
    seqs = opts.samples.map((s, i) =>
      buildChannelBSequence(opts.tokenizer, s, r[i].rollout, r[i].match)
    );
  }
  return collateStage2(seqs, opts);
}
