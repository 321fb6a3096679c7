// normalize-check: ignore-file -- this checker's own sources quote the forms it looks for
/**
 * Prose judgement: Markdown paragraphs, comments, docstrings and YAML
 * strings. The structural parsers have already separated prose from code;
 * here a sentence is scanned for arithmetic with a thousand (`k/1000`,
 * `round(x/width*1000)`, "divided by 1000") and the sentence decides whether
 * it states the convention or forbids, explains or quotes it.
 */
import { any, TIME, words } from "./context.ts";
import type { RawFinding } from "./types.ts";

/** A piece of prose and where its characters come from in the file. */
export interface ProseBlock {
  text: string;
  /** Block index -> file offset. */
  map: (i: number) => number;
  /** Heading, key or target text around the block (coordinate context). */
  context?: string;
  /** Set when the section or file as a whole quotes the old convention. */
  explaining?: boolean;
  /** Treat every line as its own sentence (code without a parser). */
  lines?: boolean;
  /**
   * Wrapped paragraph text (Markdown, docstrings, string values): a line
   * break does not end a sentence. In comment blocks it does, since
   * consecutive comment lines are often separate notes.
   */
  paragraph?: boolean;
}

/** Words that make a sentence about coordinates and bins. */
const PROSE_COORD = new Set(
  `coord coords coordinate coordinates bin bins bbox bboxes box boxes xyxy
  xywh x y x1 y1 x2 y2 cx cy k normalized normalised normalize normalise
  normalization normalisation decode decodes decoded decoding encode encodes
  encoded encoding quantize quantized quantization dequantize pixel pixels px
  grid raster width height shift offset image extent token tokens`
    .split(/\s+/),
);

/** Anywhere in the sentence: the sentence forbids or explains. */
const STRONG_CUE = new RegExp(
  String.raw`\b(?:must\s+not|mustn't|shall\s+not|should\s+not|never|` +
    String.raw`forbid\w*|prohibit\w*|wrong|incorrect\w*|bugs?|buggy|legacy|` +
    String.raw`deprecat\w*|obsolete|leftovers?|reintroduc\w*|regress\w*|` +
    String
      .raw`pitfalls?|mistakes?|mistaken\w*|erroneous\w*|banned|disallow\w*|` +
    String
      .raw`reject\w*|flags?|flagged|flagging|detects?|detected|catch(?:es)?|reports|` +
    String.raw`caught|no\s+longer|used\s+to|why|avoid\w*|don't|do\s+not|` +
    String.raw`does\s+not|doesn't|instead\s+of|rather\s+than|fix|fixes|fixed|` +
    String
      .raw`old|older|previous\w*|formerly|anti-?patterns?|stale|off-by-one|` +
    // The cleanup itself: "Ban `/1000` ...", "replace them with `/999`",
    // "[x] remove k/1000 from ...", "`x1 / 1000` becomes `x1 / 999`".
    String.raw`bans?|remov\w*|replac\w*|drop|drops|dropped|delet\w*|` +
    String.raw`eliminat\w*|purg\w*|becomes?|became|gone|` +
    // "Nothing in this repository may normalize bins by 1000".
    String.raw`nothing\s+(?:[\w-]+\s+){0,5}(?:may|must|shall|should|can)|` +
    String.raw`nowhere)\b`,
  "i",
);

/**
 * Counts, not coordinates: "`ceil(top_k * 1000)` candidates", "50 of the
 * 1000 coord tokens". A product in such a sentence counts vocabulary.
 */
const COUNT_SENTENCE = new Set(
  `topk topp vocab vocabulary candidates candidate`.split(/\s+/),
);

/** Near the mention only: negation or history. */
const WEAK_CUE =
  /\b(?:not|no|nor|without|was|were|vs|versus|nothing|except|isn't|aren't|wasn't|weren't)\b|≠|!=/i;

/** Section headings under which the old convention is quoted, not stated. */
export const EXPLAINING_HEADING =
  /changelog|change\s+log|history|release\s+notes|migrat|pitfall|anti-?pattern|mistake|forbidden|what\s+not\s+to|\bwhy\b|\bnot\b|legacy|problems?\b|troubleshoot|known\s+issues|gotchas?|caveats?/i;

const NUM0 = String.raw`1_?000(?:\.0+)?`;
const NUM = String.raw`${NUM0}(?![\w])`;
/** `x/1000`, `/ 1000.0`: the lhs is inspected separately. */
const DIV = new RegExp(String.raw`/\s*${NUM}`, "g");
/** `* 1000`, `1000 *`, `× 1000`. */
const MUL = new RegExp(
  String.raw`[*×]\s*${NUM}|(?<![\w./])${NUM0}\s*[*×](?![*])`,
  "g",
);
/** "divided by 1000", "normalized to 1000", "scaled by `1000`". */
const VERB = new RegExp(
  String.raw`\b(?:divid|divis|normali[sz]|rescal|scal|multipl|quantiz)\w*\s+` +
    // "divide the bin index by 1000": a few words may sit before "by".
    String.raw`(?:(?:[\w\x60-]+\s+){0,4}?(?:by|to|with|over|into|in)\s+)?` +
    String.raw`(?:a\s+factor\s+of\s+)?\x60?${NUM}\x60?`,
  "gi",
);
/** "set `coord_scale: 1000`", "norm=1000": a normalizer given the value. */
const SETTING = new RegExp(
  String
    .raw`\b\w*(?:scale|norm|normali[sz]\w*|divisor|denom\w*)\w*\x60?\s*[:=]\s*\x60?${NUM}`,
  "gi",
);
/** "in 1000ths of the image", "thousandths". */
const THS = /\b(?:1_?000ths|thousandths)\b/gi;
/** "quantized to 1000 bins" counts bins: the number is followed by a noun. */
const COUNT_NOUN =
  /^\s*(?:bins?|tokens?|samples?|steps?|classes|values|levels|ids|entries|items|images|pixels|px|records|objects|boxes)\b/i;

interface Mention {
  start: number;
  end: number;
  form: string;
  /** Operand text before a `/` (to spot `elapsed/1000`). */
  lhs: string;
  /** Where the operator or verb starts: cues are read before it. */
  op: number;
  /** A product (`x * 1000`), which a count can explain. */
  mul?: boolean;
}

function findMentions(text: string): Mention[] {
  const out: Mention[] = [];
  for (const m of text.matchAll(DIV)) {
    const slash = m.index;
    const end = slash + m[0].length;
    if (text[end] === "/" || text[slash - 1] === "/") continue; // a path or `//`
    const before = text.slice(Math.max(0, slash - 40), slash);
    // `x / 1000` and `x/1000` have an operand; in "normalized by /1000"
    // the word before an unbalanced slash is not one.
    const spacedAfter = /^\/\s/.test(m[0]);
    const lhsM = (spacedAfter
      ? /([A-Za-z_][\w.]*|\d+(?:\.\d+)?|\))\s*$/
      : /([A-Za-z_][\w.]*|\d+(?:\.\d+)?|\))$/)
      .exec(before);
    const lhs = lhsM ? lhsM[1] : "";
    const start = lhsM ? slash - lhsM[0].length : slash;
    // `runs/step_1000` style paths: a slash-separated token with no operator.
    const tokStart = text.slice(0, start).search(/[^\s`'"(\[]*$/);
    const token = text.slice(tokStart, end);
    if ((token.match(/\//g) ?? []).length > 1 && !/[*+()=-]/.test(token)) {
      continue;
    }
    if (/:\/\//.test(text.slice(tokStart, end))) {
      continue;
    }
    out.push({ start, end, form: text.slice(start, end), lhs, op: slash });
  }
  for (const m of text.matchAll(MUL)) {
    // A JSDoc leader (` * 1000-step grid`) and "1000-based" are no products.
    const end = m.index + m[0].length;
    if (/-[A-Za-z]/.test(text.slice(end, end + 2))) continue;
    const lineStart = text.lastIndexOf("\n", m.index - 1) + 1;
    if (m[0].trimStart()[0] === "*" && !text.slice(lineStart, m.index).trim()) {
      continue;
    }
    // `1000 * 28 * 28` and `3 * 1000` are counts; `0.5 * 1000` encodes.
    const other = m[0].trimStart().startsWith("1")
      ? /^\s*(\d+(?:\.\d+)?)(?![\w.])/.exec(text.slice(m.index + m[0].length))
      : /(?<![\w.])(\d+(?:\.\d+)?)\s*$/.exec(text.slice(0, m.index));
    if (other && Number(other[1]) > 1) continue;
    const lhs = m[0].trimStart().startsWith("1")
      ? ""
      : /([A-Za-z_][\w.]*)\s*$/.exec(
        text.slice(Math.max(0, m.index - 40), m.index),
      )
        ?.[1] ?? "";
    out.push({
      start: m.index,
      end: m.index + m[0].length,
      form: m[0],
      lhs,
      op: m.index,
      mul: true,
    });
  }
  for (const re of [VERB, THS, SETTING]) {
    for (const m of text.matchAll(re)) {
      const end = m.index + m[0].length;
      if (re === VERB && COUNT_NOUN.test(text.slice(end))) continue;
      out.push({ start: m.index, end, form: m[0], lhs: "", op: m.index });
    }
  }
  out.sort((a, b) => a.start - b.start);
  // One finding per spot: overlapping matches (`x/1000*640`) merge.
  const merged: Mention[] = [];
  for (const m of out) {
    const last = merged[merged.length - 1];
    if (last && m.start < last.end) continue;
    merged.push(m);
  }
  return merged;
}

let segmenter: Intl.Segmenter | undefined;

/** Sentence spans of a block (ICU sentence rules; lines for code). */
function sentences(b: ProseBlock): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  if (b.lines) {
    let at = 0;
    for (const line of b.text.split("\n")) {
      spans.push([at, at + line.length]);
      at += line.length + 1;
    }
    return spans;
  }
  segmenter ??= new Intl.Segmenter("en", { granularity: "sentence" });
  // ICU ends a sentence at every line feed; a wrapped paragraph is one
  // text. Newlines before list items and table rows stay (same length, so
  // offsets hold).
  const flat = b.paragraph
    ? b.text.replace(/\n(?!\s*(?:[-*+|>]|\d+[.)])\s)/g, " ")
    : b.text;
  for (const s of segmenter.segment(flat)) {
    // Table rows and list-like lines in one paragraph are separate claims;
    // the cells of one row are read together ("| `k/1000` | forbidden |").
    let at = s.index;
    for (const part of s.segment.split(/(?<=\n)(?=\s*[-*|])/)) {
      spans.push([at, at + part.length]);
      at += part.length;
    }
  }
  return spans;
}

function wordsBefore(text: string, n: number): string {
  return text.split(/\s+/).filter(Boolean).slice(-n).join(" ");
}

function wordsAfter(text: string, n: number): string {
  return text.split(/\s+/).filter(Boolean).slice(0, n).join(" ");
}

/**
 * Whether a section heading makes its section quote the old convention:
 * "Why 999", "Migration", or a heading that names the 1000 form itself as
 * leftover, forbidden or wrong ("Leftover /1000 normalization is found").
 */
export function explainingHeading(text: string): boolean {
  if (EXPLAINING_HEADING.test(text)) return true;
  return STRONG_CUE.test(text) && findMentions(text).length > 0;
}

/** Findings for one prose block. */
export function analyzeProse(b: ProseBlock): RawFinding[] {
  if (b.explaining) return [];
  const mentions = findMentions(b.text);
  if (mentions.length === 0) return [];
  const spans = sentences(b);
  const ctxWords = b.context ? words(b.context) : [];
  const out: RawFinding[] = [];
  const reported = new Set<number>();
  for (const m of mentions) {
    const span = spans.find(([s, e]) => m.start >= s && m.start < e) ??
      [0, b.text.length];
    // One finding per sentence: "normalized by 1000: the position is `k / 1000`".
    if (reported.has(span[0])) continue;
    const sentence = b.text.slice(span[0], span[1]);
    if (STRONG_CUE.test(sentence)) continue;
    const before = wordsBefore(b.text.slice(span[0], m.op), 6);
    const after = wordsAfter(b.text.slice(m.end, span[1]), 3);
    if (WEAK_CUE.test(before) || WEAK_CUE.test(after)) continue;
    if (any(words(m.lhs), TIME)) continue;
    const sw = words(sentence);
    if (
      m.mul && (any(words(m.lhs), COUNT_SENTENCE) || any(sw, COUNT_SENTENCE) ||
        any(ctxWords, COUNT_SENTENCE))
    ) continue;
    const coord = [...sw, ...ctxWords].some((w) => PROSE_COORD.has(w));
    if (!coord) continue;
    if (any(sw, TIME) && !words(m.form).some((w) => PROSE_COORD.has(w))) {
      continue;
    }
    const form = m.form.replace(/\s+/g, " ").trim();
    reported.add(span[0]);
    out.push({
      offset: b.map(m.start),
      rule: "prose-1000",
      message: `text states coordinates normalize with 1000: \`${form}\``,
    });
  }
  return out;
}

/** Offset mapping built from pieces of a block and where each came from. */
export class OffsetMap {
  #starts: number[] = [];
  #files: number[] = [];
  #len = 0;
  text = "";

  /** Append `piece`, whose first character sits at `fileOffset`. */
  push(piece: string, fileOffset: number): void {
    this.#starts.push(this.#len);
    this.#files.push(fileOffset);
    this.text += piece;
    this.#len += piece.length;
  }

  map = (i: number): number => {
    let lo = 0, hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.#files[lo] + (i - this.#starts[lo]);
  };
}
