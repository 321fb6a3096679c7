/**
 * Packed-row segments from row 0 (the text positions of 4-row position ids
 * `[text; t; h; w]`). Design §2: row 0 restarts at 0 at every packed sample
 * and is the only source of segment boundaries. The model's attention mask,
 * the trace and the audit all read boundaries through these two functions,
 * so the rule has one home.
 */

/** `[start, length]` of one packed segment within a row. */
export type Span = [number, number];

/**
 * Segment id per position of a packed row: a new segment starts at index 0
 * and at every later position whose value is 0. Nothing else defines
 * boundaries.
 *
 * @example
 * segmentsFromRow0(Int32Array.from([0, 1, 2, 0, 1])); // [0, 0, 0, 1, 1]
 */
export function segmentsFromRow0(row0: ArrayLike<number>): Int32Array {
  const seg = new Int32Array(row0.length);
  let s = 0;
  for (let i = 0; i < row0.length; i++) {
    if (i > 0 && row0[i] === 0) s++;
    seg[i] = s;
  }
  return seg;
}

/**
 * The segments of a row as `[start, len]` spans, in order, from its segment
 * ids (`segmentsFromRow0`); a row without ids (unpacked) of length `T` is
 * one span `[0, T]`.
 *
 * @example
 * spansFromSegmentIds(segmentsFromRow0([0, 1, 2, 0, 1, 0])); // [[0, 3], [3, 2], [5, 1]]
 */
export function spansFromSegmentIds(ids: ArrayLike<number>): Span[] {
  const out: Span[] = [];
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
 * Packed-sequence segments of one row as `[start, len]` spans, straight
 * from row 0.
 *
 * @example
 * segmentSpans([0, 1, 2, 0, 1]); // [[0, 3], [3, 2]]
 */
export function segmentSpans(row0: ArrayLike<number>): Span[] {
  return spansFromSegmentIds(segmentsFromRow0(row0));
}
