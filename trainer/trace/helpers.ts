/**
 * Pure helpers the model uses to fill trace fields from the data it
 * already holds. No TF.js: callers pass `dataSync()` arrays.
 */

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
