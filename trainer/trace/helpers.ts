/**
 * Pure helpers the model, loop and variants use to fill trace fields from
 * the data they already hold. No TF.js: callers pass `dataSync()` arrays.
 */
import { segmentsFromRow0 as segmentIds } from "../model/rope.ts";
import type { Segment, SoftctxTrace } from "./schema.ts";

/**
 * Packed-sequence segments of one row as `[start, len]` spans, from its
 * text-position row (row 0 of 4-row position ids). Boundaries come from the
 * model's own `segmentsFromRow0` (trainer/model/rope.ts: a segment starts at
 * index 0 and wherever row 0 is 0), so the trace and the model cannot
 * disagree on the rule; a wrong rule still shows up in the audit because
 * the spans are compared with the collator's independent `segmentLengths`.
 *
 * `row0` [T] -> `[start, len]` per segment, in order.
 */
export function segmentSpans(row0: ArrayLike<number>): Segment[] {
  const ids = segmentIds(Int32Array.from(row0));
  const out: Segment[] = [];
  let start = 0;
  for (let t = 1; t <= ids.length; t++) {
    if (t === ids.length || ids[t] !== ids[t - 1]) {
      out.push([start, t - start]);
      start = t;
    }
  }
  return out;
}

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
 * Rows (of `hidden` floats each) where `actual` differs bitwise from `base`.
 * Bitwise, not numerically: -0 vs 0 and NaN payloads count as changes, which
 * is what "bitwise identical placeholder rows" requires.
 *
 * `base`, `actual`: [N, hidden] flattened -> flat row indices in 0..N-1.
 */
export function changedRows(
  base: Float32Array,
  actual: Float32Array,
  hidden: number,
): number[] {
  if (base.length !== actual.length || base.length % hidden !== 0) {
    throw new Error(
      `changedRows: shapes differ (${base.length} vs ${actual.length} floats, hidden ${hidden})`,
    );
  }
  const a = new Uint32Array(base.buffer, base.byteOffset, base.length);
  const b = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const out: number[] = [];
  for (let row = 0; row * hidden < a.length; row++) {
    const off = row * hidden;
    for (let h = 0; h < hidden; h++) {
      if (a[off + h] !== b[off + h]) {
        out.push(row);
        break;
      }
    }
  }
  return out;
}

/**
 * `changedRows` grouped per batch row: `base`, `actual` [B, T, hidden]
 * flattened -> per batch row, the changed positions in 0..T-1: [B][m].
 */
export function changedRowsByBatch(
  base: Float32Array,
  actual: Float32Array,
  seqLen: number,
  hidden: number,
): number[][] {
  const batch = base.length / (seqLen * hidden);
  if (!Number.isInteger(batch)) {
    throw new Error(
      `changedRowsByBatch: ${base.length} floats is not a multiple of T=${seqLen} x hidden=${hidden}`,
    );
  }
  const out: number[][] = Array.from({ length: batch }, () => []);
  for (const row of changedRows(base, actual, hidden)) {
    out[Math.floor(row / seqLen)].push(row % seqLen);
  }
  return out;
}

/**
 * True when every listed row of `embeds` ([N, hidden] flattened) is bitwise
 * equal to `reference` ([hidden]); used for `placeholderBitwiseEqual` with the
 * placeholder token's embedding as the reference.
 */
export function rowsBitwiseEqual(
  embeds: Float32Array,
  rows: Iterable<number>,
  reference: Float32Array,
): boolean {
  const hidden = reference.length;
  const e = new Uint32Array(embeds.buffer, embeds.byteOffset, embeds.length);
  const r = new Uint32Array(
    reference.buffer,
    reference.byteOffset,
    reference.length,
  );
  for (const row of rows) {
    const off = row * hidden;
    if (off + hidden > e.length) return false;
    for (let h = 0; h < hidden; h++) if (e[off + h] !== r[h]) return false;
  }
  return true;
}

/**
 * `rolloutSeedBase` of design §2, computed exactly with BigInt:
 * `(trainingSeed + globalStep * 1000003) & 0x7FFFFFFF`.
 */
export function expectedRolloutSeedBase(
  trainingSeed: number,
  globalStep: number,
): number {
  return Number(
    (BigInt(trainingSeed) + BigInt(globalStep) * 1000003n) & 0x7FFFFFFFn,
  );
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
