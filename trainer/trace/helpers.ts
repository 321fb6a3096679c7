/**
 * Pure helpers the model and the Stage-2 variant use to fill trace fields
 * from the data they already hold. No TF.js: callers pass `dataSync()`
 * arrays.
 */
import { changedRowsByBatch } from "../common/rows.ts";
import type { SoftctxTrace } from "./schema.ts";

/**
 * Splits flat position ids `[R, B, T]` (R = 3 or 4, row-major, as from
 * `positionIds.dataSync()`) into the trace's per-batch-row arrays: `row0`
 * [B][T] (null for 3-row ids) and `mrope` [B][3][T] (the t, h, w rows).
 */
export function splitPositionIds(
  flat: ArrayLike<number>,
  rows: 3 | 4,
  batch: number,
  seqLen: number,
): { row0: number[][] | null; mrope: number[][][] } {
  if (flat.length !== rows * batch * seqLen) {
    throw new Error(
      `position ids hold ${flat.length} values, expected ${rows}x${batch}x${seqLen}`,
    );
  }
  const slice = (r: number, b: number): number[] => {
    const off = (r * batch + b) * seqLen;
    return Array.from({ length: seqLen }, (_, t) => Number(flat[off + t]));
  };
  const first = rows === 4 ? 1 : 0;
  const row0 = rows === 4
    ? Array.from({ length: batch }, (_, b) => slice(0, b))
    : null;
  const mrope = Array.from(
    { length: batch },
    (_, b) => [slice(first, b), slice(first + 1, b), slice(first + 2, b)],
  );
  return { row0, mrope };
}

/**
 * The `softctx` trace field of one Channel-A pass, from what the variant
 * holds: the coord-slot positions and the logits positions it read for them
 * (per batch row), the fresh base embedding and the inputs_embeds actually
 * passed to the forward (both [B, T, hidden] flattened, from `dataSync()`),
 * and whether the base came from an embedding call on the teacher-forced ids
 * in this pass.
 */
export function buildSoftctxTrace(o: {
  coordSlots: number[][];
  sourcePositions: number[][];
  base: Float32Array;
  actual: Float32Array;
  seqLen: number;
  hidden: number;
  baseFresh: boolean;
}): SoftctxTrace {
  return {
    coordSlots: o.coordSlots.map((r) => [...r]),
    sourcePositions: o.sourcePositions.map((r) => [...r]),
    changedRows: changedRowsByBatch(o.base, o.actual, o.seqLen, o.hidden),
    nSlots: o.coordSlots.reduce((n, r) => n + r.length, 0),
    baseFresh: o.baseFresh,
  };
}
