/**
 * Rule coverage and the parts of `validate-spec` that go beyond the official
 * CLI: every rule fires on its fixture, locations carry lines, the human
 * report merges double reports and gives fix hints, `--archive-check` fails
 * what archive would refuse.
 */
import assert from "node:assert/strict";
import { runValidate } from "../../../audit/openspec/mod.ts";
import {
  fixHint,
  formatHuman,
  mergeDuplicates,
} from "../../../audit/openspec/human.ts";
import type { Issue, ItemResult } from "../../../audit/openspec/types.ts";

const CORPUS =
  new URL("../../fixtures/openspec/corpus", import.meta.url).pathname;

interface JsonItem {
  id: string;
  type: string;
  valid: boolean;
  issues: Issue[];
}

async function corpus(
  extra: { strict?: boolean; archiveCheck?: boolean } = {},
): Promise<JsonItem[]> {
  const res = await runValidate({
    all: true,
    json: true,
    root: CORPUS,
    ...extra,
  });
  return (JSON.parse(res.stdout) as { items: JsonItem[] }).items;
}

const item = (items: JsonItem[], type: string, id: string) => {
  const found = items.find((i) => i.type === type && i.id === id);
  assert.ok(found, `${type}/${id} missing from the corpus run`);
  return found;
};

/** [fixture item, level, message pattern]: one fixture per implemented rule. */
const RULES: [string, Issue["level"], RegExp][] = [
  [
    "spec/empty-requirement-text",
    "ERROR",
    /^Requirement text cannot be empty$/,
  ],
  [
    "spec/empty-requirement-text",
    "ERROR",
    /^Requirement "Bodyless" must contain SHALL or MUST$/,
  ],
  [
    "change/unreadable-main",
    "ERROR",
    /^Could not read .*\/specs\/unreadable\/spec\.md to check the MODIFIED requirements against it \(EISDIR\)/,
  ],
  [
    "spec/no-purpose",
    "ERROR",
    /^Spec must have a Purpose section\. Missing required sections/,
  ],
  ["spec/empty-purpose", "ERROR", /^Spec must have a Purpose section/],
  ["spec/no-requirements", "ERROR", /^Spec must have a Requirements section/],
  [
    "spec/empty-requirements",
    "ERROR",
    /^Spec must have at least one requirement$/,
  ],
  [
    "spec/no-scenario",
    "ERROR",
    /^Requirement must have at least one scenario$/,
  ],
  [
    "spec/no-scenario",
    "WARNING",
    /^Requirement must have at least one scenario\. Scenarios must use level-4/,
  ],
  [
    "spec/scenario-level3",
    "ERROR",
    /^Requirement must have at least one scenario$/,
  ],
  ["spec/fenced", "ERROR", /^Requirement must have at least one scenario$/],
  [
    "spec/shall-header-only",
    "WARNING",
    /^Requirement "The system SHALL log every request" should contain SHALL or MUST in the requirement body/,
  ],
  [
    "spec/shall-header-only",
    "ERROR",
    /^Requirement "The system MUST rotate logs" must contain SHALL or MUST in the requirement body/,
  ],
  [
    "spec/shall-header-only",
    "WARNING",
    /^Requirement "No keyword anywhere" should contain SHALL or MUST \(RFC 2119/,
  ],
  ["spec/brief-purpose", "WARNING", /^Purpose section is too brief/],
  [
    "spec/placeholder-purpose",
    "WARNING",
    /^Purpose section is still a placeholder/,
  ],
  ["spec/todo-purpose", "WARNING", /^Purpose section is still a placeholder/],
  [
    "spec/delta-in-main",
    "ERROR",
    /^Main spec contains delta header "## ADDED Requirements"/,
  ],
  [
    "spec/req-outside",
    "ERROR",
    /appears outside the main ## Requirements section/,
  ],
  ["spec/dup-req", "ERROR", /duplicates the requirement declared on line 7/],
  ["spec/long-req", "INFO", /^Requirement text is very long/],
  [
    "change/missing-scenario",
    "ERROR",
    /^ADDED "Lockout" must include at least one scenario$/,
  ],
  [
    "change/empty-scenario",
    "ERROR",
    /must include at least one scenario \(a scenario header with no body/,
  ],
  [
    "change/scenario-level3",
    "INFO",
    /^Header "### Scenario: Five failures" in ADDED Requirements is not a "### Requirement:" header/,
  ],
  [
    "change/scenario-level3",
    "ERROR",
    /^ADDED "Lockout" must include at least one scenario/,
  ],
  [
    "change/shall-header-only",
    "WARNING",
    /^ADDED "The system SHALL lock accounts" should contain SHALL or MUST in the requirement body/,
  ],
  [
    "change/shall-header-only",
    "ERROR",
    /^ADDED "The system MUST notify the owner" must contain SHALL or MUST in the requirement body/,
  ],
  [
    "change/missing-text",
    "ERROR",
    /^ADDED "Lockout" is missing requirement text$/,
  ],
  ["change/dup-added", "ERROR", /^Duplicate requirement in ADDED: "Lockout"$/],
  [
    "change/cross-conflicts",
    "ERROR",
    /^Requirement present in both MODIFIED and REMOVED: "Login"$/,
  ],
  [
    "change/cross-conflicts",
    "ERROR",
    /^Requirement present in both MODIFIED and ADDED: "Logout"$/,
  ],
  [
    "change/cross-conflicts",
    "ERROR",
    /^Requirement present in both ADDED and REMOVED: "Logout"$/,
  ],
  [
    "change/renamed-conflicts",
    "ERROR",
    /^MODIFIED references old name from RENAMED\. Use new header for "Periodic charge"$/,
  ],
  [
    "change/renamed-conflicts",
    "ERROR",
    /^RENAMED TO collides with ADDED for "Invoice export"$/,
  ],
  [
    "change/renamed-conflicts",
    "ERROR",
    /^Requirement present in both RENAMED and REMOVED: "Monthly charge" \(REMOVED spells it "monthly {2}charge"\)$/,
  ],
  [
    "change/dup-renamed",
    "ERROR",
    /^Duplicate FROM in RENAMED: "Monthly charge"$/,
  ],
  [
    "change/dup-renamed",
    "ERROR",
    /^Duplicate TO in RENAMED: "Periodic charge"$/,
  ],
  [
    "change/unpaired-rename",
    "ERROR",
    /^RENAMED FROM: "Monthly charge" has no matching TO: line/,
  ],
  [
    "change/unpaired-rename",
    "ERROR",
    /^RENAMED TO: "Orphan target" has no matching FROM: line/,
  ],
  [
    "change/empty-section",
    "ERROR",
    /^Delta sections ## ADDED Requirements and ## REMOVED Requirements were found, but no requirement entries parsed/,
  ],
  ["change/no-delta-headers", "ERROR", /^No delta sections found/],
  [
    "change/no-delta-headers",
    "ERROR",
    /^Change must have at least one delta\. No deltas found/,
  ],
  [
    "change/orphan-requirement",
    "WARNING",
    /^Requirement "Above everything" is above the first "## " section/,
  ],
  [
    "change/orphan-requirement",
    "WARNING",
    /^Requirement "Under notes" is under "## Notes", which is not a delta section/,
  ],
  ["change/no-specs", "ERROR", /^Change must have at least one delta/],
  ["change/root-spec", "ERROR", /^Delta spec found at specs\/spec\.md/],
  [
    "change/unread-delta",
    "ERROR",
    /^Delta spec found at specs\/auth\.md\..* Move its requirements into specs\/auth\/spec\.md\.$/,
  ],
  [
    "change/skip-specs-ok",
    "INFO",
    /^skip_specs is set in \.openspec\.yaml: change declares no spec-level behavior changes/,
  ],
  [
    "change/skip-specs-conflict",
    "ERROR",
    /^skip_specs is set in \.openspec\.yaml but spec files exist under specs\//,
  ],
  [
    "change/skip-specs-invalid",
    "ERROR",
    /^skip_specs is set but \.openspec\.yaml is not valid change metadata.*\(skip_specs: /,
  ],
  ["change/tasks-no-checkbox", "WARNING", /^This change counts as 0 tasks/],
  [
    "change/tasks-numbering",
    "WARNING",
    /^Task "2\.1" is under group 1, but its leading number points to group 2/,
  ],
  [
    "change/tasks-numbering",
    "WARNING",
    /^Task ID "1\.1" is duplicated; it was first declared on line 2\.$/,
  ],
  [
    "change/scenario-loss",
    "ERROR",
    /^MODIFIED "Login" omits scenario\(s\) the current spec still has: "Bad password"/,
  ],
  [
    "change/archive-modify-missing",
    "INFO",
    /^Archive would refuse this delta: auth MODIFIED failed for header "### Requirement: Two factor" - not found$/,
  ],
  [
    "change/archive-added-exists",
    "INFO",
    /^Archive would refuse this delta: auth ADDED failed for header "### Requirement: Logout" - already exists$/,
  ],
  [
    "change/archive-added-near-miss",
    "INFO",
    /differs only in case or spacing; use MODIFIED with that exact header/,
  ],
  [
    "change/archive-new-capability-modified",
    "INFO",
    /payments: target spec does not exist; only ADDED requirements are allowed for new specs/,
  ],
  [
    "change/archive-rename-missing",
    "INFO",
    /billing RENAMED failed for header "### Requirement: Annual charge" - source not found$/,
  ],
  [
    "change/mobile",
    "ERROR",
    /^"mobile" is not a change: it is a folder wrapping openspec\/changes\/mobile\/refresh-token\//,
  ],
];

Deno.test("every implemented rule fires on its fixture, at its level", async () => {
  const items = await corpus();
  for (const [key, level, pattern] of RULES) {
    const [type, id] = key.split("/", 2) as [string, string];
    const issues = item(items, type, key.slice(type.length + 1)).issues;
    assert.ok(
      issues.some((i) => i.level === level && pattern.test(i.message)),
      `${key}: no ${level} matching ${pattern}; got ${
        JSON.stringify(issues.map((i) => [i.level, i.message.slice(0, 80)]))
      }`,
    );
    void id;
  }
});

Deno.test("valid fixtures pass, also under --strict", async () => {
  const items = await corpus({ strict: true });
  for (
    const key of [
      "change/add-valid",
      "change/modify-valid",
      "change/fenced-delta",
      "change/case-variant-sections",
      "change/nested-capability",
      "spec/auth",
      "spec/billing",
      "spec/platform/storage",
    ]
  ) {
    const [type] = key.split("/", 1);
    const found = item(items, type, key.slice(type.length + 1));
    assert.ok(found.valid, `${key}: ${JSON.stringify(found.issues)}`);
    assert.deepEqual(found.issues, [], key);
  }
});

Deno.test("--strict fails on warnings, not on INFO", async () => {
  const loose = await corpus();
  const strict = await corpus({ strict: true });
  assert.equal(item(loose, "spec", "brief-purpose").valid, true);
  assert.equal(item(strict, "spec", "brief-purpose").valid, false);
  assert.equal(item(strict, "change", "archive-modify-missing").valid, true);
});

Deno.test("--archive-check turns archive refusals into errors", async () => {
  const checked = await corpus({ archiveCheck: true });
  for (
    const id of [
      "archive-modify-missing",
      "archive-added-exists",
      "archive-new-capability-modified",
      "archive-rename-missing",
    ]
  ) {
    const found = item(checked, "change", id);
    assert.equal(found.valid, false, id);
    assert.ok(
      found.issues.some((i) =>
        i.level === "ERROR" &&
        i.message.startsWith("Archive would refuse this delta:")
      ),
      id,
    );
  }
  assert.equal(item(checked, "change", "modify-valid").valid, true);
  const refusal = item(checked, "change", "archive-modify-missing").issues[0];
  assert.equal(refusal.line, 2, "the refused MODIFIED header is on line 2");
});

Deno.test("issues with a location carry its line", async () => {
  // Whole-file or whole-change findings have no single line.
  const fileLevel =
    /^(Change must have at least one delta|No delta sections found|Delta spec found at|skip_specs is set|"[^"]+" is not a change|Spec must have a (Purpose|Requirements) section)/;
  const missing: string[] = [];
  for (const it of await corpus()) {
    for (const issue of it.issues) {
      if (!fileLevel.test(issue.message) && issue.line === undefined) {
        missing.push(`${it.type}/${it.id}: ${issue.message.slice(0, 70)}`);
      }
    }
  }
  assert.deepEqual(missing, []);
  const dup = item(await corpus(), "change", "dup-added").issues.find((i) =>
    i.message.startsWith("Duplicate")
  );
  assert.equal(dup?.line, 9, "the second Lockout header");
  const emptyPurpose = item(await corpus(), "spec", "empty-purpose").issues[0];
  assert.equal(
    emptyPurpose.line,
    3,
    "an empty ## Purpose points at its header",
  );
});

Deno.test("human output merges the double report and gives file:line and a fix", async () => {
  const spec = item(await corpus(), "spec", "no-scenario");
  assert.equal(
    spec.issues.filter((i) => /at least one scenario/.test(i.message)).length,
    2,
    "JSON keeps both for parity",
  );
  const res = await runValidate({ item: "no-scenario", root: CORPUS });
  assert.equal(res.exitCode, 1);
  const diagnostics = res.stdout.split("\n").filter((l) =>
    l.startsWith("openspec/")
  );
  assert.deepEqual(diagnostics, [
    "openspec/specs/no-scenario/spec.md:7: error: Requirement must have at least one scenario. " +
    "Scenarios must use level-4 headers. Convert bullet lists into:",
  ]);
  assert.match(res.stdout, /\n {2}fix: add "#### Scenario: <name>" \(four #\)/);
});

Deno.test("mergeDuplicates keeps distinct problems apart", () => {
  const a: Issue = {
    level: "ERROR",
    path: "requirements.0.scenarios",
    message: "Requirement must have at least one scenario",
    line: 3,
    file: "f",
  };
  const b: Issue = {
    ...a,
    level: "WARNING",
    path: "requirements[0].scenarios",
    message: "Requirement must have at least one scenario. More.",
  };
  const other: Issue = { ...a, path: "requirements.1.scenarios", line: 9 };
  const merged = mergeDuplicates([a, b, other]);
  assert.equal(merged.length, 2);
  assert.equal(merged[0].level, "ERROR");
  assert.equal(merged[0].message, b.message);
  const results: ItemResult[] = [{
    id: "x",
    type: "spec",
    valid: false,
    issues: [a, b],
    durationMs: 0,
  }];
  assert.equal(
    formatHuman(results, false).filter((l) => l.includes("error:")).length,
    1,
  );
});

Deno.test("bulk human output lists every item and the totals", async () => {
  const res = await runValidate({ all: true, root: CORPUS });
  assert.equal(res.exitCode, 1);
  assert.match(res.stdout, /^✓ change\/add-valid$/m);
  assert.match(res.stdout, /^✗ change\/missing-scenario$/m);
  // One stream, in order: an item's diagnostics follow its own line.
  const lines = res.stdout.split("\n");
  const at = lines.indexOf("✗ change/missing-scenario");
  assert.match(
    lines[at + 1],
    /^ {2}openspec\/changes\/missing-scenario\/specs\/auth\/spec\.md:2: error: /,
  );
  assert.match(lines[lines.length - 2], /^Totals: /);
  assert.match(res.stdout, /^Totals: \d+ passed, \d+ failed \(\d+ items\)$/m);
});

Deno.test("human notes flag headings CommonMark and OpenSpec read differently", async () => {
  const res = await runValidate({ item: "commonmark-drift", root: CORPUS });
  assert.equal(res.exitCode, 0, "notes never change the verdict");
  const file = "openspec/changes/commonmark-drift/specs/auth/spec.md";
  const notes = res.stdout.split("\n").filter((l) => l.includes(": note: "));
  assert.deepEqual(notes.map((l) => l.split(": note: ")[0]), [
    `${file}:9`,
    `${file}:13`,
    `${file}:16`,
  ]);
  assert.match(
    notes[0],
    /renders as a level-3 heading, but OpenSpec reads only/,
  );
  assert.match(notes[1], /does not render as a heading/);
  const json = await runValidate({
    item: "commonmark-drift",
    root: CORPUS,
    json: true,
  });
  assert.doesNotMatch(
    json.stdout,
    /note|renders as/,
    "JSON stays the official shape",
  );
  const clean = await runValidate({ item: "add-valid", root: CORPUS });
  assert.equal(
    clean.stdout,
    "Change 'add-valid' is valid\n",
    "agreeing files get no notes",
  );
});

Deno.test("every error and warning in the corpus comes with a fix hint", async () => {
  const missing = (await corpus()).flatMap((it) =>
    it.issues.filter((i) =>
      i.level !== "INFO" && fixHint(i.message) === undefined
    )
      .map((i) => `${it.type}/${it.id}: ${i.message.slice(0, 80)}`)
  );
  assert.deepEqual(missing, []);
  assert.equal(fixHint("something no rule says"), undefined);
});

Deno.test("--archived fails archived changes with unchecked tasks", async () => {
  const res = await runValidate({ archived: true, json: true, root: CORPUS });
  assert.equal(res.exitCode, 1);
  const items = (JSON.parse(res.stdout) as { items: JsonItem[] }).items;
  assert.deepEqual(items.map((i) => [i.id, i.valid]), [
    ["2026-01-10-done", true],
    ["2026-01-11-open", false],
    ["2026-01-12-no-tasks", true],
    ["2026-01-13-nested-tasks", false],
  ]);
  // `[~]` and ordered `1. [ ]` items count as open work, nested ones too.
  assert.equal(
    item(items, "change", "2026-01-11-open").issues[0].message,
    "3 incomplete tasks (1/4 completed)",
  );
});
