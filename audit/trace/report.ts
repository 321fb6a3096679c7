/** Renders an audit report for people (default) or machines (`--json`). */
import type { AuditReport } from "./mod.ts";

/** Trace path shown in violation lines: the file name, as `trace.jsonl:LINE`. */
function shortName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

export function formatHuman(r: AuditReport): string {
  const out: string[] = [];
  out.push(
    `audit ${r.trace} (${r.variant}, ${r.level} trace): ${r.records.forwards} forwards, ${r.records.steps} steps${
      r.records.resumes ? `, ${r.records.resumes} resume(s)` : ""
    }`,
  );
  if (r.expectSource) out.push(`config expectations from ${r.expectSource}`);
  const width = Math.max(...r.invariants.map((i) => i.name.length));
  for (const i of r.invariants) {
    const verdict = i.violations > 0 ? "FAIL" : "PASS";
    const counts = i.violations > 0
      ? `${i.violations} of ${i.checked} violate`
      : i.checked === 0
      ? "0 checked (not applicable to this run)"
      : `${i.checked} checked`;
    out.push(`${verdict} ${i.name.padEnd(width)}  ${counts}`);
  }
  if (r.violations.length > 0) {
    out.push("");
    const file = shortName(r.trace);
    for (const v of r.violations) {
      out.push(`${file}:${v.line} ${v.invariant}: ${v.message}`);
    }
  }
  const failed = r.invariants.filter((i) => i.violations > 0).length;
  out.push(
    r.ok
      ? `PASS: all ${r.invariants.length} invariants hold`
      : `${r.verdict}: ${r.violations.length} violation(s) of ${failed} invariant(s)${
        r.verdict === "INCOMPLETE"
          ? " (the run did not finish, or its trace, steps or config are missing)"
          : ""
      }`,
  );
  return out.join("\n");
}

export function formatJson(r: AuditReport): string {
  return JSON.stringify(r, null, 2);
}
