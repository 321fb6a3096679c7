/**
 * Human output: `file:line`, level, message and a fix hint, one diagnostic
 * per problem. The official JSON reports some problems twice (a spec
 * requirement without scenarios is both a schema ERROR and a WARNING); those
 * are merged here and kept apart in `--json` for parity.
 */
import type { Issue, ItemResult, Level } from "./types.ts";

const RANK: Record<Level, number> = { ERROR: 3, WARNING: 2, INFO: 1 };

const HINTS: [RegExp, string][] = [
  [
    /^Could not read .* to check the MODIFIED requirements/,
    "make the main spec a readable file (archive reads it too)",
  ],
  [
    /^Requirement text cannot be empty$/,
    'name the requirement ("### Requirement: <name>") and put a SHALL/MUST sentence under it',
  ],
  [
    /^\d+ incomplete tasks? \(/,
    "check off the finished tasks (- [x]) or move the change back out of the archive",
  ],
  [
    /^could not read task file$/,
    "fix the file's permissions so the tasks can be counted",
  ],
  [
    /must (include|have) at least one scenario/,
    'add "#### Scenario: <name>" (four #) under the requirement, followed by "- **WHEN** ..." and "- **THEN** ..." lines',
  ],
  [
    /contain SHALL or MUST|is missing requirement text/,
    'put a sentence with SHALL or MUST on the line right after the "### Requirement:" header',
  ],
  [
    /^Duplicate (requirement|FROM|TO)/,
    "keep one entry per requirement name in each section; merge or rename the duplicates",
  ],
  [
    /both MODIFIED and REMOVED/,
    "a requirement is either modified or removed: drop it from one of the two sections",
  ],
  [
    /both MODIFIED and ADDED/,
    "ADDED is for new requirements: keep it under MODIFIED if the main spec has it, else under ADDED only",
  ],
  [
    /both ADDED and REMOVED/,
    "drop it from one of the two sections (to replace a requirement, use MODIFIED)",
  ],
  [
    /both RENAMED and REMOVED/,
    "either rename the requirement or remove it, not both",
  ],
  [
    /references old name from RENAMED/,
    "in MODIFIED, use the new name from the RENAMED TO: line",
  ],
  [
    /collides with ADDED/,
    "choose a RENAMED TO: name that no ADDED requirement uses",
  ],
  [
    /^RENAMED (FROM|TO):/,
    'write "- FROM: `### Requirement: Old`" immediately followed by "- TO: `### Requirement: New`"',
  ],
  [
    /which is not a delta section/,
    'move the block under "## ADDED Requirements" (or MODIFIED/REMOVED/RENAMED)',
  ],
  [
    /No delta sections found/,
    'start the file with "## ADDED Requirements" (or MODIFIED/REMOVED/RENAMED), or move notes out of specs/',
  ],
  [
    /no requirement entries parsed/,
    'add "### Requirement: <name>" blocks under each delta section (REMOVED may list "- `### Requirement: <name>`")',
  ],
  [
    /^Change must have at least one delta/,
    "create specs/<capability>/spec.md in the change with a delta section, or set skip_specs: true in its .openspec.yaml",
  ],
  [
    /^Spec must have a (Purpose|Requirements) section/,
    'add "## Purpose" with a sentence or two and "## Requirements" with "### Requirement:" blocks',
  ],
  [
    /^Spec must have at least one requirement/,
    'add a "### Requirement: <name>" block under "## Requirements"',
  ],
  [
    /^Purpose section is too brief/,
    'write at least 50 characters under "## Purpose" on what the capability is for',
  ],
  [
    /^Purpose section is still a placeholder/,
    'replace the "## Purpose" text with what the capability is for',
  ],
  [
    /^Archive would refuse this delta/,
    "make MODIFIED/REMOVED/RENAMED name requirements that exist in openspec/specs/<capability>/spec.md exactly, and ADDED name new ones",
  ],
  [
    /is not a "### Requirement:" header|is missing a requirement name/,
    'rename the header to "### Requirement: <name>" or move it out of the delta section',
  ],
  [/counts as 0 tasks/, 'write each task as "- [ ] 1.1 Description"'],
  [
    /^Task (ID )?"/,
    'renumber the task so its first number matches its "## N." group and every id is unique',
  ],
  [/^Delta spec found at/, "move the file to specs/<capability>/spec.md"],
  [
    /^Main spec contains delta header/,
    "apply the delta: move its requirements under ## Requirements and delete the delta header",
  ],
  [
    /appears outside the main ## Requirements/,
    'move the requirement under "## Requirements"',
  ],
  [
    /duplicates the requirement declared on line/,
    "merge the two requirement blocks or rename one",
  ],
  [/omits scenario\(s\)/, "copy the omitted scenarios into the MODIFIED block"],
  [/^Requirement text is very long/, "split the requirement into smaller ones"],
  [
    /is not a change: it is a folder wrapping/,
    "move each nested change directly under openspec/changes/ with a flat name",
  ],
  [
    /^skip_specs is set in \.openspec\.yaml but/,
    "remove skip_specs from .openspec.yaml or delete the files under specs/",
  ],
  [
    /^skip_specs is set but/,
    "fix .openspec.yaml (for example `schema: spec-driven` and `skip_specs: true`)",
  ],
];

export function fixHint(message: string): string | undefined {
  return HINTS.find(([re]) => re.test(message))?.[1];
}

/** One problem reported twice (same place, same first sentence) becomes one. */
export function mergeDuplicates(issues: Issue[]): Issue[] {
  const out: Issue[] = [];
  const byKey = new Map<string, number>();
  for (const issue of issues) {
    const path = issue.path.replace(/\.(\d+)(\.|$)/g, "[$1]$2");
    const key = `${issue.file}\0${issue.line}\0${path}\0${
      issue.message.split(". ")[0]
    }`;
    const at = byKey.get(key);
    if (at === undefined) {
      byKey.set(key, out.length);
      out.push(issue);
      continue;
    }
    const prev = out[at];
    out[at] = {
      ...prev,
      level: RANK[issue.level] > RANK[prev.level] ? issue.level : prev.level,
      message: issue.message.length > prev.message.length
        ? issue.message
        : prev.message,
    };
  }
  return out;
}

export function formatIssue(issue: Issue, indent = ""): string {
  const where = issue.file
    ? `${issue.file}${issue.line ? `:${issue.line}` : ""}`
    : issue.path;
  const lines = [
    `${indent}${where}: ${issue.level.toLowerCase()}: ${issue.message}`,
  ];
  const hint = fixHint(issue.message);
  if (hint) lines.push(`${indent}  fix: ${hint}`);
  return lines.join("\n");
}

/**
 * Human report of one or many items, in reading order on one stream (the
 * official CLI splits it over stdout and stderr, which interleave badly).
 * Diagnostics and notes of an item are sorted by file and line.
 */
export function formatHuman(results: ItemResult[], single: boolean): string[] {
  const lines: string[] = [];
  const indent = single ? "" : "  ";
  for (const r of results) {
    lines.push(
      single
        ? `${r.type === "change" ? "Change" : "Specification"} '${r.id}' ${
          r.valid ? "is valid" : "has issues"
        }`
        : `${r.valid ? "✓" : "✗"} ${r.type}/${r.id}`,
    );
    const entries = [
      ...mergeDuplicates(r.issues).map((issue) => ({
        file: issue.file ?? "",
        line: issue.line ?? 0,
        text: formatIssue(issue, indent),
      })),
      ...(r.notes ?? []).map((n) => ({
        file: n.file,
        line: n.line,
        text:
          `${indent}${n.file}:${n.line}: note: ${n.message}\n${indent}  fix: ${n.fix}`,
      })),
    ];
    // Stable: issues without a line keep their order ahead of located ones.
    entries.sort((
      a,
      b,
    ) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
    for (const e of entries) lines.push(e.text);
  }
  if (!single) {
    const passed = results.filter((r) => r.valid).length;
    lines.push(
      `Totals: ${passed} passed, ${
        results.length - passed
      } failed (${results.length} items)`,
    );
  }
  return lines;
}
