/**
 * Where CommonMark and OpenSpec's line grammar disagree about headings.
 *
 * Verdicts follow the official line grammar (lines.ts), but authors read
 * their specs rendered as CommonMark. A heading that renders yet is invisible
 * to validation (indented, setext, inside a quote or list), or a `### ...`
 * line that validation counts yet renders as no heading (inside an HTML
 * comment), silently changes what a spec says. These notes go to the human
 * report only: they never change a verdict or the JSON.
 */
import type { fromMarkdown } from "mdast-util-from-markdown";
import { codeFenceMask, normalizeContent } from "./lines.ts";

export interface Note {
  line: number;
  message: string;
  fix: string;
}

/** Cheap pre-check: only files with a possible disagreement are parsed. */
const SUSPECT = /^( {1,3}#| *>| *<!--| *(?:[-*+]|\d+[.)]) +#|[=-]{2,} *$)/m;

type Root = ReturnType<typeof fromMarkdown>;
type FromMarkdown = (text: string) => Root;
/** The slice of an mdast node the heading walk reads. */
interface MdNode {
  type: string;
  depth?: number;
  position?: { start: { line: number } };
  children?: MdNode[];
}
let parser: Promise<FromMarkdown> | undefined;

function loadParser(): Promise<FromMarkdown> {
  // Loaded on demand: micromark costs ~100 ms, and most files never need it.
  parser ??= import("mdast-util-from-markdown").then((m) => (t: string) =>
    m.fromMarkdown(t)
  );
  return parser;
}

function headings(node: MdNode, out: Map<number, number>): void {
  if (node.type === "heading" && node.position && node.depth) {
    out.set(node.position.start.line, node.depth);
  }
  for (const child of node.children ?? []) headings(child, out);
}

/** Notes for one Markdown file's content (empty when both readings agree). */
export async function commonmarkNotes(content: string): Promise<Note[]> {
  const text = normalizeContent(content);
  if (!SUSPECT.test(text)) return [];
  const parse = await loadParser();
  const rendered = new Map<number, number>();
  headings(parse(text) as MdNode, rendered);
  const lines = text.split("\n");
  const fenced = codeFenceMask(lines);
  const notes: Note[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const seen = fenced[i] ? null : lines[i].match(/^(#{1,6})\s+(.+)$/);
    const depth = rendered.get(line);
    if (depth !== undefined && depth >= 2 && depth <= 4 && !seen) {
      notes.push({
        line,
        message:
          `renders as a level-${depth} heading, but OpenSpec reads only "${
            "#".repeat(depth)
          } " headings ` +
          "that start in column 1 outside code fences, so validation ignores it",
        fix: `write it as "${"#".repeat(depth)} ${
          lines[i].replace(/^[\s>#*+\-\d.)]*/, "").trim()
        }" at the start of the line`,
      });
    } else if (
      seen && seen[1].length >= 2 && seen[1].length <= 4 && depth === undefined
    ) {
      notes.push({
        line,
        message:
          `OpenSpec reads this line as a level-${
            seen[1].length
          } header, but it does not render as a heading ` +
          "(it sits inside an HTML comment, HTML block or similar), so the spec validates content readers never see",
        fix: "delete the line or move it out of the comment",
      });
    }
  }
  return notes;
}
