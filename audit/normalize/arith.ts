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
  /** Words of the assignment target, enclosing call and function. */
  contextWords: string[];
  /** The other operand folds to a number (`2 / 1000`); its value. */
  operandValue: number | null;
  /** Inside an assertion or an expected-value computation. */
  inTest: boolean;
  /** The operation indexes an array (`z[i * 1000 + k]`). */
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
 * Decide one candidate. `fileCoord` says whether the file mentions
 * coordinates at all; it settles operands that carry no cue either way.
 */
export function judge(c: ArithCandidate, fileCoord: boolean): Verdict | null {
  const own = c.operandWords;
  const bound = c.boundWords;
  const ctx = c.contextWords;
  // Time conversions are the most common legitimate 1000 in code.
  if (any(own, TIME) || any(ctx, TIME)) return null;
  // `z[i * 1000 + k]` is a row stride; `heat[int(y * 1000)]` rasterizes.
  if (c.inIndex && !any(own, COORD)) return null;
  const inTest = c.inTest || any(ctx, EXPECT);
  if (c.operandValue !== null) {
    // `3 * 1000` is a count; `0.5 * 1000` in a test is an encoded expectation.
    if (c.kind === "mul") {
      if (!(inTest && c.operandValue >= 0 && c.operandValue <= 1)) return null;
    }
    if (any(ctx, COUNT) && !inTest) return null;
    if (!fileCoord && !any(ctx, COORD) && !any(ctx, TOLERANCE)) return null;
  } else if (!isCoordinate(own, bound, ctx, fileCoord)) {
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
  // `abs(a - b) <= 3 / 1000` is a tolerance even inside an assertion.
  const tolerance = c.kind === "div" && c.operandValue !== null &&
    (!inTest || any(c.contextWords, TOLERANCE));
  if (inTest && !tolerance) {
    return {
      rule: "test-expect-1000",
      offset: c.offset,
      message: `test expectation computed with 1000: \`${shown}\``,
    };
  }
  if (tolerance) {
    return {
      rule: "tolerance-1000",
      offset: c.offset,
      message: `distance in 1000ths of the image: \`${shown}\``,
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
 * and enclosing call or function; a file about boxes settles the rest.
 */
function isCoordinate(
  own: string[],
  bound: string[],
  ctx: string[],
  fileCoord: boolean,
): boolean {
  if (any(own, COUNT)) return false;
  // A value computed from a clock is a time whatever its name.
  if (any(bound, TIME)) return false;
  if (any(own, COORD)) return true;
  if (any(own, INDEX)) return false;
  if (any(bound, COORD)) return true;
  if (any(bound, COUNT)) return false;
  if (any(ctx, COORD)) return true;
  if (any(ctx, COUNT)) return false;
  return fileCoord;
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
