/**
 * Bitwise comparisons of embedding rows, on host arrays (`dataSync()`
 * output). Bitwise, not numerical: -0 vs 0 and NaN payloads count as
 * differences, which is what "image placeholder rows stay bitwise identical"
 * requires. The model finds placeholder rows with `rowsEqualTo`; the Stage-2
 * variant reports the rows it overwrote with `changedRowsByBatch`.
 */

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/**
 * Rows (of `hidden` floats each) where `actual` differs bitwise from `base`.
 *
 * `base`, `actual`: [N, hidden] flattened -> flat row indices in 0..N-1.
 *
 * @example
 * changedRows(new Float32Array([1, 2, 0, 0]), new Float32Array([1, 2, -0, 0]), 2); // [1]
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
  const a = bits(base), b = bits(actual);
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
  const e = bits(embeds), r = bits(reference);
  const out: number[] = [];
  for (let row = 0; (row + 1) * hidden <= e.length; row++) {
    let eq = true;
    for (let h = 0; h < hidden && eq; h++) eq = e[row * hidden + h] === r[h];
    if (eq) out.push(row);
  }
  return out;
}
