/**
 * Task-file checks: checkbox lines (the grammar `openspec status`/`archive`
 * count with), files that hold list items but no checkbox, and numbering that
 * contradicts its `## N.` group.
 */

/** List item with a one-token checkbox; `- [ ]`, `1. [x]`, `+ [~]` all count. */
const TASK_LINE =
  /^\s*(?:[-*+]|\d{1,9}[.)])\s*\[(?:\s*([^\]\s]?)\s*\](?![([])|\s+\])\s*(.*)/;

export interface TaskLine {
  done: boolean;
  description: string;
}

export function parseTaskLines(content: string): TaskLine[] {
  const out: TaskLine[] = [];
  for (const line of content.split("\n")) {
    const m = line.match(TASK_LINE);
    if (m) {
      out.push({
        done: (m[1] ?? "").toLowerCase() === "x",
        description: m[2].trim(),
      });
    }
  }
  return out;
}

export interface TaskDocument {
  /** Change-relative POSIX path. */
  path: string;
  content: string;
}

export interface TaskIssue {
  path: string;
  line: number;
  message: string;
}

const LIST_ITEM = /^\s*(?:[-*+]|\d{1,9}[.)])\s+\S/;
const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)/;
const FRONT_MATTER = /^-{3}\s*$/;

function indentColumns(line: string): number {
  let col = 0;
  for (const ch of line) {
    if (ch === " ") col += 1;
    else if (ch === "\t") col += 4 - (col % 4);
    else break;
  }
  return col;
}

function skipFrontMatter(lines: string[]): number {
  if (
    lines.length === 0 ||
    !FRONT_MATTER.test(lines[0].replace(/^\uFEFF/, "").trimEnd())
  ) {
    return 0;
  }
  for (let i = 1; i < lines.length; i++) {
    if (FRONT_MATTER.test(lines[i].trimEnd())) return i + 1;
  }
  return 0;
}

/** First list item outside fences, comments, front matter and indented code. */
function firstListItemLine(content: string): number | undefined {
  const lines = content.split("\n");
  let fence: { marker: string; length: number } | undefined;
  let inComment = false;
  for (let i = skipFrontMatter(lines); i < lines.length; i++) {
    const line = lines[i];
    if (inComment) {
      if (line.includes("-->")) inComment = false;
      continue;
    }
    const f = line.match(FENCE);
    if (f) {
      if (fence === undefined) fence = { marker: f[1][0], length: f[1].length };
      else if (
        f[1][0] === fence.marker && f[1].length >= fence.length &&
        f[2].trim() === ""
      ) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    if (line.trimStart().startsWith("<!--")) {
      if (!line.includes("-->", line.indexOf("<!--") + 4)) inComment = true;
      continue;
    }
    if (LIST_ITEM.test(line) && indentColumns(line) < 4) return i + 1;
  }
  return undefined;
}

/**
 * When no tracked task file holds a checkbox, one warning per file that has
 * list items, at its first one: the change counts as 0 tasks.
 */
export function findMissingCheckboxIssues(
  documents: TaskDocument[],
): TaskIssue[] {
  if (documents.length === 0) return [];
  if (documents.some((d) => parseTaskLines(d.content).length > 0)) return [];
  const issues: TaskIssue[] = [];
  for (const d of documents) {
    const line = firstListItemLine(d.content);
    if (line === undefined) continue;
    issues.push({
      path: d.path,
      line,
      message:
        "This change counts as 0 tasks: no line in its tracked task files is a checkbox, " +
        'so "openspec list" and "openspec status" report no work and "openspec archive" ' +
        'has nothing to flag as incomplete. Write each task as "- [ ] 1.1 Description".',
    });
  }
  return issues;
}

const LEVEL_TWO = /^ {0,3}##(?!#)(?:[ \t]+|[ \t]*\r?$)/;
const NUMBERED_GROUP = /^ {0,3}##[ \t]+(\d+)\.(?:[ \t]|\r?$)/;
const TASK_ID = /^(\d+(?:\.\d+)+(?:[A-Za-z]+)?)(?=\s|$)/;

/** Task ids under the wrong `## N.` group, and ids declared twice. */
export function findTaskNumberingIssues(
  documents: TaskDocument[],
): TaskIssue[] {
  const issues: TaskIssue[] = [];
  const first = new Map<string, { path: string; line: number }>();
  for (const d of documents) {
    const lines = d.content.split("\n");
    if (!lines.some((l) => NUMBERED_GROUP.test(l))) continue;
    let group: string | undefined;
    lines.forEach((line, index) => {
      if (LEVEL_TWO.test(line)) group = line.match(NUMBERED_GROUP)?.[1];
      if (group === undefined) return;
      const id = parseTaskLines(line)[0]?.description.match(TASK_ID)?.[1];
      if (!id) return;
      const lineNo = index + 1;
      const taskGroup = id.split(".")[0];
      const strip = (s: string) => s.replace(/^0+(?=\d)/, "");
      if (strip(taskGroup) !== strip(group)) {
        issues.push({
          path: d.path,
          line: lineNo,
          message:
            `Task "${id}" is under group ${group}, but its leading number points to group ${taskGroup}. Move it to group ${taskGroup} or renumber it.`,
        });
      }
      const prev = first.get(id);
      if (prev !== undefined) {
        const where = prev.path === d.path
          ? `on line ${prev.line}`
          : `in ${prev.path} on line ${prev.line}`;
        issues.push({
          path: d.path,
          line: lineNo,
          message:
            `Task ID "${id}" is duplicated; it was first declared ${where}.`,
        });
      } else first.set(id, { path: d.path, line: lineNo });
    });
  }
  return issues;
}
