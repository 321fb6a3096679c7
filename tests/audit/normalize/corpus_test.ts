/**
 * The fixture corpus (tests/fixtures/normalize/corpus): every form of the
 * first issue as positives and hard negatives in Python, TS, Markdown, YAML
 * and JSON, written to be caught (short files, one form per line). Expected
 * findings are declared next to them (`expect: RULE` comments, plus
 * expected.json for JSON); the test requires 100% precision and recall.
 * The realistic corpus with the noise of real repositories is
 * research_corpus_test.ts.
 */
import assert from "node:assert/strict";
import { checkPaths } from "../../../audit/normalize/mod.ts";
import { inlineLabels, pct, ratio, score, sidecarLabels } from "./_labels.ts";

const FIXTURES = new URL("../../fixtures/normalize/", import.meta.url).pathname
  .replace(/\/$/, "");
const CORPUS = `${FIXTURES}/corpus`;

Deno.test("fixture corpus: 100% recall and no false positive", async () => {
  const want = [
    ...await inlineLabels(CORPUS, "corpus/"),
    ...await sidecarLabels(`${FIXTURES}/expected.json`),
  ];
  const report = await checkPaths({
    root: FIXTURES,
    paths: [CORPUS],
    config: null,
  });
  const s = score(want, report.findings);
  const tp = s.truePositives.length;
  console.log(
    `normalize-check corpus: ${want.length} expected, ${report.findings.length} reported, ` +
      `precision ${pct(ratio(tp, report.findings.length))}, recall ${
        pct(ratio(tp, want.length))
      } (${report.filesChecked} files)`,
  );
  for (const f of s.falsePositives) console.log(`  false positive: ${f}`);
  for (const m of s.missed) console.log(`  missed: ${m}`);
  assert.ok(want.length >= 60, `corpus declares only ${want.length} findings`);
  assert.deepEqual(s.missed, [], "missed findings");
  assert.deepEqual(s.falsePositives, [], "false positives");
});
