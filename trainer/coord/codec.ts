/**
 * Coordinate bins. The one convention of the whole project:
 * encode `k = clamp(round(999 * c), 0, 999)`, decode `c = k / 999`.
 * Bin 999 is exactly 1.0; no value maps to 1000.
 */

/** Largest bin index; there are `MAX_BIN + 1 = 1000` bins. */
export const MAX_BIN = 999;
export const NUM_BINS = MAX_BIN + 1;

const TOKEN_RE = /^<\|coord_(\d{1,3})\|>$/;

/**
 * Normalized coordinate in [0, 1] -> bin `clamp(round(999 * c), 0, 999)`
 * (NaN rejected).
 *
 * @example
 * encodeCoord(1);   // 999
 * encodeCoord(0.5); // 500
 */
export function encodeCoord(c: number): number {
  if (!Number.isFinite(c)) {
    throw new RangeError(`coordinate ${c} is not finite`);
  }
  return Math.min(MAX_BIN, Math.max(0, Math.round(MAX_BIN * c)));
}

/**
 * Bin in 0..999 -> normalized coordinate `k / 999` (bin 999 is exactly 1.0).
 *
 * @example
 * decodeCoord(999); // 1
 */
export function decodeCoord(k: number): number {
  if (!Number.isInteger(k) || k < 0 || k > MAX_BIN) {
    throw new RangeError(`coord bin ${k} is not an integer in [0, ${MAX_BIN}]`);
  }
  return k / MAX_BIN;
}

/**
 * Bin -> its vocabulary token string `<|coord_k|>`.
 *
 * @example
 * coordToken(42); // "<|coord_42|>"
 */
export function coordToken(k: number): string {
  decodeCoord(k);
  return `<|coord_${k}|>`;
}

/**
 * `<|coord_k|>` -> k, or `undefined` when the string is not a coord token.
 *
 * @example
 * parseCoordToken("<|coord_7|>");    // 7
 * parseCoordToken("<|coord_1000|>"); // undefined
 */
export function parseCoordToken(s: string): number | undefined {
  const m = TOKEN_RE.exec(s);
  if (!m) return undefined;
  const k = Number(m[1]);
  return k <= MAX_BIN && String(k) === m[1] ? k : undefined;
}

/** All 1000 coord token strings in bin order. */
export function allCoordTokens(): string[] {
  return Array.from({ length: NUM_BINS }, (_, k) => `<|coord_${k}|>`);
}

/**
 * Ground-truth value coercion: `int(round(float(v)))`, where a `<|coord_k|>`
 * string yields k. Throws when the result is outside [0, 999].
 * Ties round to even, as Python's `round` does, so data prepared by the
 * Python reference and by this loader agree on every bin.
 */
export function coerceGtBin(v: unknown): number {
  let f: number;
  if (typeof v === "string") {
    const k = parseCoordToken(v.trim());
    f = k !== undefined ? k : Number(v);
  } else if (typeof v === "number") f = v;
  else throw new TypeError(`coordinate ${JSON.stringify(v)} is not a number`);
  if (!Number.isFinite(f)) {
    throw new RangeError(`coordinate ${JSON.stringify(v)} is not a number`);
  }
  const k = roundHalfEven(f);
  if (k < 0 || k > MAX_BIN) {
    throw new RangeError(`coordinate ${JSON.stringify(v)} is outside [0, 999]`);
  }
  return k;
}

/** Python 3 `round(x)`: ties go to the even integer. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
