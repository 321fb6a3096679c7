/**
 * Markdown analyzer: `mdast-util-from-markdown` separates prose, inline code
 * and fenced code. Paragraphs and headings (with their inline code spans)
 * go to the prose judge sentence by sentence, with the section's headings as
 * context; fenced code goes to the analyzer of its language, and a block
 * introduced as the wrong way ("Before:", "Don't:") is quoted, not stated.
 */
import type { fromMarkdown } from "mdast-util-from-markdown";
import { analyzeProse, explainingHeading, OffsetMap } from "./prose.ts";
import type { RawFinding } from "./types.ts";

type Root = ReturnType<typeof fromMarkdown>;
type Nodes = Root["children"][number];
type Parent = Root | Extract<Nodes, { children: unknown }>;
type Heading = Extract<Nodes, { type: "heading" }>;
type FromMarkdown = (text: string) => Root;
let mdPromise: Promise<FromMarkdown> | undefined;

function mdParser(): Promise<FromMarkdown> {
  mdPromise ??= import("mdast-util-from-markdown").then((m) => (t: string) =>
    m.fromMarkdown(t)
  );
  return mdPromise;
}

/** Analyzers for fenced code, by language tag (wired by the dispatcher). */
export type CodeAnalyzer = (
  code: string,
  lang: string,
) => Promise<RawFinding[] | null>;

/** Text of a heading or paragraph with source offsets, code spans included. */
function inlineText(src: string, node: Parent): OffsetMap {
  const m = new OffsetMap();
  const visit = (n: Nodes) => {
    const start = n.position?.start.offset;
    if (n.type === "text" && start !== undefined) {
      // Text inside blockquotes and lists loses its line prefixes: find
      // each line in the source so offsets stay exact.
      let cursor = start;
      n.value.split("\n").forEach((line, i) => {
        if (i > 0) m.push("\n", cursor);
        const at = src.indexOf(line, cursor);
        const off = at >= 0 && at - cursor < 200 ? at : cursor;
        m.push(line, off);
        cursor = off + line.length;
      });
    } else if (n.type === "inlineCode" && start !== undefined) {
      const end = n.position!.end.offset!;
      const at = src.slice(start, end).indexOf(n.value);
      m.push("`", start);
      m.push(n.value, start + (at >= 0 ? at : 1));
      m.push("`", end - 1);
    } else if (n.type === "break") {
      m.push("\n", start ?? 0);
    } else if (
      "children" in n && n.type !== "link" && n.type !== "linkReference"
    ) {
      for (const c of n.children) visit(c as Nodes);
    } else if (
      (n.type === "link" || n.type === "linkReference") && "children" in n
    ) {
      // Link text is prose; the URL (a path or id) is not.
      for (const c of n.children) visit(c as Nodes);
    }
  };
  for (const c of node.children) visit(c as Nodes);
  return m;
}

const QUOTING_INTRO =
  /\b(?:before|old|wrong|bad|don't|do\s+not|incorrect|buggy|legacy|never|not\s+this|avoid|forbidden|deprecated)\b[^.]*:?\s*$/i;

function plain(n: Nodes): string {
  if (n.type === "text" || n.type === "inlineCode") return n.value;
  if ("children" in n) return (n.children as Nodes[]).map(plain).join("");
  return "";
}

/** Offsets of each line of a fenced code block's value in the source. */
function codeLineMap(
  src: string,
  node: Nodes,
  value: string,
): (i: number) => number {
  const lines = value.split("\n");
  const starts: number[] = [];
  const vstarts: number[] = [];
  let cursor = node.position?.start.offset ?? 0;
  // Skip the opening fence line.
  const nl = src.indexOf("\n", cursor);
  cursor = nl >= 0 ? nl + 1 : cursor;
  let v = 0;
  for (const line of lines) {
    const at = line ? src.indexOf(line, cursor) : cursor;
    const off = at >= 0 ? at : cursor;
    starts.push(off);
    vstarts.push(v);
    cursor = off + line.length;
    v += line.length + 1;
  }
  return (i: number) => {
    let k = 0;
    while (k + 1 < vstarts.length && vstarts[k + 1] <= i) k++;
    return starts[k] + (i - vstarts[k]);
  };
}

/** A top-level piece of a Markdown file, split at blank lines. */
interface Chunk {
  start: number;
  end: number;
  kind: "heading" | "fence" | "block";
}

const FENCE_OPEN = /^\s*(`{3,}|~{3,})/;
const ATX = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;

/**
 * Split at blank lines outside fenced code, keeping indented continuations
 * (list items) with their block and ATX headings on their own. Parsing
 * only the chunks that mention a thousand keeps a large docs tree cheap;
 * each chunk is still parsed by the Markdown parser, never judged raw.
 */
function splitMarkdown(src: string): Chunk[] {
  const chunks: Chunk[] = [];
  let cur: Chunk | null = null;
  let fence: string | null = null;
  let at = 0;
  const close = (end: number) => {
    if (cur) {
      cur.end = end;
      chunks.push(cur);
      cur = null;
    }
  };
  while (at <= src.length) {
    let nl = src.indexOf("\n", at);
    if (nl < 0) nl = src.length;
    const line = src.slice(at, nl);
    if (fence) {
      if (
        new RegExp(
          `^\\s*${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`,
        ).test(line)
      ) {
        fence = null;
      }
    } else if (line.trim() === "") {
      // A blank line ends a block unless the next text is indented.
      const rest = src.slice(nl + 1);
      const next = /^(?:[ \t]*\n)*([ \t]*)\S/.exec(rest);
      if (!next || next[1].length === 0) close(at);
    } else if (ATX.test(line)) {
      close(at);
      chunks.push({ start: at, end: nl, kind: "heading" });
    } else {
      const m = FENCE_OPEN.exec(line);
      if (m) fence = m[1];
      if (!cur) cur = { start: at, end: at, kind: m ? "fence" : "block" };
    }
    if (nl >= src.length) break;
    at = nl + 1;
  }
  close(src.length);
  return chunks;
}

/** Chunks worth a parse: they mention a thousand somehow. */
const HOT = /1_?000|thousandths|1e3/i;

/**
 * Analyze Markdown. `explainingFile` marks files (changelogs) that quote
 * conventions rather than state them.
 */
export async function analyzeMarkdown(
  src: string,
  code: CodeAnalyzer,
  explainingFile = false,
): Promise<RawFinding[]> {
  const parse = await mdParser();
  const out: RawFinding[] = [];
  const headings: string[] = [];
  let prev: Chunk | null = null;
  for (const ch of splitMarkdown(src)) {
    if (HOT.test(src.slice(ch.start, ch.end))) {
      // The block before a fence introduces it ("Before (wrong):").
      const from = prev && prev.kind === "block" && ch.kind === "fence"
        ? prev.start
        : ch.start;
      const piece = src.slice(from, ch.end);
      const found = await analyzeTree(
        piece,
        parse(piece),
        code,
        explainingFile,
        [...headings],
      );
      for (const f of found) {
        if (f.offset + from >= ch.start) {
          out.push({ ...f, offset: f.offset + from });
        }
      }
    }
    if (ch.kind === "heading") {
      const m = ATX.exec(src.slice(ch.start, ch.end))!;
      headings.length = m[1].length - 1;
      headings[m[1].length - 1] = m[2] ?? "";
    }
    prev = ch;
  }
  return out;
}

/** Findings of one parsed piece; offsets are relative to `src`. */
async function analyzeTree(
  src: string,
  root: Root,
  code: CodeAnalyzer,
  explainingFile: boolean,
  headings: string[],
): Promise<RawFinding[]> {
  const out: RawFinding[] = [];
  const walk = async (parent: Parent) => {
    let prevIntro = "";
    for (const n of parent.children as Nodes[]) {
      if (n.type === "heading") {
        const h = n as Heading;
        headings.length = h.depth - 1;
        const text = plain(h);
        const m = inlineText(src, h);
        // A heading is judged with the headings above it as context.
        out.push(...analyzeProse({
          text: m.text,
          map: m.map,
          context: headings.join(" "),
          explaining: explainingFile ||
            headings.some((t) => explainingHeading(t)),
        }));
        headings[h.depth - 1] = text;
        prevIntro = "";
        continue;
      }
      const explaining = explainingFile ||
        headings.some((t) => explainingHeading(t ?? ""));
      if (n.type === "paragraph") {
        const m = inlineText(src, n);
        out.push(...analyzeProse({
          text: m.text,
          map: m.map,
          context: headings.join(" "),
          explaining,
          paragraph: true,
        }));
        prevIntro = m.text;
      } else if (n.type === "code") {
        const quoted = explaining ||
          QUOTING_INTRO.test(prevIntro.split(/(?<=[.!?])\s+/).pop() ?? "");
        if (!quoted && /1_?000|1e3/i.test(n.value)) {
          const map = codeLineMap(src, n, n.value);
          const lang = (n.lang ?? "").toLowerCase();
          const found = await code(n.value, lang);
          if (found) {
            for (const f of found) out.push({ ...f, offset: map(f.offset) });
          } else {
            out.push(...analyzeProse({
              text: n.value,
              map,
              context: headings.join(" ") + " " + prevIntro,
              lines: true,
            }));
          }
        }
        prevIntro = "";
      } else if ("children" in n) {
        await walk(n as Parent);
        prevIntro = "";
      }
    }
  };
  await walk(root);
  return out;
}
