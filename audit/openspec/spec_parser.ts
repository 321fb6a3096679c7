/**
 * Main-spec reading: the section tree the official `MarkdownParser` builds,
 * the structural checks it runs on `## Requirements`, and the Purpose
 * placeholder detection. Line grammar as in lines.ts.
 */
import { codeFenceMask, lineDoc, normalizeContent } from "./lines.ts";
import {
  extractRequirementBody,
  normalizeRequirementName,
} from "./requirements.ts";

export interface SectionNode {
  level: number;
  title: string;
  content: string;
  /** 1-based line of the header. */
  line: number;
  children: SectionNode[];
}

/** Every unfenced `#{1,6} title` header, nested by level. */
export function parseSections(content: string): SectionNode[] {
  const { lines, fenced } = lineDoc(content);
  const roots: SectionNode[] = [];
  const stack: SectionNode[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (fenced[i]) continue;
    const m = lines[i].match(/^(#{1,6})\s+(.+)$/);
    if (!m) continue;
    const level = m[1].length;
    const body: string[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      const h = fenced[j] ? null : lines[j].match(/^(#{1,6})\s+/);
      if (h && h[1].length <= level) break;
      body.push(lines[j]);
    }
    const node: SectionNode = {
      level,
      title: m[2].trim(),
      content: body.join("\n").trim(),
      line: i + 1,
      children: [],
    };
    while (stack.length > 0 && stack[stack.length - 1].level >= level) {
      stack.pop();
    }
    if (stack.length === 0) roots.push(node);
    else stack[stack.length - 1].children.push(node);
    stack.push(node);
  }
  return roots;
}

/** Depth-first, case-insensitive title lookup (the official order). */
export function findSection(
  sections: SectionNode[],
  title: string,
): SectionNode | undefined {
  for (const s of sections) {
    if (s.title.toLowerCase() === title.toLowerCase()) return s;
    const child = findSection(s.children, title);
    if (child) return child;
  }
  return undefined;
}

export interface ParsedRequirement {
  text: string;
  scenarioCount: number;
  line: number;
}

export interface ParsedSpec {
  overview: string;
  purposeLine: number;
  requirementsLine: number;
  requirements: ParsedRequirement[];
}

/** Thrown when a spec lacks `Purpose` (with content) or `Requirements`. */
export class SpecShapeError extends Error {
  constructor(message: string, readonly line?: number) {
    super(message);
  }
}

export function parseSpec(content: string): ParsedSpec {
  const sections = parseSections(content);
  const purpose = findSection(sections, "Purpose");
  const reqs = findSection(sections, "Requirements");
  if (!purpose?.content) {
    throw new SpecShapeError("Spec must have a Purpose section", purpose?.line);
  }
  if (!reqs) throw new SpecShapeError("Spec must have a Requirements section");
  return {
    overview: purpose.content.trim(),
    purposeLine: purpose.line,
    requirementsLine: reqs.line,
    requirements: reqs.children.map((child) => ({
      text: extractRequirementBody(child.content.split("\n")) ||
        child.title.trim(),
      scenarioCount:
        child.children.filter((s) => s.content.trim().length > 0).length,
      line: child.line,
    })),
  };
}

export interface StructureIssue {
  line: number;
  message: string;
}

const DELTA_HEADER =
  /^##\s+(ADDED|MODIFIED|REMOVED|RENAMED)\s+Requirements\s*$/i;
const REQ_HEADER_STRICT = /^###\s+Requirement:\s*(.+)\s*$/i;

/** Delta headers, requirements outside `## Requirements`, duplicate names. */
export function findMainSpecStructureIssues(content: string): StructureIssue[] {
  // The official check does not strip a BOM here, only line endings.
  const lines = content.replace(/\r\n?/g, "\n").split("\n");
  const mask = codeFenceMask(lines);
  const text = lines.map((l, i) => (mask[i] ? "" : l));
  const issues: StructureIssue[] = [];
  const seen = new Map<string, number>();
  const start = text.findIndex((l) => /^##\s+Requirements\s*$/i.test(l));
  let end = text.length;
  if (start !== -1) {
    for (let i = start + 1; i < text.length; i++) {
      if (/^##\s+/.test(text[i])) {
        end = i;
        break;
      }
    }
  }
  for (let i = 0; i < text.length; i++) {
    const line = text[i];
    const trimmed = line.trim();
    if (!trimmed) continue;
    if (DELTA_HEADER.test(line)) {
      issues.push({
        line: i + 1,
        message: `Main spec contains delta header "${trimmed}". ` +
          "Delta headers are only valid inside openspec/changes/<name>/specs/<capability-path>/spec.md " +
          "and truncate the parsed ## Requirements section.",
      });
      continue;
    }
    const m = line.match(REQ_HEADER_STRICT);
    if (!m) continue;
    if (!(start !== -1 && i > start && i < end)) {
      issues.push({
        line: i + 1,
        message:
          `Requirement header "${trimmed}" appears outside the main ## Requirements section. ` +
          "Main specs only parse requirements inside that section, so this requirement is currently invisible to validate, list, and archive.",
      });
      continue;
    }
    const name = normalizeRequirementName(m[1]);
    const prev = seen.get(name);
    if (prev !== undefined) {
      issues.push({
        line: i + 1,
        message:
          `Requirement header "${trimmed}" duplicates the requirement declared on line ${prev}. ` +
          "Requirement names must be unique so spec updates cannot discard one block while updating another.",
      });
    } else seen.set(name, i + 1);
  }
  return issues;
}

const PLACEHOLDER_PREFIX = "TBD - created by archiving change ";
const PLACEHOLDER_SUFFIX = ". Update Purpose after archive.";
const WORD_END = "(?![\\p{L}\\p{N}\\p{M}_])";
const MARKER_PUNCT = "(?=[ \\t]*(?:$|\\n|[:\\-\u2013\u2014.,;()\\[\\]{}]))";
const LEADING_SHOUTED = new RegExp(`^(?:TBD|TODO)${WORD_END}`, "u");
const LEADING_PUNCTUATED = new RegExp(
  `^(?:TBD|TODO)${WORD_END}${MARKER_PUNCT}`,
  "iu",
);
const PURPOSE_HEADER = /^ {0,3}##(?!#)[ \t]+Purpose[ \t]*$/i;
const TOP_HEADER = /^ {0,3}#{1,2}(?!#)[ \t]+/;

function placeholderPrefixAt(text: string): number | undefined {
  let suffixAt = text.indexOf(PLACEHOLDER_SUFFIX);
  while (suffixAt !== -1) {
    const prefixAt = text.lastIndexOf(PLACEHOLDER_PREFIX, suffixAt);
    if (prefixAt !== -1) return prefixAt;
    suffixAt = text.indexOf(PLACEHOLDER_SUFFIX, suffixAt + 1);
  }
  return undefined;
}

/**
 * A Purpose that is still archive's generated sentence or opens with a
 * TBD/TODO marker. Returns the line of the placeholder when one is found.
 */
export function findPurposePlaceholder(
  overview: string,
  content: string,
): { line?: number } | null {
  const ov = normalizeContent(overview).split("\n");
  const ovMask = codeFenceMask(ov);
  const prose = ov.filter((_, i) => !ovMask[i]).join("\n").trim();
  const leading = LEADING_SHOUTED.test(prose) || LEADING_PUNCTUATED.test(prose);
  if (!leading && placeholderPrefixAt(prose) === undefined) return null;
  const { lines, fenced } = lineDoc(content);
  const head = lines.findIndex((l, i) => !fenced[i] && PURPOSE_HEADER.test(l));
  if (head === -1) return {};
  const body: { line: number; text: string }[] = [];
  for (let i = head + 1; i < lines.length; i++) {
    if (fenced[i]) continue;
    if (TOP_HEADER.test(lines[i])) break;
    if (leading && lines[i].trim()) return { line: i + 1 };
    body.push({ line: i + 1, text: lines[i] });
  }
  if (leading) return {};
  const joined = body.map((b) => b.text).join("\n");
  const at = placeholderPrefixAt(joined);
  if (at === undefined) return {};
  return { line: body[joined.slice(0, at).split("\n").length - 1]?.line };
}
