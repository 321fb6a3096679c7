/**
 * Requirement blocks, scenarios and delta sections, read with the official
 * line grammar (see lines.ts for why). Every block carries the 1-based line of
 * its header so diagnostics can point at it.
 */
import { codeFenceMask, normalizeContent } from "./lines.ts";

const METADATA_LINE = /^\*\*[^*]+\*\*:/;
const HEADER_LINE = /^#{1,6}\s/;
/** Any level-4 header is a scenario header (the official spec path agrees). */
const SCENARIO_HEADER = /^####\s+/;
const SCENARIO_BODY_END = /^#{1,4}\s/;
export const REQUIREMENT_HEADER = /^###\s*Requirement:\s*(.+)\s*$/i;
const TOP_LEVEL = /^##\s+/;

/** `### Requirement: Foo ###` names `Foo`; `C#` keeps its `#`. */
export function normalizeRequirementName(name: string): string {
  return name.replace(/[ \t]+#+[ \t]*$/, "").trim();
}

/** Case/space fold, used only to spot near-miss spellings. */
export function foldRequirementName(name: string): string {
  return normalizeRequirementName(name).toLowerCase().replace(/\s+/g, " ");
}

export function containsShallOrMust(text: string): boolean {
  return /\b(SHALL|MUST)\b/.test(text);
}

/**
 * The requirement body: non-blank, non-fenced lines up to the first header,
 * `**Key**:` metadata lines only when nothing else is there.
 */
export function extractRequirementBody(bodyLines: readonly string[]): string {
  const mask = codeFenceMask(bodyLines);
  const captured: string[] = [];
  const metadata: string[] = [];
  for (let i = 0; i < bodyLines.length; i++) {
    if (mask[i]) continue;
    if (HEADER_LINE.test(bodyLines[i])) break;
    const trimmed = bodyLines[i].trim();
    if (!trimmed) continue;
    if (METADATA_LINE.test(trimmed)) metadata.push(trimmed);
    else captured.push(trimmed);
  }
  return captured.length > 0 ? captured.join("\n") : metadata.join("\n");
}

/** Body of each `####` header, up to the next header of level 1-4. */
function scenarioBodies(bodyLines: readonly string[]): string[] {
  const mask = codeFenceMask(bodyLines);
  const bodies: string[] = [];
  for (let i = 0; i < bodyLines.length; i++) {
    if (mask[i] || !SCENARIO_HEADER.test(bodyLines[i])) continue;
    let end = i + 1;
    while (
      end < bodyLines.length &&
      (mask[end] || !SCENARIO_BODY_END.test(bodyLines[end]))
    ) end++;
    bodies.push(bodyLines.slice(i + 1, end).join("\n"));
  }
  return bodies;
}

export function countScenarios(bodyLines: readonly string[]): number {
  return scenarioBodies(bodyLines).filter((b) => b.trim().length > 0).length;
}

export function countEmptyScenarios(bodyLines: readonly string[]): number {
  return scenarioBodies(bodyLines).filter((b) => b.trim().length === 0).length;
}

export interface RequirementBlock {
  name: string;
  headerLine: string;
  /** Header plus body, trailing blank lines trimmed. */
  raw: string;
  /** 1-based line of the header in its file. */
  line: number;
}

export interface RequirementsSection {
  found: boolean;
  /** 1-based line of `## Requirements`, or 0. */
  line: number;
  blocks: RequirementBlock[];
}

/** `### Requirement:` blocks inside the first unfenced `## Requirements`. */
export function extractRequirementsSection(
  content: string,
): RequirementsSection {
  const lines = normalizeContent(content).split("\n");
  const mask = codeFenceMask(lines);
  const start = lines.findIndex((l, i) =>
    !mask[i] && /^##\s+Requirements\s*$/i.test(l)
  );
  if (start === -1) return { found: false, line: 0, blocks: [] };
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    if (!mask[i] && TOP_LEVEL.test(lines[i])) {
      end = i;
      break;
    }
  }
  const isReq = (i: number) => !mask[i] && REQUIREMENT_HEADER.test(lines[i]);
  const blocks: RequirementBlock[] = [];
  let i = start + 1;
  while (i < end && !isReq(i)) i++;
  while (i < end) {
    if (!isReq(i)) {
      i++;
      continue;
    }
    const header = lines[i];
    const name = normalizeRequirementName(header.match(REQUIREMENT_HEADER)![1]);
    const line = i + 1;
    const buf = [header];
    i++;
    while (i < end && !isReq(i) && !(!mask[i] && TOP_LEVEL.test(lines[i]))) {
      buf.push(lines[i]);
      i++;
    }
    blocks.push({
      name,
      headerLine: header,
      raw: buf.join("\n").trimEnd(),
      line,
    });
  }
  return { found: true, line: start + 1, blocks };
}

export interface SkippedHeader {
  header: string;
  section: string;
  line: number;
}

export interface UnpairedRename {
  side: "FROM" | "TO";
  name: string;
  line: number;
}

export interface OrphanRequirement {
  name: string;
  section: string | null;
  line: number;
}

export interface RenamePair {
  from: string;
  to: string;
  /** Line of the FROM entry. */
  line: number;
}

export interface NamedEntry {
  name: string;
  line: number;
}

export interface DeltaPlan {
  added: RequirementBlock[];
  modified: RequirementBlock[];
  removed: NamedEntry[];
  renamed: RenamePair[];
  unpairedRenames: UnpairedRename[];
  orphanedRequirements: OrphanRequirement[];
  skippedHeaders: SkippedHeader[];
  sectionPresence: {
    added: boolean;
    modified: boolean;
    removed: boolean;
    renamed: boolean;
  };
  /** First line of the first header of each delta kind, for diagnostics. */
  sectionLines: {
    added: number;
    modified: number;
    removed: number;
    renamed: number;
  };
}

interface SectionBody {
  lines: string[];
  mask: boolean[];
  /** 1-based file line of `lines[0]`. */
  start: number;
}

interface Section {
  title: string;
  line: number;
  body: SectionBody;
}

function splitTopLevelSections(lines: string[], mask: boolean[]): Section[] {
  const heads: { title: string; index: number }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (mask[i]) continue;
    const m = lines[i].match(/^(##)\s+(.+)$/);
    if (m) heads.push({ title: m[2].trim(), index: i });
  }
  return heads.map((h, k) => {
    const end = k + 1 < heads.length ? heads[k + 1].index : lines.length;
    return {
      title: h.title,
      line: h.index + 1,
      body: {
        lines: lines.slice(h.index + 1, end),
        mask: mask.slice(h.index + 1, end),
        start: h.index + 2,
      },
    };
  });
}

function sectionsTitled(sections: Section[], desired: string) {
  const target = desired.toLowerCase();
  const matches = sections.filter((s) => s.title.toLowerCase() === target);
  return {
    title: matches.length > 0 ? matches[0].title : desired,
    bodies: matches.map((s) => s.body),
    found: matches.length > 0,
    line: matches.length > 0 ? matches[0].line : 0,
  };
}

function requirementBlocksIn(
  body: SectionBody,
  skipped?: { section: string; sink: SkippedHeader[] },
): RequirementBlock[] {
  const { lines, mask, start } = body;
  const isReq = (i: number) => !mask[i] && REQUIREMENT_HEADER.test(lines[i]);
  const isTop = (i: number) => !mask[i] && TOP_LEVEL.test(lines[i]);
  const recordSkipped = (i: number) => {
    if (!skipped || mask[i]) return;
    const h3 = lines[i].match(/^###\s+(.+?)\s*$/);
    if (h3 && !REQUIREMENT_HEADER.test(lines[i])) {
      skipped.sink.push({
        header: h3[1].trim(),
        section: skipped.section,
        line: start + i,
      });
    }
  };
  const blocks: RequirementBlock[] = [];
  let i = 0;
  while (i < lines.length) {
    while (i < lines.length && !isReq(i)) recordSkipped(i++);
    if (i >= lines.length) break;
    const header = lines[i];
    const name = normalizeRequirementName(header.match(REQUIREMENT_HEADER)![1]);
    const line = start + i;
    const buf = [header];
    i++;
    while (i < lines.length && !isReq(i) && !isTop(i)) {
      recordSkipped(i);
      buf.push(lines[i]);
      i++;
    }
    blocks.push({
      name,
      headerLine: header,
      raw: buf.join("\n").trimEnd(),
      line,
    });
  }
  return blocks;
}

function removedNamesIn(body: SectionBody): NamedEntry[] {
  const out: NamedEntry[] = [];
  body.lines.forEach((line, i) => {
    if (body.mask[i]) return;
    const m = line.match(REQUIREMENT_HEADER) ??
      line.match(/^\s*[-*+]\s*`?###\s*Requirement:\s*(.+?)`?\s*$/);
    if (m) {
      out.push({ name: normalizeRequirementName(m[1]), line: body.start + i });
    }
  });
  return out;
}

function renamePairsIn(
  body: SectionBody,
  unpaired: UnpairedRename[],
): RenamePair[] {
  const pairs: RenamePair[] = [];
  let pending: { name: string; line: number } | undefined;
  body.lines.forEach((line, i) => {
    if (body.mask[i]) return;
    const from = line.match(
      /^\s*[-*+]?\s*FROM:\s*`?###\s*Requirement:\s*(.+?)`?\s*$/,
    );
    const to = line.match(
      /^\s*[-*+]?\s*TO:\s*`?###\s*Requirement:\s*(.+?)`?\s*$/,
    );
    if (from) {
      if (pending) unpaired.push({ side: "FROM", ...pending });
      pending = {
        name: normalizeRequirementName(from[1]),
        line: body.start + i,
      };
    } else if (to) {
      const name = normalizeRequirementName(to[1]);
      if (!pending) {
        unpaired.push({ side: "TO", name, line: body.start + i });
        return;
      }
      pairs.push({ from: pending.name, to: name, line: pending.line });
      pending = undefined;
    }
  });
  if (pending) unpaired.push({ side: "FROM", ...pending });
  return pairs;
}

const DELTA_TITLES = new Set(
  ["added", "modified", "removed", "renamed"].map((k) => `${k} requirements`),
);

function orphanedRequirements(
  lines: string[],
  mask: boolean[],
): OrphanRequirement[] {
  const out: OrphanRequirement[] = [];
  let section: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    if (mask[i]) continue;
    const s = lines[i].match(/^(##)\s+(.+)$/);
    if (s) {
      section = s[2].trim();
      continue;
    }
    if (section !== null && DELTA_TITLES.has(section.toLowerCase())) continue;
    const h = lines[i].match(REQUIREMENT_HEADER);
    if (h) {
      out.push({ name: normalizeRequirementName(h[1]), section, line: i + 1 });
    }
  }
  return out;
}

/** Parse a delta spec (`## ADDED|MODIFIED|REMOVED|RENAMED Requirements`). */
export function parseDeltaSpec(content: string): DeltaPlan {
  const lines = normalizeContent(content).split("\n");
  const mask = codeFenceMask(lines);
  const sections = splitTopLevelSections(lines, mask);
  const added = sectionsTitled(sections, "ADDED Requirements");
  const modified = sectionsTitled(sections, "MODIFIED Requirements");
  const removed = sectionsTitled(sections, "REMOVED Requirements");
  const renamed = sectionsTitled(sections, "RENAMED Requirements");
  const skippedHeaders: SkippedHeader[] = [];
  const unpairedRenames: UnpairedRename[] = [];
  const plan: DeltaPlan = {
    added: added.bodies.flatMap((b) =>
      requirementBlocksIn(b, { section: added.title, sink: skippedHeaders })
    ),
    modified: modified.bodies.flatMap((b) =>
      requirementBlocksIn(b, { section: modified.title, sink: skippedHeaders })
    ),
    removed: removed.bodies.flatMap(removedNamesIn),
    renamed: renamed.bodies.flatMap((b) => renamePairsIn(b, unpairedRenames)),
    unpairedRenames,
    orphanedRequirements: orphanedRequirements(lines, mask),
    skippedHeaders,
    sectionPresence: {
      added: added.found,
      modified: modified.found,
      removed: removed.found,
      renamed: renamed.found,
    },
    sectionLines: {
      added: added.line,
      modified: modified.line,
      removed: removed.line,
      renamed: renamed.line,
    },
  };
  unpairedRenames.sort((a, b) => a.line - b.line);
  skippedHeaders.sort((a, b) => a.line - b.line);
  return plan;
}

function scenarioNameAt(line: string): string {
  return line.replace(SCENARIO_HEADER, "").replace(/[ \t]+#+[ \t]*$/, "")
    .replace(/^Scenario:\s*/i, "").trim();
}

function scenarioNames(raw: string): string[] {
  const lines = normalizeContent(raw).split("\n");
  const mask = codeFenceMask(lines);
  return lines.filter((l, i) => !mask[i] && SCENARIO_HEADER.test(l)).map(
    scenarioNameAt,
  );
}

export interface ScenarioDiff {
  missing: string[];
  added: string[];
  currentCount: number;
  incomingCount: number;
}

/** Multiset difference of scenario names, both ways. */
export function diffScenarioNames(
  current: { raw: string },
  incoming: { raw: string },
): ScenarioDiff {
  const cur = scenarioNames(current.raw);
  const inc = scenarioNames(incoming.raw);
  const unmatched = (names: string[], against: string[]) => {
    const left = new Map<string, number>();
    for (const n of against) left.set(n, (left.get(n) ?? 0) + 1);
    return names.filter((n) => {
      const k = left.get(n) ?? 0;
      if (k > 0) left.set(n, k - 1);
      return k === 0;
    });
  };
  return {
    missing: unmatched(cur, inc),
    added: unmatched(inc, cur),
    currentCount: cur.length,
    incomingCount: inc.length,
  };
}

export function describeScenarioBalance(diff: ScenarioDiff): string {
  const count = (n: number) => `${n} ${n === 1 ? "scenario" : "scenarios"}`;
  const scale = `The modified block has ${
    count(diff.incomingCount)
  }; the current spec has ${count(diff.currentCount)}.`;
  if (diff.added.length === 0) return `${scale} It adds none.`;
  const listed = diff.added.slice(0, 3).map((n) => `"${n}"`).join(", ");
  const rest = diff.added.length - 3;
  return `${scale} It adds ${
    count(diff.added.length)
  } not in the current spec: ${
    rest > 0 ? `${listed} and ${rest} more` : listed
  }.`;
}
