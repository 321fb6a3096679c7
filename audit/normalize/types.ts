/**
 * Shared types of `stage2 normalize-check`: what a finding is and the fixed
 * set of rules (forms) with their one-line fix hints.
 */

/** The forms the checker reports. */
export type RuleId =
  | "decode-by-1000"
  | "encode-by-1000"
  | "norm-param-1000"
  | "tolerance-1000"
  | "test-expect-1000"
  | "prose-1000";

export interface RuleInfo {
  /** What the form is, for `--verbose` listings and docs. */
  summary: string;
  /** One-line fix hint printed with every finding of this rule. */
  fix: string;
}

export const RULES: Record<RuleId, RuleInfo> = {
  "decode-by-1000": {
    summary: "a coordinate bin divided by 1000 (decode, scale factor, extent)",
    fix: "decode bins as k / 999 and project with k / 999 * (W - 1)",
  },
  "encode-by-1000": {
    summary: "a normalized coordinate multiplied by 1000 (encode)",
    fix: "encode as clamp(round(c * 999), 0, 999) with c = x / (W - 1)",
  },
  "norm-param-1000": {
    summary: "1000 as a normalization constant, default or argument",
    fix: "use 999 (MAX_BIN) as the bin normalizer, or import the coord codec",
  },
  "tolerance-1000": {
    summary: "a distance or tolerance expressed in 1000ths of the image",
    fix: "express bin distances as n / 999 (one bin is 1/999 of the extent)",
  },
  "test-expect-1000": {
    summary: "a test expectation computed with /1000",
    fix: "compute the expected value with k / 999 (or the codec's decodeCoord)",
  },
  "prose-1000": {
    summary: "text stating that bins decode or encode with 1000",
    fix:
      "state the rule as k / 999 (encode round(999 * c)), or mark it as forbidden",
  },
};

/** A finding as an analyzer produces it: an offset into the file text. */
export interface RawFinding {
  /** UTF-16 offset into the analyzed text where the form starts. */
  offset: number;
  rule: RuleId;
  message: string;
}

/** A finding as reported: `path` is relative to the check root. */
export interface Finding {
  path: string;
  /** 1-based line. */
  line: number;
  /** 1-based column (UTF-16 code units). */
  column: number;
  rule: RuleId;
  message: string;
  /** The source line, trimmed. */
  snippet: string;
  /** One-line fix hint. */
  fix: string;
}

/** A finding silenced by an inline `normalize-check: ignore` comment. */
export interface Suppressed {
  finding: Finding;
  /** Line of the suppressing comment and its optional reason. */
  commentLine: number;
  reason: string;
}
