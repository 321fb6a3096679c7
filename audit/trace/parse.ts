/**
 * Reading `trace.jsonl` for the audit. A malformed line is an error naming
 * the line and the offending field, never skipped: a trace that cannot be
 * read cannot vouch for the run.
 */
import {
  TRACE_FILE,
  type TraceLine,
  TraceLineSchema,
} from "../../trainer/trace/schema.ts";

/** One trace record with its 1-based line number in the file. */
export interface ParsedLine<T extends TraceLine = TraceLine> {
  line: number;
  rec: T;
}

/** The trace could not be read; `message` names the file and line. */
export class TraceFormatError extends Error {}

/**
 * Parses the text of a trace. `file` is used in messages only. Blank lines
 * carry nothing and are passed over; every other line must be a valid
 * record, and the first record must be the `run` header.
 */
export function parseTrace(text: string, file = TRACE_FILE): ParsedLine[] {
  const raw = text.split("\n");
  const torn = raw.length > 0 && raw[raw.length - 1] !== "";
  const out: ParsedLine[] = [];
  for (let i = 0; i < raw.length; i++) {
    const src = raw[i];
    if (src.trim() === "") continue;
    const line = i + 1;
    const last = i === raw.length - 1 && torn;
    let value: unknown;
    try {
      value = JSON.parse(src);
    } catch (e) {
      throw new TraceFormatError(
        `${file}:${line}: not valid JSON (${(e as Error).message})${
          last
            ? "; the final line has no newline, so the run was probably killed mid-write: resume the run or delete that line"
            : ""
        }`,
      );
    }
    const r = TraceLineSchema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      const kind = typeof value === "object" && value !== null &&
          "kind" in value
        ? ` (${JSON.stringify((value as { kind: unknown }).kind)} record)`
        : "";
      const path = issue.path.length ? `field ${issue.path.join(".")}: ` : "";
      throw new TraceFormatError(
        `${file}:${line}: malformed trace record${kind}: ${path}${issue.message}`,
      );
    }
    out.push({ line, rec: r.data });
  }
  if (out.length === 0) {
    throw new TraceFormatError(`${file}: empty trace (no records)`);
  }
  if (out[0].rec.kind !== "run") {
    throw new TraceFormatError(
      `${file}:${
        out[0].line
      }: the first record must be the "run" header, got "${out[0].rec.kind}"`,
    );
  }
  const extra = out.slice(1).find((l) => l.rec.kind === "run");
  if (extra) {
    throw new TraceFormatError(
      `${file}:${extra.line}: a second "run" header; a trace holds one run (resumes append a "resume" record)`,
    );
  }
  return out;
}
