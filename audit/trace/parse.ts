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

/** A trace as read: its complete records, and a torn final line if any. */
export interface ReadTrace {
  lines: ParsedLine[];
  /** 1-based number of a final line without its newline (cut mid-write), which is not parsed; null when the file ends with a newline. */
  tornLine: number | null;
}

/**
 * Reads the text of a trace. Every line the recorder finished ends with a
 * newline, so a final line without one was cut mid-write: it is reported
 * as `tornLine` and not parsed (the run is incomplete, not corrupt). Blank
 * lines carry nothing and are passed over; every other line must be a
 * valid record, and the first record must be the `run` header. `file` is
 * used in messages only.
 */
export function readTrace(text: string, file = TRACE_FILE): ReadTrace {
  const raw = text.split("\n");
  const torn = raw[raw.length - 1] !== "";
  const out: ParsedLine[] = [];
  for (let i = 0; i < raw.length - 1; i++) {
    const src = raw[i];
    if (src.trim() === "") continue;
    const line = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(src);
    } catch (e) {
      throw new TraceFormatError(
        `${file}:${line}: not valid JSON (${oneLine((e as Error).message)})`,
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
        `${file}:${line}: malformed trace record${kind}: ${path}${
          oneLine(issue.message)
        }`,
      );
    }
    out.push({ line, rec: r.data });
  }
  if (out.length === 0) {
    throw new TraceFormatError(
      `${file}: empty trace (no complete records)`,
    );
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
  return { lines: out, tornLine: torn ? raw.length : null };
}

/**
 * Parses a trace that must be complete: like `readTrace`, but a torn final
 * line is an error too.
 */
export function parseTrace(text: string, file = TRACE_FILE): ParsedLine[] {
  const r = readTrace(text, file);
  if (r.tornLine !== null) {
    throw new TraceFormatError(
      `${file}:${r.tornLine}: the final line has no newline, so the run was probably killed mid-write`,
    );
  }
  return r.lines;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ");
}
