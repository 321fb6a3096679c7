/**
 * Bitwise comparisons of embedding rows, on host arrays (`dataSync()`
 * output). Bitwise, not numerical: -0 vs 0 and NaN payloads count as
 * differences, which is what "image placeholder rows stay bitwise identical"
 * requires. The model finds placeholder rows with `rowsEqualTo`; the trace
 * recorder compares fed rows with embedding-table rows with `rowBitsEqual`.
 */

/** The bit patterns of float32 values (a view, no copy). */
export function float32Bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/**
 * Whether the `H` values at `ao` in `a` and at `bo` in `b` (bit patterns,
 * from `float32Bits`) are bitwise equal.
 *
 * @example
 * const x = float32Bits(new Float32Array([0, 1, -0, 1]));
 * rowBitsEqual(x, 0, x, 2, 2); // false: -0 is not 0 bitwise
 */
export function rowBitsEqual(
  a: Uint32Array,
  ao: number,
  b: Uint32Array,
  bo: number,
  H: number,
): boolean {
  for (let i = 0; i < H; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/**
 * Flat indices of the rows of `embeds` ([N, hidden] flattened, hidden =
 * `reference.length`) that are bitwise equal to `reference`.
 *
 * @example
 * rowsEqualTo(new Float32Array([0.5, -1, 3, 3, 0.5, -1]), new Float32Array([0.5, -1])); // [0, 2]
 */
export function rowsEqualTo(
  embeds: Float32Array,
  reference: Float32Array,
): number[] {
  const hidden = reference.length;
  const e = float32Bits(embeds), r = float32Bits(reference);
  const out: number[] = [];
  for (let row = 0; (row + 1) * hidden <= e.length; row++) {
    if (rowBitsEqual(e, row * hidden, r, 0, hidden)) out.push(row);
  }
  return out;
}
