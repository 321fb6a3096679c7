/** The line grammar and delta parsing that every rule builds on. */
import assert from "node:assert/strict";
import {
  codeFenceMask,
  normalizeContent,
} from "../../../audit/openspec/lines.ts";
import {
  countScenarios,
  extractRequirementBody,
  normalizeRequirementName,
  parseDeltaSpec,
} from "../../../audit/openspec/requirements.ts";
import { globToRegExp } from "../../../audit/openspec/fs.ts";
import { archiveRefusal } from "../../../audit/openspec/archive.ts";

Deno.test("fences mask their own lines; an unclosed fence runs to the end", () => {
  assert.deepEqual(codeFenceMask(["a", "```", "### x", "```", "b"]), [
    false,
    true,
    true,
    true,
    false,
  ]);
  // A shorter or different closing fence does not close it.
  assert.deepEqual(codeFenceMask(["````", "```", "~~~~", "b"]), [
    true,
    true,
    true,
    true,
  ]);
  assert.equal(normalizeContent("\uFEFFa\r\nb\rc"), "a\nb\nc");
});

Deno.test("requirement names drop a closing # run but keep C#", () => {
  assert.equal(normalizeRequirementName("Foo ###"), "Foo");
  assert.equal(normalizeRequirementName("C#"), "C#");
  assert.equal(normalizeRequirementName("  Bar  "), "Bar");
});

Deno.test("requirement body skips fences and metadata unless only metadata", () => {
  assert.equal(
    extractRequirementBody([
      "**ID**: R1",
      "```",
      "SHALL",
      "```",
      "The system SHALL x",
      "#### Scenario: s",
    ]),
    "The system SHALL x",
  );
  assert.equal(
    extractRequirementBody(["**Constraint**: MUST x", ""]),
    "**Constraint**: MUST x",
  );
  assert.equal(extractRequirementBody(["", "#### Scenario: s", "text"]), "");
});

Deno.test("scenarios need a body and are not counted inside fences", () => {
  assert.equal(
    countScenarios(["#### Scenario: a", "- x", "#### Scenario: b", ""]),
    1,
  );
  assert.equal(countScenarios(["```", "#### Scenario: a", "- x", "```"]), 0);
});

Deno.test("delta parsing keeps file lines for every entry", () => {
  const plan = parseDeltaSpec([
    "## ADDED Requirements", // 1
    "### Requirement: A", // 2
    "The system SHALL a.", // 3
    "## Added Requirements", // 4  (case variant: merged)
    "### Requirement: B", // 5
    "## RENAMED Requirements", // 6
    "- FROM: `### Requirement: X`", // 7
    "- FROM: `### Requirement: Y`", // 8
    "- TO: `### Requirement: Z`", // 9
    "## REMOVED Requirements", // 10
    "* `### Requirement: Gone`", // 11
  ].join("\n"));
  assert.deepEqual(plan.added.map((b) => [b.name, b.line]), [["A", 2], [
    "B",
    5,
  ]]);
  assert.deepEqual(plan.renamed, [{ from: "Y", to: "Z", line: 8 }]);
  assert.deepEqual(plan.unpairedRenames, [{
    side: "FROM",
    name: "X",
    line: 7,
  }]);
  assert.deepEqual(plan.removed, [{ name: "Gone", line: 11 }]);
});

Deno.test("archive dry run: refusals and the early-synced no-ops", () => {
  const main =
    "## Requirements\n### Requirement: A\nThe system SHALL a.\n\n#### Scenario: s\n- x\n";
  const added = parseDeltaSpec(
    "## ADDED Requirements\n### Requirement: A\nThe system SHALL a.\n\n#### Scenario: s\n- x\n",
  );
  assert.equal(
    archiveRefusal(added, "cap", main),
    null,
    "identical ADDED is already applied",
  );
  const changed = parseDeltaSpec(
    "## ADDED Requirements\n### Requirement: A\nThe system SHALL b.\n\n#### Scenario: s\n- x\n",
  );
  assert.match(
    archiveRefusal(changed, "cap", main)!.message,
    /ADDED failed .* - already exists$/,
  );
  const modified = parseDeltaSpec(
    "## MODIFIED Requirements\n### Requirement: B\nThe system SHALL b.\n",
  );
  assert.match(
    archiveRefusal(modified, "cap", main)!.message,
    /MODIFIED failed .* - not found$/,
  );
  assert.match(
    archiveRefusal(modified, "cap", null)!.message,
    /target spec does not exist/,
  );
});

Deno.test("schema globs: *, **, ? and braces", () => {
  const re = globToRegExp("specs/**/*.md");
  assert.ok(re.test("specs/a/spec.md"));
  assert.ok(re.test("specs/spec.md"));
  assert.ok(!re.test("specs/a/spec.txt"));
  const braces = globToRegExp("{tasks,todo}.md");
  assert.ok(braces.test("tasks.md") && braces.test("todo.md"));
  assert.ok(!braces.test("tasks,todo.md"));
  assert.ok(
    globToRegExp("a,b?.md").test("a,bc.md"),
    "commas outside braces are literal",
  );
});
