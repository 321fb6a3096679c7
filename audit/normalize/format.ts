/** Output formats of normalize-check: text, JSON and GitHub annotations. */
import type { CheckReport } from "./check.ts";
import type { Finding } from "./types.ts";

export type OutputFormat = "text" | "json" | "github";
export const FORMATS: OutputFormat[] = ["text", "json", "github"];

/** JSON: a list of findings (`path` relative to the root). */
export function formatJson(findings: Finding[]): string {
  return JSON.stringify(
    findings.map((f) => ({
      path: f.path,
      line: f.line,
      column: f.column,
      rule: f.rule,
      message: f.message,
      snippet: f.snippet,
      fix: f.fix,
    })),
    null,
    2,
  ) + "\n";
}

/** `path:line:col: rule: message` plus the source line and the fix hint. */
export function formatText(findings: Finding[]): string {
  return findings.map((f) =>
    `${f.path}:${f.line}:${f.column}: ${f.rule}: ${f.message}\n` +
    `    ${f.snippet}\n    fix: ${f.fix}\n`
  ).join("");
}

/** Escape per GitHub's workflow-command rules. */
function ghData(s: string): string {
  return s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}
function ghProp(s: string): string {
  return ghData(s).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

/** GitHub Actions `::error` annotations, one per finding. */
export function formatGithub(findings: Finding[]): string {
  return findings.map((f) =>
    `::error file=${ghProp(f.path)},line=${f.line},col=${f.column},title=${
      ghProp(`normalize-check ${f.rule}`)
    }::${ghData(`${f.message}. Fix: ${f.fix}`)}\n`
  ).join("");
}

export function formatFindings(
  findings: Finding[],
  format: OutputFormat,
): string {
  return format === "json"
    ? formatJson(findings)
    : format === "github"
    ? formatGithub(findings)
    : formatText(findings);
}

/** One-line summary for stderr. */
export function summary(r: CheckReport): string {
  const files = new Set(r.findings.map((f) => f.path)).size;
  const n = r.findings.length;
  const binary = r.skipped.filter((s) => s.kind === "binary").length;
  const badJson = r.skipped.length - binary;
  return `normalize-check: ${n} finding${n === 1 ? "" : "s"}` +
    (n ? ` in ${files} file${files === 1 ? "" : "s"}` : "") +
    ` (${r.filesChecked} files checked, ${r.filesParsed} parsed` +
    (binary ? `, ${binary} binary skipped` : "") +
    (badJson ? `, ${badJson} not valid JSON` : "") + ")";
}

/**
 * Lines for stderr whatever the verbosity: named folders of which nothing
 * was left to check, so an ignore rule never silently turns a check into
 * a pass.
 */
export function warnings(r: CheckReport): string[] {
  return r.empty.map((p) =>
    `normalize-check: warning: nothing checked in ${p}: ignore rules or excludes left out every file (--verbose lists them)`
  );
}

/** `--verbose`: config, excludes, ignored files and suppressed findings. */
export function verboseLines(r: CheckReport): string[] {
  const out: string[] = [];
  out.push(`config: ${r.configPath ?? "(none)"}`);
  for (const o of r.overridden) {
    out.push(
      `checked although ignored: ${o.path} (named explicitly; rule '${o.rule}' in ${o.source})`,
    );
  }
  for (const g of r.gitignored) {
    out.push(`gitignored: ${g.path} (rule '${g.rule}' in ${g.source})`);
  }
  for (const e of r.excluded) {
    out.push(`excluded: ${e.path} (config pattern '${e.pattern}')`);
  }
  for (const s of r.skipped) {
    out.push(
      s.kind === "binary"
        ? `skipped: ${s.path} (binary: ${s.detail})`
        : `not valid JSON: ${s.path} (${s.detail}); checked leniently`,
    );
  }
  for (const p of r.special) out.push(`skipped: ${p} (not a regular file)`);
  for (const m of r.minified) out.push(`skipped: ${m} (minified bundle)`);
  for (const u of r.unsupported) {
    out.push(`skipped: ${u} (no analyzer for this file type)`);
  }
  for (const f of r.ignoredFiles) {
    out.push(
      `ignored file: ${f.path} (normalize-check: ignore-file at line ${f.commentLine}${
        f.reason ? `: ${f.reason}` : ""
      })`,
    );
  }
  for (const s of r.suppressed) {
    const f = s.finding;
    out.push(
      `suppressed: ${f.path}:${f.line}:${f.column}: ${f.rule} (comment at line ${s.commentLine}${
        s.reason ? `: ${s.reason}` : ""
      })`,
    );
  }
  return out;
}
