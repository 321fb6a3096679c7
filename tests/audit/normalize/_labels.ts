/**
 * Labelled corpora for normalize-check: expected findings declared next to
 * the code (`expect: RULE[, RULE]` comments: on a line with code they name
 * that line, alone on a line they name the next one) or, for files that
 * cannot carry comments (JSON), in a sidecar `{path: {line: [rules]}}`.
 * Scoring is by `path:line:rule`, as a multiset.
 */
import type { Finding } from "../../../audit/normalize/mod.ts";

const EXPECT = /expect:\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)/;
const COMMENT_ONLY = /^\s*(?:#|\/\/|<!--|\/\*)/;

/** Files under `dir`, relative to it, sorted. */
export async function corpusFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (sub: string) => {
    for await (const e of Deno.readDir(`${dir}/${sub}`)) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await visit(rel);
      else if (e.isFile) out.push(rel);
    }
  };
  await visit("");
  return out.sort();
}

/** `path:line:rule` keys declared inline in `dir` (paths prefixed by `prefix`). */
export async function inlineLabels(
  dir: string,
  prefix = "",
): Promise<string[]> {
  const keys: string[] = [];
  for (const rel of await corpusFiles(dir)) {
    const lines = (await Deno.readTextFile(`${dir}/${rel}`)).split("\n");
    lines.forEach((line, i) => {
      const m = EXPECT.exec(line);
      if (!m) return;
      const before = line.slice(0, m.index);
      const alone = COMMENT_ONLY.test(before) &&
        before.replace(/#|\/\/|<!--|\/\*/g, "").trim() === "";
      for (const rule of m[1].split(",")) {
        keys.push(`${prefix}${rel}:${alone ? i + 2 : i + 1}:${rule.trim()}`);
      }
    });
  }
  return keys;
}

/** Keys of a sidecar file: `{"$comment": ..., path: {line: [rules]} | [{line, rule}]}`. */
export async function sidecarLabels(file: string): Promise<string[]> {
  const raw = JSON.parse(await Deno.readTextFile(file)) as Record<
    string,
    unknown
  >;
  const keys: string[] = [];
  for (const [path, v] of Object.entries(raw)) {
    if (path.startsWith("$")) continue;
    if (Array.isArray(v)) {
      for (const { line, rule } of v as Array<{ line: number; rule: string }>) {
        keys.push(`${path}:${line}:${rule}`);
      }
    } else {
      for (
        const [line, rules] of Object.entries(v as Record<string, string[]>)
      ) {
        for (const rule of rules) keys.push(`${path}:${line}:${rule}`);
      }
    }
  }
  return keys;
}

export interface Score {
  expected: string[];
  truePositives: string[];
  falsePositives: string[];
  missed: string[];
}

/** Match reported findings against expected keys (multiset). */
export function score(expected: string[], findings: Finding[]): Score {
  const pending = [...expected].sort();
  const truePositives: string[] = [];
  const falsePositives: string[] = [];
  for (const f of findings) {
    const key = `${f.path}:${f.line}:${f.rule}`;
    const i = pending.indexOf(key);
    if (i >= 0) {
      pending.splice(i, 1);
      truePositives.push(key);
    } else falsePositives.push(key);
  }
  return { expected, truePositives, falsePositives, missed: pending };
}

export const ratio = (a: number, b: number) => (b ? a / b : 1);
export const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
