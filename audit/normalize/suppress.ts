/**
 * Inline suppressions. A comment `normalize-check: ignore` (any comment
 * syntax: `#`, `//`, `/*`, `<!--`) silences findings on its own line, or on
 * the next line when the comment stands alone; `normalize-check: ignore-file`
 * silences the whole file. Text after the marker is the reason, shown by
 * `--verbose`.
 */

const MARKER =
  /(?:#|\/\/|\/\*|<!--|^\s*\*|--)\s*normalize-check:\s*ignore(-file)?\b(.*)$/;

export interface Suppressions {
  /** 1-based line -> (comment line, reason). */
  lines: Map<number, { commentLine: number; reason: string }>;
  /** Set when the file carries `ignore-file`. */
  file: { commentLine: number; reason: string } | null;
}

function cleanReason(s: string): string {
  return s.replace(/(?:-->|\*\/)\s*$/, "").replace(/^[\s:—–(-]+|[\s)]+$/g, "")
    .trim();
}

/** Scan a file's lines for suppression comments. */
export function findSuppressions(text: string): Suppressions {
  const out: Suppressions = { lines: new Map(), file: null };
  if (!text.includes("normalize-check:")) return out;
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    const m = MARKER.exec(line);
    if (!m) return;
    const entry = { commentLine: i + 1, reason: cleanReason(m[2]) };
    if (m[1]) {
      out.file ??= entry;
      return;
    }
    out.lines.set(i + 1, entry);
    // A comment alone on its line covers the next non-blank line.
    if (line.slice(0, m.index).trim() === "") {
      let j = i + 1;
      while (j < lines.length && lines[j].trim() === "") j++;
      if (j < lines.length) out.lines.set(j + 1, entry);
    }
  });
  return out;
}
