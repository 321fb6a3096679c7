// normalize-check: ignore-file -- this checker's own sources quote the forms it looks for
/**
 * Language-neutral judgement of one arithmetic operation with 1000. The
 * Python and TS/JS analyzers walk their ASTs, resolve names through
 * assignments, defaults and loop bindings, and hand each `/ 1000` or
 * `* 1000` over as an `ArithCandidate`; this module decides whether it is a
 * coordinate normalization and which form it is.
 */
import {
  any,
  COORD,
  COUNT,
  EXPECT,
  hits,
  INDEX,
  TIME,
  TOLERANCE,
  UNIT,
  WEAK_COORD,
  words,
} from "./context.ts";
import type { RawFinding, RuleId } from "./types.ts";

/** Where a 1000 reached the operation from, when it was not a literal. */
export interface Via {
  /** The name used in the operation (`scale`, `self.norm`). */
  name: string;
  /** Offset of the literal 1000 that the name resolves to. */
  literalOffset: number;
  /** How the literal got there. */
  how: "default" | "constant" | "argument";
}

export interface ArithCandidate {
  /** `div`: x / 1000 (or x /= 1000); `mul`: x * 1000. */
  kind: "div" | "mul";
  /** Offset of the operation (reported when `via` is absent). */
  offset: number;
  /** Source text of the operation, for the message. */
  text: string;
  /** Words of the other operand's own text. */
  operandWords: string[];
  /** Words of what the operand's names were bound to (defaults, loops). */
  boundWords: string[];
  /**
   * Words of the assignment target, enclosing calls and function: the
   * coordinate evidence around the operation.
   */
  contextWords: string[];
  /** Words of the name the result is stored under (target, parameter, key). */
  targetWords: string[];
  /**
   * Words of the test around it: the comparison, or the arguments of an
   * assertion call (`assertAlmostEquals(decode(500), 500 / 1000)`).
   */
  testWords: string[];
  /**
   * Words of the whole test function around it, for an operand with no
   * evidence of its own (`assert_allclose(to_unit(b), np.array(b) / 1000)`
   * in a test of `coords`); never for constants.
   */
  testBodyWords: string[];
  /** The operation sits in an ordering comparison (`<`, `<=`, ...). */
  bound: boolean;
  /** The other operand folds to a number (`2 / 1000`); its value. */
  operandValue: number | null;
  /** The other operand is a string or list literal (`"-" * 1000`). */
  sequence: boolean;
  /** `x // 1000`: floor division, never a bin decode. */
  floor: boolean;
  /** Words of a divisor applied to the product (`v * 1000 / n`), if any. */
  perWords: string[] | null;
  /** Inside an assertion or an expected-value computation. */
  inTest: boolean;
  /** The operation indexes or sizes an array (`z[i * 1000 + k]`, `new Float32Array(1000 * n)`). */
  inIndex: boolean;
  via?: Via;
}

export interface Verdict {
  rule: RuleId;
  message: string;
  /** Offset to report: the literal for `via`, else the operation. */
  offset: number;
}

/**
 * Decide one candidate. A finding needs evidence that the number next to
 * the 1000 is a coordinate or bin (its own name, what it was bound to, the
 * name the result is stored under, the function or call around it), or,
 * for a constant (`2 / 1000`), that it is a tolerance or a test
 * expectation about coordinates. What the rest of the file talks about is
 * no evidence.
 */
export function judge(c: ArithCandidate): Verdict | null {
  const own = c.operandWords;
  const bound = c.boundWords;
  const ctx = c.contextWords;
  if (c.floor || c.sequence) return null;
  // Time and unit conversions are the most common legitimate 1000 in code.
  const viaWords = c.via ? words(c.via.name) : [];
  for (const ws of [own, ctx, viaWords]) {
    if (any(ws, TIME) || any(ws, UNIT)) return null;
  }
  // `z[i * 1000 + k]` is a row stride; `heat[int(y * 1000)]` rasterizes.
  if (c.inIndex && !any(own, COORD) && !any(bound, COORD)) return null;
  // `v * 1000 / n_rollouts` is a rate per thousand.
  if (c.kind === "mul" && c.perWords && any(c.perWords, COUNT)) return null;
  const inTest = c.inTest || any(c.targetWords, EXPECT);
  const testCoord = any(c.testWords, COORD);
  let tolerance = false;
  if (c.operandValue !== null) {
    if (c.kind === "mul") {
      // `3 * 1000` is a count; `0.5 * 1000` in a coordinate test encodes.
      if (
        !(inTest && testCoord && c.operandValue >= 0 && c.operandValue <= 1)
      ) {
        return null;
      }
    } else if (!(inTest && testCoord)) {
      // `MAX_BYTES / 1000`: a big constant in other units.
      if (Math.abs(c.operandValue) >= 1000) return null;
      tolerance = any(c.targetWords, TOLERANCE) ||
        (c.bound && any(c.testWords, TOLERANCE));
      if (!tolerance && !any(c.targetWords, COORD)) return null;
    } else {
      // `abs(a - b) <= 3 / 1000` is a tolerance even inside an assertion.
      tolerance = c.bound && any(c.testWords, TOLERANCE);
    }
  } else if (
    !isCoordinate(own, bound, ctx) &&
    !(inTest && isCoordinate(own, bound, [...c.testWords, ...c.testBodyWords]))
  ) {
    return null;
  }
  const shown = c.text.length > 60 ? c.text.slice(0, 57) + "..." : c.text;
  const cue = [...new Set(hits([...own, ...bound, ...ctx], COORD))].slice(0, 3);
  const about = cue.length ? ` (${cue.join(", ")})` : "";
  if (c.via) {
    const from = c.via.how === "default"
      ? "default parameter"
      : c.via.how === "argument"
      ? "argument"
      : "constant";
    return {
      rule: "norm-param-1000",
      offset: c.via.literalOffset,
      message:
        `1000 as ${from} \`${c.via.name}\` normalizes coordinates in \`${shown}\``,
    };
  }
  if (tolerance) {
    return {
      rule: "tolerance-1000",
      offset: c.offset,
      message: `distance in 1000ths of the image: \`${shown}\``,
    };
  }
  if (inTest) {
    return {
      rule: "test-expect-1000",
      offset: c.offset,
      message: `test expectation computed with 1000: \`${shown}\``,
    };
  }
  if (c.kind === "div") {
    return {
      rule: "decode-by-1000",
      offset: c.offset,
      message: `coordinate divided by 1000${about}: \`${shown}\``,
    };
  }
  return {
    rule: "encode-by-1000",
    offset: c.offset,
    message: `coordinate multiplied by 1000${about}: \`${shown}\``,
  };
}

/**
 * Whether the operand of a 1000 is a coordinate. The operand's own words
 * weigh most (`ks[0] * w` is a coordinate even though `ks` came from
 * "tokens"), then what its names were bound to, then the assignment target
 * and enclosing call or function. A generic name (`k`) defers to its
 * binding (`k = resolve_top_k(...)` is a count).
 */
function isCoordinate(own: string[], bound: string[], ctx: string[]): boolean {
  if (any(own, COUNT)) return false;
  // A value computed from a clock or in other units is not a coordinate.
  if (any(bound, TIME) || any(bound, UNIT)) return false;
  const strong = (ws: string[]) =>
    ws.some((w) => COORD.has(w) && !WEAK_COORD.has(w));
  if (strong(own)) return true;
  // `k = int(tok[len("<|coord_"):-2])`: a parsed coord token, a box list.
  if (strong(bound)) return true;
  if (any(bound, COUNT)) return false;
  if (any(own, COORD)) return true;
  if (any(own, INDEX)) return false;
  if (any(bound, COORD)) return true;
  return any(ctx, COORD);
}

/** Turn verdicts into raw findings, one per reported offset. */
export function verdictsToFindings(vs: Verdict[]): RawFinding[] {
  const seen = new Set<number>();
  const out: RawFinding[] = [];
  for (const v of vs) {
    if (seen.has(v.offset)) continue;
    seen.add(v.offset);
    out.push({ offset: v.offset, rule: v.rule, message: v.message });
  }
  return out;
}

/** Whether a folded number is 1000 (1000, 1000.0, 1e3, 999 + 1). */
export function isThousand(v: number | null): boolean {
  return v !== null && Math.abs(v - 1000) < 1e-9;
}
