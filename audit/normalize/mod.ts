/**
 * `stage2 normalize-check` as a library: find leftover 1000-based
 * coordinate-bin normalization in Python, TS/JS, Markdown, YAML and JSON.
 */
export { analyzeText, checkPaths, checkText } from "./check.ts";
export type {
  CheckOptions,
  CheckReport,
  FileResult,
  IgnoredFile,
  SkippedFile,
} from "./check.ts";
export type { Excluded, Gitignored } from "./walk.ts";
export {
  formatFindings,
  FORMATS,
  summary,
  verboseLines,
  warnings,
} from "./format.ts";
export type { OutputFormat } from "./format.ts";
export { CONFIG_NAME } from "./config.ts";
export { RULES } from "./types.ts";
export type { Finding, RawFinding, RuleId, Suppressed } from "./types.ts";
export { CheckError } from "./errors.ts";
export { needsParse } from "./check.ts";
