/** Shared result types of `validate-spec`. */

export type Level = "ERROR" | "WARNING" | "INFO";

/** One finding, in the official JSON shape plus an optional `line`. */
export interface Issue {
  level: Level;
  /** What the official CLI reports: a spec-relative file or a schema path. */
  path: string;
  message: string;
  /** 1-based line in `file`, where the problem has a location. */
  line?: number;
  /** Root-relative file the issue is in (human output only; not in JSON). */
  file?: string;
}

export interface Report {
  valid: boolean;
  issues: Issue[];
}

export type ItemType = "change" | "spec";

export interface ItemResult {
  id: string;
  type: ItemType;
  valid: boolean;
  issues: Issue[];
  durationMs: number;
  /** Human-only remarks (CommonMark disagreements); never in JSON. */
  notes?: FileNote[];
}

export interface FileNote {
  /** Root-relative file. */
  file: string;
  line: number;
  message: string;
  fix: string;
}

export function makeReport(issues: Issue[], strict: boolean): Report {
  const errors = issues.filter((i) => i.level === "ERROR").length;
  const warnings = issues.filter((i) => i.level === "WARNING").length;
  return { valid: errors === 0 && (!strict || warnings === 0), issues };
}
