/**
 * Language-neutral judgement of one arithmetic operation with 1000. The
 * Python and TS/JS analyzers walk their ASTs, resolve names through
 * assignments, defaults and loop bindings, and hand each `/ 1000` or
 * `* 1000` over as an `ArithCandidate`; this module decides whether it is a
 * coordinate normalization and which form it is.
 */
import { any, COORD, COUNT, EXPECT, hits, TIME, TOLERANCE } from "./context.ts";
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
  /** Words of the other operand, including what its names were bound to. */
  operandWords: string[];
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
  const ctx = [...c.operandWords, ...c.contextWords];
  // Time conversions are the most common legitimate 1000 in code.
  if (any(ctx, TIME)) return null;
  if (c.inIndex) return null;
  const inTest = c.inTest || any(c.contextWords, EXPECT);
  if (c.operandValue !== null) {
    // `3 * 1000` is a count; `0.5 * 1000` in a test is an encoded expectation.
    if (c.kind === "mul") {
      if (!(inTest && c.operandValue >= 0 && c.operandValue <= 1)) return null;
    }
    if (any(c.contextWords, COUNT) && !inTest) return null;
    if (!fileCoord && !any(ctx, COORD) && !any(ctx, TOLERANCE)) return null;
  } else {
    // A count or index operand makes 1000 a stride or a unit (`n / 1000` k).
    if (any(c.operandWords, COUNT)) return null;
    if (!any(ctx, COORD)) {
      if (any(c.contextWords, COUNT)) return null;
      if (!fileCoord) return null;
    }
  }
  const shown = c.text.length > 60 ? c.text.slice(0, 57) + "..." : c.text;
  const cue = hits(ctx, COORD).slice(0, 3);
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
      message: `1000 as ${from} \`${c.via.name}\` normalizes coordinates in \`${shown}\``,
    };
  }
  if (inTest) {
    return {
      rule: "test-expect-1000",
      offset: c.offset,
      message: `test expectation computed with 1000: \`${shown}\``,
    };
  }
  if (c.kind === "div" && c.operandValue !== null) {
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

/** Tolerance-named context, exported for analyzers that label targets. */
export function isToleranceName(ws: string[]): boolean {
  return any(ws, TOLERANCE);
}
