/**
 * The fixture corpus (tests/fixtures/normalize/corpus): every form of the
 * issue as positives and hard negatives in Python, TS, Markdown, YAML and
 * JSON. Expected findings are declared next to them (`expect: RULE`
 * comments, plus expected.json for JSON); the test prints precision and
 * recall and requires both to be 100%.
 */
import assert from "node:assert/strict";
import { checkPaths } from "../../../audit/normalize/mod.ts";

const FIXTURES = new URL("../../fixtures/normalize/", import.meta.url).pathname
  .replace(/\/$/, "");
const CORPUS = `${FIXTURES}/corpus`;

const EXPECT = /expect:\s*([a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)/;
const COMMENT_ONLY = /^\s*(?:#|\/\/|<!--|\/\*)/;

/** `path:line:rule` keys of the declared findings (a multiset). */
async function declared(): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of Deno.readDir(CORPUS)) {
    const rel = `corpus/${e.name}`;
    const lines = (await Deno.readTextFile(`${CORPUS}/${e.name}`)).split("\n");
    lines.forEach((line, i) => {
      const m = EXPECT.exec(line);
      if (!m) return;
      const target = COMMENT_ONLY.test(line.slice(0, m.index)) &&
          line.slice(0, m.index).replace(/#|\/\/|<!--|\/\*/g, "").trim() === ""
        ? i + 2
        : i + 1;
      for (const rule of m[1].split(",")) {
        keys.push(`${rel}:${target}:${rule.trim()}`);
      }
    });
  }
  const extra = JSON.parse(
    await Deno.readTextFile(`${FIXTURES}/expected.json`),
  );
  for (const [path, list] of Object.entries(extra)) {
    if (path.startsWith("$")) continue;
    for (
      const { line, rule } of list as Array<{ line: number; rule: string }>
    ) {
      keys.push(`${path}:${line}:${rule}`);
    }
  }
  return keys.sort();
}

Deno.test("fixture corpus: 100% recall and no false positive", async () => {
  const want = await declared();
  const report = await checkPaths({
    root: FIXTURES,
    paths: [CORPUS],
    config: null,
  });
  const got = report.findings.map((f) => `${f.path}:${f.line}:${f.rule}`)
    .sort();

  const pending = [...want];
  const falsePositives: string[] = [];
  for (const g of got) {
    const i = pending.indexOf(g);
    if (i >= 0) pending.splice(i, 1);
    else falsePositives.push(g);
  }
  const tp = got.length - falsePositives.length;
  const precision = got.length ? tp / got.length : 1;
  const recall = want.length ? tp / want.length : 1;
  console.log(
    `normalize-check corpus: ${want.length} expected, ${got.length} reported, ` +
      `precision ${(100 * precision).toFixed(1)}%, recall ${
        (100 * recall).toFixed(1)
      }% ` +
      `(${report.filesChecked} files)`,
  );
  // Per language: declared findings and files (hard negatives included).
  const langs = new Map<string, { files: number; expected: number }>();
  for await (const e of Deno.readDir(CORPUS)) {
    const ext = e.name.slice(e.name.lastIndexOf(".") + 1);
    const l = langs.get(ext) ?? { files: 0, expected: 0 };
    l.files++;
    l.expected += want.filter((w) => w.startsWith(`corpus/${e.name}:`)).length;
    langs.set(ext, l);
  }
  console.log(
    "  by type: " +
      [...langs].sort().map(([ext, l]) =>
        `${ext} ${l.files} files/${l.expected} expected`
      )
        .join(", "),
  );
  for (const f of falsePositives) {
    const full = report.findings.find((x) =>
      `${x.path}:${x.line}:${x.rule}` === f
    );
    console.log(`  false positive: ${f} ${full?.message ?? ""}`);
  }
  for (const m of pending) console.log(`  missed: ${m}`);
  assert.ok(want.length >= 60, `corpus declares only ${want.length} findings`);
  assert.deepEqual(pending, [], "missed findings");
  assert.deepEqual(falsePositives, [], "false positives");
});
