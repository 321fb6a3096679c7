/**
 * The project's own OpenSpec: it validates under --strict, and every
 * scenario names a test that exists, so the spec cannot drift away from the
 * tests that cover it.
 */
import assert from "node:assert/strict";
import { runValidate } from "../../../audit/openspec/mod.ts";

const REPO = new URL("../../..", import.meta.url).pathname.replace(/\/$/, "");
const SPEC = `${REPO}/openspec/specs/stage2-ab-training/spec.md`;
const DELTA =
  `${REPO}/openspec/changes/add-stage2-ab-iterative-softctx-bboxonly/specs/stage2-ab-training/spec.md`;

interface Scenario {
  name: string;
  line: number;
  tests: { file: string; name: string }[];
}

/**
 * Scenarios and their `- **TEST** \`file\` — "name"` items. deno fmt wraps
 * long list items, so continuation lines are joined back first.
 */
function scenarios(text: string): Scenario[] {
  const out: Scenario[] = [];
  const items: { text: string; line: number }[] = [];
  text.split("\n").forEach((line, i) => {
    if (/^ {2}\S/.test(line) && items.length > 0) {
      items[items.length - 1].text += ` ${line.trim()}`;
    } else items.push({ text: line, line: i + 1 });
  });
  for (const { text: item, line } of items) {
    const head = item.match(/^#### Scenario: (.+)$/);
    if (head) out.push({ name: head[1], line, tests: [] });
    const test = item.match(/^- \*\*TEST\*\* `([^`]+)` — "(.+)"$/);
    if (test && out.length > 0) {
      out[out.length - 1].tests.push({ file: test[1], name: test[2] });
    }
  }
  return out;
}

Deno.test("the project's own specs pass validate-spec --all --strict", async () => {
  const res = await runValidate({
    all: true,
    strict: true,
    json: true,
    root: REPO,
  });
  const report = JSON.parse(res.stdout) as {
    items: { id: string; issues: unknown[] }[];
  };
  assert.equal(res.exitCode, 0, JSON.stringify(report.items, null, 1));
  const ids = report.items.map((i) => i.id).sort();
  assert.deepEqual(ids, [
    "add-stage2-ab-iterative-softctx-bboxonly",
    "stage2-ab-training",
  ]);
});

/** Scenarios that name no test, a missing file or a test the file lacks. */
async function testProblems(found: Scenario[]): Promise<string[]> {
  const problems: string[] = [];
  for (const s of found) {
    if (s.tests.length === 0) {
      problems.push(`spec.md:${s.line} "${s.name}" names no test`);
    }
    for (const t of s.tests) {
      let source: string;
      try {
        source = await Deno.readTextFile(`${REPO}/${t.file}`);
      } catch {
        problems.push(
          `spec.md:${s.line} "${s.name}": ${t.file} does not exist`,
        );
        continue;
      }
      // The name as a Deno.test title: quoted, right after `Deno.test(`.
      const title = new RegExp(
        `Deno\\.test\\(\\s*"${t.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`,
      );
      if (!title.test(source)) {
        problems.push(
          `spec.md:${s.line} "${s.name}": no test "${t.name}" in ${t.file}`,
        );
      }
    }
  }
  return problems;
}

Deno.test("every scenario of the capability spec names an existing test", async () => {
  const found = scenarios(await Deno.readTextFile(SPEC));
  assert.ok(found.length >= 40, `only ${found.length} scenarios parsed`);
  assert.deepEqual(await testProblems(found), []);
});

Deno.test("a scenario naming a missing test or file is caught", async () => {
  const text = [
    "#### Scenario: Renamed test",
    "- **WHEN** x",
    '- **TEST** `tests/audit/openspec/own_spec_test.ts` — "no such',
    '  test title"',
    "#### Scenario: Gone file",
    '- **TEST** `tests/nowhere_test.ts` — "anything"',
    "#### Scenario: Untested",
    "- **THEN** y",
  ].join("\n");
  assert.deepEqual(await testProblems(scenarios(text)), [
    'spec.md:1 "Renamed test": no test "no such test title" in tests/audit/openspec/own_spec_test.ts',
    'spec.md:5 "Gone file": tests/nowhere_test.ts does not exist',
    'spec.md:7 "Untested" names no test',
  ]);
});

Deno.test("the change's delta adds exactly the capability's requirements", async () => {
  // Identical blocks are what lets `openspec archive` treat the change as
  // already applied instead of refusing ADDED for existing requirements.
  const blocks = (text: string) =>
    text.slice(text.indexOf("### Requirement:")).trim();
  assert.equal(
    blocks(await Deno.readTextFile(DELTA)),
    blocks(await Deno.readTextFile(SPEC)),
  );
});
