/**
 * The research-repository corpus (tests/fixtures/normalize/research): a
 * made-up detection project as a new user would point the checker at —
 * Python package, scripts and tests, a TS/JS viewer, Markdown docs and
 * OpenSpec changes, YAML configs and CI, JSON artifacts — with leftover
 * 1000-based bin normalizations among a few thousand lines of code that uses
 * 1000 for other reasons (timeouts, batch and shard sizes, ms conversions,
 * step counts, vocabulary sizes, ids and paths) and prose that forbids,
 * replaces or quotes the old rule. Every expected finding is labelled (see
 * _labels.ts); everything else is a negative.
 *
 * Prints precision and recall per language and recall per rule; requires
 * 100% recall on every rule and >= 0.95 precision overall.
 */
import assert from "node:assert/strict";
import { checkPaths, type Finding } from "../../../audit/normalize/mod.ts";
import {
  corpusFiles,
  inlineLabels,
  pct,
  ratio,
  score,
  sidecarLabels,
} from "./_labels.ts";

const CORPUS = new URL("../../fixtures/normalize/research", import.meta.url)
  .pathname;

const LANGUAGE: Record<string, string> = {
  py: "python",
  ts: "ts/js",
  tsx: "ts/js",
  js: "ts/js",
  md: "markdown",
  yaml: "yaml",
  yml: "yaml",
  json: "json",
};
const langOf = (path: string) =>
  LANGUAGE[path.slice(path.lastIndexOf(".") + 1)] ?? "other";

Deno.test("research corpus: recall 100% per rule, precision >= 0.95, by language", async () => {
  const expected = [
    ...await inlineLabels(CORPUS),
    ...await sidecarLabels(`${CORPUS}/labels.json`),
  ];
  const report = await checkPaths({ root: CORPUS, config: null });
  const all = score(expected, report.findings);

  // Per language: files, lines, lines that mention 1000, and the scores.
  const rows: string[] = [];
  const byLang = new Map<
    string,
    { files: number; lines: number; hot: number }
  >();
  for (const rel of await corpusFiles(CORPUS)) {
    const text = await Deno.readTextFile(`${CORPUS}/${rel}`);
    const l = byLang.get(langOf(rel)) ?? { files: 0, lines: 0, hot: 0 };
    l.files++;
    const lines = text.split("\n");
    l.lines += lines.length;
    l.hot += lines.filter((x) => /1_?000|1e3/.test(x)).length;
    byLang.set(langOf(rel), l);
  }
  const inLang = (lang: string, keys: string[]) =>
    keys.filter((k) => langOf(k.slice(0, k.indexOf(":"))) === lang);
  rows.push(
    "language  files lines lines-with-1000 expected reported  TP  FP  FN precision recall",
  );
  for (const [lang, l] of [...byLang].sort()) {
    const tp = inLang(lang, all.truePositives).length;
    const fp = inLang(lang, all.falsePositives).length;
    const fn = inLang(lang, all.missed).length;
    rows.push(
      `${lang.padEnd(9)} ${String(l.files).padStart(5)} ${
        String(l.lines).padStart(5)
      } ${String(l.hot).padStart(15)} ${
        String(inLang(lang, expected).length).padStart(8)
      } ${String(tp + fp).padStart(8)} ${String(tp).padStart(3)} ${
        String(fp).padStart(3)
      } ${String(fn).padStart(3)} ${pct(ratio(tp, tp + fp)).padStart(9)} ${
        pct(ratio(tp, tp + fn)).padStart(6)
      }`,
    );
  }
  const tp = all.truePositives.length;
  const fp = all.falsePositives.length;
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, expected.length);
  rows.push(
    `overall: ${expected.length} expected, ${tp + fp} reported, precision ${
      pct(precision)
    }, recall ${pct(recall)}`,
  );
  // Recall per rule (the true-positive classes).
  const rules = [
    ...new Set(expected.map((k) => k.slice(k.lastIndexOf(":") + 1))),
  ]
    .sort();
  const perRule = rules.map((r) => {
    const want = expected.filter((k) => k.endsWith(`:${r}`)).length;
    const got = all.truePositives.filter((k) => k.endsWith(`:${r}`)).length;
    return { r, want, got };
  });
  rows.push(
    "recall by rule: " +
      perRule.map(({ r, want, got }) => `${r} ${got}/${want}`).join(", "),
  );
  const show = (k: string) => {
    const f = report.findings.find((x: Finding) =>
      `${x.path}:${x.line}:${x.rule}` === k
    );
    return f ? `${k}  ${f.snippet}` : k;
  };
  for (const k of all.falsePositives) rows.push(`  false positive: ${show(k)}`);
  for (const k of all.missed) rows.push(`  missed: ${k}`);
  console.log("normalize-check research corpus\n" + rows.join("\n"));

  assert.ok(expected.length >= 50, `only ${expected.length} labels`);
  for (const { r, want, got } of perRule) {
    assert.equal(got, want, `recall of ${r}: ${got}/${want}`);
  }
  assert.ok(precision >= 0.95, `precision ${pct(precision)} < 95%`);
});
