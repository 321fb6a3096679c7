/**
 * Top-level statement spans of Python source, so the tree-sitter parse can
 * be limited (`includedRanges`) to the statements that involve a thousand:
 * parse cost grows with the text parsed, and most of a large file is
 * irrelevant. This is a line scanner for statement boundaries only (strings,
 * brackets, continuations, decorators, `else:` at column 0); every
 * judgement is still made on the syntax tree.
 */
import { lineIndex } from "./lines.ts";

/** `[start, end)` offsets of each top-level statement (with decorators). */
export function topLevelSpans(text: string): Array<[number, number]> {
  const starts: number[] = [0];
  let depth = 0;
  let quote: string | null = null; // ', ", ''' or """
  let continued = false;
  let decorated = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    // At a line start outside strings and brackets: a statement boundary?
    if (
      (i === 0 || text[i - 1] === "\n") && quote === null && depth === 0 &&
      !continued
    ) {
      const c = text[i];
      if (c !== " " && c !== "\t" && c !== "\n" && c !== "\r" && c !== "#") {
        const rest = text.slice(i, i + 8);
        const joins = /^(?:else|elif|except|finally)\b/.test(rest);
        if (!joins && !decorated && i > 0) starts.push(i);
        decorated = c === "@";
      }
    }
    continued = false;
    const c = text[i];
    if (quote !== null) {
      if (c === "\\") {
        i += 2;
        continue;
      }
      if (quote.length === 1 && c === "\n") quote = null; // unterminated
      else if (text.startsWith(quote, i)) {
        i += quote.length;
        quote = null;
        continue;
      }
      i++;
      continue;
    }
    if (c === "#") {
      const nl = text.indexOf("\n", i);
      i = nl < 0 ? n : nl;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = text.startsWith(c.repeat(3), i) ? c.repeat(3) : c;
      i += quote.length;
      continue;
    }
    if (c === "(" || c === "[" || c === "{") depth++;
    else if ((c === ")" || c === "]" || c === "}") && depth > 0) depth--;
    else if (c === "\\" && text[i + 1] === "\n") {
      continued = true;
      i += 2;
      continue;
    }
    i++;
  }
  const spans: Array<[number, number]> = [];
  for (let k = 0; k < starts.length; k++) {
    spans.push([starts[k], k + 1 < starts.length ? starts[k + 1] : n]);
  }
  return spans;
}

/** A tree-sitter range over `[start, end)`. */
export function toRange(starts: number[], start: number, end: number) {
  const r0 = lineIndex(starts, start);
  const r1 = lineIndex(starts, end);
  return {
    startIndex: start,
    endIndex: end,
    startPosition: { row: r0, column: start - starts[r0] },
    endPosition: { row: r1, column: end - starts[r1] },
  };
}

const HOT = /1_?000|1e3/i;
const CONST_EXPR = /\d+(?:\.\d*)?\s*[-+*]\s*\d+(?:\.\d*)?/;
/** `NAME = ...1000...`, `name=1000.0` (defaults), `self.x = 1000`. */
const HOT_BINDING =
  /([A-Za-z_][\w.]*)\s*(?::[^=\n]+)?=(?!=)[^\n]*?(?:1_?000|1e3)/gi;

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The spans to parse: statements with a thousand (or a constant
 * expression), then those that use a name bound to one, to a fixpoint.
 * Returns null when that is most of the file (parse it whole).
 */
export function selectSpans(text: string): Array<[number, number]> | null {
  const spans = topLevelSpans(text);
  if (spans.length < 3) return null;
  const picked = spans.map(([s, e]) => {
    const t = text.slice(s, e);
    return HOT.test(t) || CONST_EXPR.test(t);
  });
  const names = new Set<string>();
  for (let round = 0; round < 3; round++) {
    const before = names.size;
    spans.forEach(([s, e], k) => {
      if (!picked[k]) return;
      for (const m of text.slice(s, e).matchAll(HOT_BINDING)) {
        // `self.scale` is used as `self.scale`; match the attribute part.
        names.add(m[1].slice(m[1].lastIndexOf(".") + 1));
      }
    });
    if (names.size === 0 || (round > 0 && names.size === before)) break;
    const re = new RegExp(
      `(?<![\\w])(?:${[...names].map(escape).join("|")})(?![\\w])`,
    );
    spans.forEach(([s, e], k) => {
      if (!picked[k] && re.test(text.slice(s, e))) picked[k] = true;
    });
  }
  let size = 0;
  const out: Array<[number, number]> = [];
  spans.forEach(([s, e], k) => {
    if (!picked[k]) return;
    size += e - s;
    const last = out[out.length - 1];
    if (last && last[1] === s) last[1] = e;
    else out.push([s, e]);
  });
  return size > 0.8 * text.length ? null : out;
}
