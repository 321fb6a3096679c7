/**
 * Collation of raw samples into model rows.
 *
 * Packed (padding-free): samples are concatenated into one row whose 4-row
 * position ids are `[text; t; h; w]`: row 0 restarts at 0 at every sample
 * (the model's only source of segment boundaries), rows 1..3 are each
 * sample's own mRoPE positions from the model's `getRopeIndex`.
 *
 * Padded: one sample per row, right-padded with the pad token to the longest
 * row. Causal attention means real tokens never see the right padding, so no
 * attention mask is needed; pad positions carry no loss.
 */
import type { Qwen3VLConfig } from "../model/config.ts";
import { getRopeIndex } from "../model/rope.ts";
import { InputError } from "../errors.ts";
import { faultActive } from "../common/faults.ts";
import type { RawSample } from "./contract.ts";

/** mRoPE positions of one sample: three rows (t, h, w) of length T. */
export type RopeFn = (
  inputIds: Int32Array,
  imageGridThw: [number, number, number][],
) => [Int32Array, Int32Array, Int32Array];

/** The model's `getRopeIndex` for one sample, as three rows. */
export function ropeFnFor(cfg: Qwen3VLConfig): RopeFn {
  return (ids, grid) => {
    const r = getRopeIndex(cfg, [ids], grid);
    const T = ids.length;
    return [
      r.positionIds.slice(0, T),
      r.positionIds.slice(T, 2 * T),
      r.positionIds.slice(2 * T, 3 * T),
    ];
  };
}

/**
 * A probe sequence for `packingRope`: one image of a single merged patch
 * (`<|vision_start|> <|image_pad|> <|vision_end|>`) followed by text, so
 * both the image and the text branch of the mRoPE index run.
 */
export function ropeProbe(
  cfg: Qwen3VLConfig,
  text: ArrayLike<number>,
): { inputIds: Int32Array; imageGridThw: [number, number, number][] } {
  const m = cfg.vision_config.spatial_merge_size;
  return {
    inputIds: Int32Array.from([
      cfg.vision_start_token_id,
      cfg.image_token_id,
      cfg.vision_end_token_id,
      ...Array.from(text),
    ]),
    imageGridThw: [[1, m, m]],
  };
}

/**
 * Start-up guardrail of design §2, for every variant: with packing on, the
 * 4-row position ids `[text; t; h; w]` need the model's 3-row mRoPE per
 * sample. Probes it once and fails before the first step with a message
 * that says how to fix the config. Returns the rope function collation uses.
 */
export function packingRope(
  model: { config: Qwen3VLConfig; getRopeIndex?: unknown },
  packing: boolean,
  probe: { inputIds: Int32Array; imageGridThw: [number, number, number][] },
): RopeFn {
  const how =
    "set training.packing.enabled: false (one sample per row) or use a model whose getRopeIndex yields 3 mRoPE rows per token";
  if (packing && typeof model.getRopeIndex !== "function") {
    throw new InputError(
      `packing is on but the model offers no getRopeIndex, so 4-row position ids [text; t; h; w] cannot be built; ${how}`,
    );
  }
  const rope = ropeFnFor(model.config);
  if (!packing) return rope;
  let rows: Int32Array[];
  try {
    rows = rope(probe.inputIds, probe.imageGridThw);
  } catch (e) {
    throw new InputError(
      `packing is on but mRoPE positions for 4-row position ids cannot be computed (${
        (e as Error).message
      }); ${how}`,
    );
  }
  const n = probe.inputIds.length;
  if (rows.length !== 3 || rows.some((r) => r.length !== n)) {
    throw new InputError(
      `packing is on but getRopeIndex gave ${rows.length} rows for a ${n}-token probe; 4-row position ids need 3 mRoPE rows; ${how}`,
    );
  }
  return rope;
}

/** A collated micro-batch, still as plain arrays. */
export interface CollatedBatch {
  /** input_ids [B, L], row-major. */
  inputIds: Int32Array;
  batch: number;
  length: number;
  /** position_ids [4, B, L], row-major: text, t, h, w. */
  positionIds: Int32Array;
  /** pixel_values [sum Npatch, D] of all images in row order. */
  pixelValues: Float32Array;
  pixelShape: [number, number];
  /** image_grid_thw of all images in row order. */
  imageGridThw: [number, number, number][];
  /** Per row, the lengths of the samples in it (padding excluded). */
  segmentLengths: number[][];
  /** Per row, where each sample starts. */
  segmentStarts: number[][];
  /** Per row, the samples placed in it. */
  samples: RawSample[][];
  packed: boolean;
}

/** The pixel values of `samples`, concatenated in order: [sum Npatch, D]. */
export function concatPixels(samples: RawSample[]): {
  data: Float32Array;
  shape: [number, number];
} {
  let rows = 0;
  let dim = -1;
  for (const s of samples) {
    if (dim >= 0 && s.pixelShape[1] !== dim) {
      throw new Error(
        `sample ${s.record.source} has pixel_values width ${
          s.pixelShape[1]
        }, others ${dim}`,
      );
    }
    dim = s.pixelShape[1];
    rows += s.pixelShape[0];
  }
  const data = new Float32Array(rows * Math.max(dim, 0));
  let off = 0;
  for (const s of samples) {
    data.set(s.pixelValues, off);
    off += s.pixelValues.length;
  }
  return { data, shape: [rows, Math.max(dim, 0)] };
}

function checkRope(
  s: RawSample,
  rope: [Int32Array, Int32Array, Int32Array],
): void {
  if (rope.length !== 3 || rope.some((r) => r.length !== s.inputIds.length)) {
    throw new Error(
      `getRopeIndex gave ${rope.length} rows of lengths [${
        rope.map((r) => r.length)
      }] for sample ${s.record.source} of ${s.inputIds.length} tokens; 3 rows of its length are needed for 4-row packed position ids`,
    );
  }
}

/** All samples into one padding-free row of at most `maxLength` tokens. */
export function packRow(
  samples: RawSample[],
  rope: RopeFn,
  maxLength: number,
): CollatedBatch {
  const total = samples.reduce((n, s) => n + s.inputIds.length, 0);
  if (samples.length === 0) throw new Error("cannot pack zero samples");
  if (total > maxLength) {
    throw new Error(
      `packed row of ${total} tokens exceeds training.packing.max_length ${maxLength}`,
    );
  }
  const inputIds = new Int32Array(total);
  const positionIds = new Int32Array(4 * total);
  const lengths: number[] = [];
  const starts: number[] = [];
  let off = 0;
  for (const s of samples) {
    const n = s.inputIds.length;
    const r = rope(s.inputIds, s.imageGridThw);
    checkRope(s, r);
    inputIds.set(s.inputIds, off);
    const text0 = faultActive("row0-no-restart") ? off : 0;
    for (let i = 0; i < n; i++) positionIds[off + i] = text0 + i;
    for (let k = 0; k < 3; k++) positionIds.set(r[k], (k + 1) * total + off);
    starts.push(off);
    lengths.push(n);
    off += n;
  }
  const px = concatPixels(samples);
  return {
    inputIds,
    batch: 1,
    length: total,
    positionIds,
    pixelValues: px.data,
    pixelShape: px.shape,
    imageGridThw: samples.flatMap((s) => s.imageGridThw),
    segmentLengths: [lengths],
    segmentStarts: [starts],
    samples: [samples],
    packed: true,
  };
}

/**
 * One sample per row, right-padded with `padId`. Position ids are 4-row too
 * (row 0 = 0..L-1, one segment per row); mRoPE rows continue past the sample
 * end by +1 per pad token, as HF's text positions would.
 */
export function padRows(
  samples: RawSample[],
  rope: RopeFn,
  padId: number,
): CollatedBatch {
  if (samples.length === 0) throw new Error("cannot collate zero samples");
  const B = samples.length;
  const L = Math.max(...samples.map((s) => s.inputIds.length));
  const inputIds = new Int32Array(B * L).fill(padId);
  const positionIds = new Int32Array(4 * B * L);
  samples.forEach((s, b) => {
    const n = s.inputIds.length;
    const r = rope(s.inputIds, s.imageGridThw);
    checkRope(s, r);
    inputIds.set(s.inputIds, b * L);
    for (let i = 0; i < L; i++) positionIds[b * L + i] = i;
    for (let k = 0; k < 3; k++) {
      const base = (k + 1) * B * L + b * L;
      positionIds.set(r[k], base);
      let last = n > 0 ? r[k][n - 1] : -1;
      for (let i = n; i < L; i++) positionIds[base + i] = ++last;
    }
  });
  const px = concatPixels(samples);
  return {
    inputIds,
    batch: B,
    length: L,
    positionIds,
    pixelValues: px.data,
    pixelShape: px.shape,
    imageGridThw: samples.flatMap((s) => s.imageGridThw),
    segmentLengths: samples.map((s) => [s.inputIds.length]),
    segmentStarts: samples.map(() => [0]),
    samples: samples.map((s) => [s]),
    packed: false,
  };
}

/**
 * Greedy row filling over samples in data order: takes up to `maxSamples`
 * consecutive lengths while their sum stays within `maxLength`. Returns how
 * many to take (at least 1; a single over-long sample is the caller's error).
 */
export function fillCount(
  lengths: number[],
  maxSamples: number,
  maxLength: number,
): number {
  let total = 0;
  let n = 0;
  while (n < lengths.length && n < maxSamples) {
    if (n > 0 && total + lengths[n] > maxLength) break;
    total += lengths[n];
    n++;
  }
  return Math.max(1, n);
}
