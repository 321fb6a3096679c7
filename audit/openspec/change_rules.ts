/** Rules for a change (`openspec/changes/<id>/`): delta specs, metadata, tasks. */
import { archiveRefusal } from "./archive.ts";
import {
  discoverSpecFiles,
  hasAnyFileUnder,
  hasOwnFile,
  isFile,
  otherMarkdownFiles,
  subdirectories,
} from "./fs.ts";
import {
  containsShallOrMust,
  countEmptyScenarios,
  countScenarios,
  type DeltaPlan,
  describeScenarioBalance,
  diffScenarioNames,
  extractRequirementsSection,
  foldRequirementName,
  normalizeRequirementName,
  parseDeltaSpec,
  type RenamePair,
  type RequirementBlock,
} from "./requirements.ts";
import {
  hasSchemaOutput,
  METADATA_FILENAME,
  readSkipSpecsMarker,
  trackedTaskFiles,
  usesBuiltInSpecDriven,
} from "./schema.ts";
import { missingShallOrMust, requirementText } from "./spec_rules.ts";
import {
  findMissingCheckboxIssues,
  findTaskNumberingIssues,
  type TaskDocument,
} from "./tasks.ts";
import { type Issue, makeReport, type Report } from "./types.ts";

export const CHANGE_MSG = {
  NO_DELTAS: "Change must have at least one delta",
  GUIDE_NO_DELTAS:
    'No deltas found. Ensure your change has a specs/ directory with capability folders (e.g. specs/http-server/spec.md) containing .md files that use delta headers (## ADDED/MODIFIED/REMOVED/RENAMED Requirements) and that each requirement includes at least one "#### Scenario:" block. If this change intentionally modifies no specs (pure refactor, tooling, docs), set "skip_specs: true" in the change\'s .openspec.yaml instead. Tip: run "openspec change show <change-id> --json --deltas-only" to inspect parsed deltas.',
  SKIP_SPECS_CONFLICT:
    "skip_specs is set in .openspec.yaml but spec files exist under specs/. Remove skip_specs or delete the delta spec files",
  SKIP_SPECS_ACCEPTED:
    "skip_specs is set in .openspec.yaml: change declares no spec-level behavior changes, zero deltas accepted",
  SKIP_SPECS_INVALID:
    "skip_specs is set but .openspec.yaml is not valid change metadata, so the marker is not honored. Fix the metadata",
  NESTED_MARKER: "is not a change: it is a folder wrapping",
};

export interface ChangeContext {
  /** Absolute project root (the folder holding `openspec/`). */
  root: string;
  id: string;
  strict: boolean;
  /** Also report archive refusals as errors (`--archive-check`). */
  archiveCheck?: boolean;
  /** Cache of main spec contents by capability id (shared across a bulk run). */
  mainSpecs?: Map<string, string | null>;
}

const ROOT_MARKERS = [
  METADATA_FILENAME,
  "proposal.md",
  "tasks.md",
  "design.md",
];

function looksLikeChange(dir: string, root: string): boolean {
  if (ROOT_MARKERS.some((m) => isFile(`${dir}/${m}`))) return true;
  if (hasAnyFileUnder(`${dir}/specs`)) return true;
  return hasSchemaOutput(dir, root);
}

/** A folder under changes/ that only wraps nested change folders. */
export function nestedChangeIssue(root: string, id: string): Issue | undefined {
  const changesDir = `${root}/openspec/changes`;
  const dir = `${changesDir}/${id}`;
  if (id === "archive" || id.startsWith(".")) return undefined;
  if (looksLikeChange(dir, root) || hasOwnFile(dir)) return undefined;
  const nested: string[] = [];
  const collect = (d: string, prefix: string, depth: number) => {
    if (depth > 3) return;
    for (const child of subdirectories(d)) {
      const childId = `${prefix}/${child}`;
      if (looksLikeChange(`${d}/${child}`, root)) nested.push(childId);
      else collect(`${d}/${child}`, childId, depth + 1);
    }
  };
  collect(dir, id, 1);
  if (nested.length === 0) return undefined;
  nested.sort();
  const list = nested.map((n) => `openspec/changes/${n}/`).join(", ");
  return {
    level: "ERROR",
    path: "file",
    file: `openspec/changes/${id}`,
    message: `"${id}" ${CHANGE_MSG.NESTED_MARKER} ${list}. ` +
      "A change must be a directory directly under openspec/changes/, so those " +
      "nested directories are invisible to OpenSpec while the folder around them " +
      "is reported as a change. Nested paths are supported under openspec/specs/ " +
      `only. Rename each nested change to a flat name (for example "${
        nested[0].split("/").join("-")
      }").`,
  };
}

/** File text, or null when it is absent or cannot be read (delta specs: upstream skips those). */
function readMaybe(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

interface MainSpec {
  content: string | null;
  /** errno-style code when the file exists but cannot be read. */
  unreadable?: string;
}

function readMain(path: string): MainSpec {
  try {
    return { content: Deno.readTextFileSync(path) };
  } catch (e) {
    if (
      e instanceof Deno.errors.NotFound ||
      e instanceof Deno.errors.NotADirectory
    ) {
      return { content: null };
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      return { content: null, unreadable: "EACCES" };
    }
    if (e instanceof Deno.errors.IsADirectory) {
      return { content: null, unreadable: "EISDIR" };
    }
    return { content: null, unreadable: "EIO" };
  }
}

function mainSpec(
  ctx: ChangeContext,
  specId: string,
): MainSpec & { path: string } {
  const path = `${ctx.root}/openspec/specs/${specId}/spec.md`;
  const cached = ctx.mainSpecs?.get(specId);
  if (cached !== undefined) return { content: cached, path };
  const main = readMain(path);
  // Only readable or absent files are cached; an unreadable one is re-reported.
  if (!main.unreadable) ctx.mainSpecs?.set(specId, main.content);
  return { ...main, path };
}

/** ADDED/MODIFIED block checks: duplicates, SHALL/MUST text, scenarios. */
function checkBlocks(
  kind: "ADDED" | "MODIFIED",
  blocks: RequirementBlock[],
  names: Set<string>,
  issue: (i: Omit<Issue, "path" | "file">) => void,
): void {
  for (const b of blocks) {
    const key = normalizeRequirementName(b.name);
    if (names.has(key)) {
      issue({
        level: "ERROR",
        line: b.line,
        message: `Duplicate requirement in ${kind}: "${b.name}"`,
      });
    } else names.add(key);
    const text = requirementText(b.raw);
    if (!text) {
      issue({
        level: "ERROR",
        line: b.line,
        message: containsShallOrMust(b.name)
          ? missingShallOrMust(`${kind} "${b.name}"`, b.name, false)
          : `${kind} "${b.name}" is missing requirement text`,
      });
    } else if (!containsShallOrMust(text)) {
      issue({
        level: "WARNING",
        line: b.line,
        message: missingShallOrMust(`${kind} "${b.name}"`, b.name, true),
      });
    }
    const body = b.raw.split("\n").slice(1);
    if (countScenarios(body) < 1) {
      const hint = countEmptyScenarios(body) > 0
        ? ' (a scenario header with no body under it does not count; add its steps, e.g. "- **WHEN** ..." and "- **THEN** ...")'
        : "";
      issue({
        level: "ERROR",
        line: b.line,
        message:
          `${kind} "${b.name}" must include at least one scenario${hint}`,
      });
    }
  }
}

/** MODIFIED blocks that drop scenarios the main spec still has. */
function scenarioLoss(
  modified: RequirementBlock[],
  renamed: RenamePair[],
  main: MainSpec & { path: string },
): Omit<Issue, "path" | "file">[] {
  // Archive aborts on a main spec that exists but cannot be read; so does this.
  if (main.unreadable && main.unreadable !== "EIO") {
    return [{
      level: "ERROR",
      line: modified[0]?.line,
      message:
        `Could not read ${main.path} to check the MODIFIED requirements against it ` +
        `(${main.unreadable}). Archive reads the same file, so fix the file before archiving.`,
    }];
  }
  if (main.content === null) return [];
  const current = new Map<string, RequirementBlock>();
  for (const b of extractRequirementsSection(main.content).blocks) {
    current.set(normalizeRequirementName(b.name), b);
  }
  const renamedFrom = new Map(
    renamed.map((
      r,
    ) => [normalizeRequirementName(r.to), normalizeRequirementName(r.from)]),
  );
  const renamedAway = new Set(
    renamed.map((r) => normalizeRequirementName(r.from)),
  );
  const blockFor = (name: string) => {
    const seen = new Set<string>();
    let key: string | undefined = name;
    while (key !== undefined && !seen.has(key)) {
      const b = current.get(key);
      if (b) return b;
      seen.add(key);
      key = renamedFrom.get(key);
    }
    return undefined;
  };
  const out: Omit<Issue, "path" | "file">[] = [];
  for (const b of modified) {
    const key = normalizeRequirementName(b.name);
    if (renamedAway.has(key)) continue;
    const cur = blockFor(key);
    if (!cur) continue;
    const diff = diffScenarioNames(cur, b);
    if (diff.missing.length === 0) continue;
    out.push({
      level: "ERROR",
      line: b.line,
      message:
        `MODIFIED "${b.name}" omits scenario(s) the current spec still has: ` +
        `${diff.missing.map((n) => `"${n}"`).join(", ")}. ${
          describeScenarioBalance(diff)
        } ` +
        "Copy the omitted scenarios into the MODIFIED block (a MODIFIED requirement replaces the whole block, so archive refuses to drop them).",
    });
  }
  return out;
}

/** Per-file rules on one parsed delta, in the official order. */
function deltaFileIssues(
  plan: DeltaPlan,
  main: (MainSpec & { path: string }) | null,
  issue: (i: Omit<Issue, "path" | "file">) => void,
): void {
  for (const s of plan.skippedHeaders) {
    issue({
      level: "INFO",
      line: s.line,
      message: /^requirement:?$/i.test(s.header)
        ? `Header "### ${s.header}" in ${s.section} is missing a requirement name and is ignored by validation. Add a name, e.g. "### Requirement: <name>".`
        : `Header "### ${s.header}" in ${s.section} is not a "### Requirement:" header and is ignored by validation. Use "### Requirement: ${s.header}" if it should be validated as a requirement.`,
    });
  }
  for (const u of plan.unpairedRenames) {
    issue({
      level: "ERROR",
      line: u.line,
      message: `RENAMED ${u.side}: "${u.name}" has no matching ${
        u.side === "FROM" ? "TO" : "FROM"
      }: line. Write each rename as a FROM: line followed immediately by its TO: line.`,
    });
  }
  for (const o of plan.orphanedRequirements) {
    const where = o.section
      ? `under "## ${o.section}"`
      : 'above the first "## " section';
    issue({
      level: "WARNING",
      line: o.line,
      message:
        `Requirement "${o.name}" is ${where}, which is not a delta section, so it is ignored. Move it under "## ADDED Requirements", "## MODIFIED Requirements", "## REMOVED Requirements", or "## RENAMED Requirements".`,
    });
  }
  const added = new Set<string>();
  const modified = new Set<string>();
  const removed = new Set<string>();
  const from = new Set<string>();
  const to = new Set<string>();
  checkBlocks("ADDED", plan.added, added, issue);
  checkBlocks("MODIFIED", plan.modified, modified, issue);
  if (plan.modified.length > 0) {
    if (main) scenarioLoss(plan.modified, plan.renamed, main).forEach(issue);
  }
  for (const r of plan.removed) {
    const key = normalizeRequirementName(r.name);
    if (removed.has(key)) {
      issue({
        level: "ERROR",
        line: r.line,
        message: `Duplicate requirement in REMOVED: "${r.name}"`,
      });
    } else removed.add(key);
  }
  for (const r of plan.renamed) {
    const f = normalizeRequirementName(r.from);
    const t = normalizeRequirementName(r.to);
    if (from.has(f)) {
      issue({
        level: "ERROR",
        line: r.line,
        message: `Duplicate FROM in RENAMED: "${r.from}"`,
      });
    } else from.add(f);
    if (to.has(t)) {
      issue({
        level: "ERROR",
        line: r.line,
        message: `Duplicate TO in RENAMED: "${r.to}"`,
      });
    } else to.add(t);
  }
  const lineOf = (blocks: { name: string; line: number }[], key: string) =>
    blocks.find((b) => normalizeRequirementName(b.name) === key)?.line;
  for (const n of modified) {
    if (removed.has(n)) {
      issue({
        level: "ERROR",
        line: lineOf(plan.removed, n),
        message: `Requirement present in both MODIFIED and REMOVED: "${n}"`,
      });
    }
    if (added.has(n)) {
      issue({
        level: "ERROR",
        line: lineOf(plan.modified, n),
        message: `Requirement present in both MODIFIED and ADDED: "${n}"`,
      });
    }
  }
  for (const n of added) {
    if (removed.has(n)) {
      issue({
        level: "ERROR",
        line: lineOf(plan.removed, n),
        message: `Requirement present in both ADDED and REMOVED: "${n}"`,
      });
    }
  }
  for (const r of plan.renamed) {
    const f = normalizeRequirementName(r.from);
    if (modified.has(f)) {
      issue({
        level: "ERROR",
        line: lineOf(plan.modified, f),
        message:
          `MODIFIED references old name from RENAMED. Use new header for "${r.to}"`,
      });
    }
    if (added.has(normalizeRequirementName(r.to))) {
      issue({
        level: "ERROR",
        line: r.line,
        message: `RENAMED TO collides with ADDED for "${r.to}"`,
      });
    }
    const match = [...removed].find((x) =>
      foldRequirementName(x) === foldRequirementName(f)
    );
    if (match !== undefined) {
      issue({
        level: "ERROR",
        line: r.line,
        message:
          `Requirement present in both RENAMED and REMOVED: "${r.from}"` +
          (match === f ? "" : ` (REMOVED spells it "${match}")`),
      });
    }
  }
}

function formatSections(sections: string[]): string {
  if (sections.length <= 1) return sections.join("");
  return `${sections.slice(0, -1).join(", ")} and ${
    sections[sections.length - 1]
  }`;
}

function taskIssues(
  changeDir: string,
  ctx: ChangeContext,
  rel: string,
): Issue[] {
  const tracked = trackedTaskFiles(changeDir, ctx.root);
  const files = tracked.length > 0 ? tracked : [`${changeDir}/tasks.md`];
  const docs: TaskDocument[] = [];
  let unreadable = 0;
  for (const f of files) {
    try {
      docs.push({
        path: f.slice(changeDir.length + 1),
        content: Deno.readTextFileSync(f),
      });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) unreadable++;
    }
  }
  docs.sort((a, b) => a.path.localeCompare(b.path));
  const out: Issue[] = [];
  const warn = (t: { path: string; line: number; message: string }): Issue => ({
    level: "WARNING",
    path: t.path,
    line: t.line,
    message: t.message,
    file: `${rel}/${t.path}`,
  });
  if (tracked.length > 0 && unreadable === 0) {
    out.push(...findMissingCheckboxIssues(docs).map(warn));
  }
  if (usesBuiltInSpecDriven(changeDir, ctx.root)) {
    out.push(...findTaskNumberingIssues(docs).map(warn));
  }
  return out;
}

/** Validate one change folder. */
export function validateChange(ctx: ChangeContext): Report {
  const rel = `openspec/changes/${ctx.id}`;
  const nested = nestedChangeIssue(ctx.root, ctx.id);
  if (nested) return { valid: false, issues: [nested] };
  const changeDir = `${ctx.root}/${rel}`;
  const specsDir = `${changeDir}/specs`;
  const issues: Issue[] = [];
  let totalDeltas = 0;
  const missingHeader: string[] = [];
  const emptySections: { path: string; sections: string[]; line: number }[] =
    [];
  const hasRootSpec = isFile(`${specsDir}/spec.md`);
  if (hasRootSpec) {
    issues.push({
      level: "ERROR",
      path: "spec.md",
      file: `${rel}/specs/spec.md`,
      message:
        "Delta spec found at specs/spec.md. Delta specs must live under a capability path (e.g. specs/<capability-path>/spec.md) — a file at the specs/ root is ignored when the change is applied or archived.",
    });
  }
  const plans: { id: string; entry: string; plan: DeltaPlan }[] = [];
  for (const { id, file } of discoverSpecFiles(specsDir)) {
    const content = readMaybe(file);
    if (content === null) continue;
    const plan = parseDeltaSpec(content);
    const entry = `${id}/spec.md`;
    plans.push({ id, entry, plan });
    const sink = (i: Omit<Issue, "path" | "file">) =>
      issues.push({ ...i, path: entry, file: `${rel}/specs/${entry}` });
    const p = plan.sectionPresence;
    const sections = [
      p.added && "## ADDED Requirements",
      p.modified && "## MODIFIED Requirements",
      p.removed && "## REMOVED Requirements",
      p.renamed && "## RENAMED Requirements",
    ].filter((s): s is string => typeof s === "string");
    const entries = plan.added.length + plan.modified.length +
      plan.removed.length + plan.renamed.length;
    if (entries === 0) {
      if (sections.length > 0) {
        const at = Object.values(plan.sectionLines).filter((l) => l > 0);
        emptySections.push({ path: entry, sections, line: Math.min(...at) });
      } else missingHeader.push(entry);
    }
    totalDeltas += entries;
    deltaFileIssues(
      plan,
      plan.modified.length > 0 ? mainSpec(ctx, id) : null,
      sink,
    );
  }
  // Archive's merge preconditions, for files no ERROR above already covers.
  const reported = new Set([
    ...issues.filter((i) => i.level === "ERROR").map((i) => i.path),
    ...missingHeader,
    ...emptySections.map((s) => s.path),
  ]);
  for (const { id, entry, plan } of plans) {
    if (reported.has(entry)) continue;
    const main = mainSpec(ctx, id);
    // Archive's own read of an unreadable target is a filesystem error, not
    // a refusal; upstream skips it here, and so does this.
    if (main.unreadable) continue;
    const refusal = archiveRefusal(plan, id, main.content);
    if (refusal) {
      issues.push({
        level: ctx.archiveCheck ? "ERROR" : "INFO",
        path: entry,
        file: `${rel}/specs/${entry}`,
        ...(refusal.line ? { line: refusal.line } : {}),
        message: `Archive would refuse this delta: ${refusal.message}`,
      });
    }
  }
  const unread = otherMarkdownFiles(specsDir).filter((f) => {
    const text = readMaybe(f.file);
    return text !== null &&
      Object.values(parseDeltaSpec(text).sectionPresence).some(Boolean);
  });
  for (const f of unread) {
    const capability = f.segments.length > 0
      ? f.segments.join("/")
      : f.path.slice(0, -3);
    issues.push({
      level: "ERROR",
      path: f.path,
      file: `${rel}/specs/${f.path}`,
      message:
        `Delta spec found at specs/${f.path}. Delta specs must be a spec.md inside a capability folder — this file is ignored when the change is applied or archived. Move its requirements into specs/${capability}/spec.md.`,
    });
  }
  for (const s of emptySections) {
    issues.push({
      level: "ERROR",
      path: s.path,
      line: s.line,
      file: `${rel}/specs/${s.path}`,
      message: `Delta sections ${
        formatSections(s.sections)
      } were found, but no requirement entries parsed. Ensure each section includes at least one "### Requirement:" block (REMOVED may use bullet list syntax).`,
    });
  }
  for (const p of missingHeader) {
    issues.push({
      level: "ERROR",
      path: p,
      file: `${rel}/specs/${p}`,
      message:
        'No delta sections found. Add headers such as "## ADDED Requirements" or move non-delta notes outside specs/.',
    });
  }
  const marker = readSkipSpecsMarker(changeDir, ctx.root);
  const metaFile = `${rel}/${METADATA_FILENAME}`;
  if (marker.invalidReason) {
    issues.push({
      level: "ERROR",
      path: METADATA_FILENAME,
      file: metaFile,
      message: `${CHANGE_MSG.SKIP_SPECS_INVALID} (${marker.invalidReason})`,
    });
  }
  let specsHaveFiles = false;
  if (marker.declared) {
    try {
      specsHaveFiles = hasAnyFileUnder(specsDir);
    } catch {
      specsHaveFiles = true;
    }
    if (specsHaveFiles) {
      issues.push({
        level: "ERROR",
        path: "file",
        file: metaFile,
        message: CHANGE_MSG.SKIP_SPECS_CONFLICT,
      });
    }
  }
  if (totalDeltas === 0 && !hasRootSpec && unread.length === 0) {
    if (marker.declared && !specsHaveFiles) {
      issues.push({
        level: "INFO",
        path: "file",
        file: metaFile,
        message: CHANGE_MSG.SKIP_SPECS_ACCEPTED,
      });
    } else if (!marker.declared) {
      issues.push({
        level: "ERROR",
        path: "file",
        file: rel,
        message: `${CHANGE_MSG.NO_DELTAS}. ${CHANGE_MSG.GUIDE_NO_DELTAS}`,
      });
    }
  }
  issues.push(...taskIssues(changeDir, ctx, rel));
  return makeReport(issues, ctx.strict);
}
