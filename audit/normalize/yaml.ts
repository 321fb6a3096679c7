// normalize-check: ignore-file -- this checker's own sources quote the forms it looks for
/**
 * YAML and JSON analyzer: the `yaml` package's CST keeps every comment and
 * scalar with its offset. Comments (consecutive lines merged) and string
 * values go to the prose judge with their key as context; a numeric value
 * 1000 under a normalizer-named key (`coord_scale: 1000`) is reported, while
 * counts and sizes (`width: 1000`, `num_bins: 1000`) are not. JSON is YAML's
 * flow syntax, so the same CST serves both.
 */
import { any, COORD, COUNT, NORM_NAME, TIME, UNIT, words } from "./context.ts";
import { analyzeProse, OffsetMap } from "./prose.ts";
import type { RawFinding } from "./types.ts";
import { lineIndex, lineStarts } from "./lines.ts";

// deno-lint-ignore no-explicit-any
type Tok = any;

type ParserCtor = new () => { parse(src: string): Iterable<Tok> };
let yamlPromise: Promise<ParserCtor> | undefined;

function yamlParser(): Promise<ParserCtor> {
  yamlPromise ??= import("yaml").then((m) => m.Parser as unknown as ParserCtor);
  return yamlPromise;
}

const GENERIC_LEAF = new Set([
  "by",
  "factor",
  "value",
  "base",
  "divide_by",
  "div",
]);

/** Keys whose values name things: ids, paths, files, runs. */
const ID_KEY = new Set(
  `id ids uid uuid key name names path paths file files filename dir dirs
  folder url uri href src image images img figure figures case cases run runs
  checkpoint ckpt glob pattern ref tag label labels`.split(/\s+/),
);

/**
 * A value with no space that is a path or an id (`figures/1000:9:4->5.png`,
 * `runs/stage2/1000/`, `val/1000/3`): two or more slashes, or one with a
 * file extension, a colon or a trailing slash.
 */
const PATH_LIKE =
  /^[^\s]*\/[^\s]*\/[^\s]*$|^[^\s/]*\/[^\s]*(?:\.[A-Za-z]\w{0,4}|:[^\s]*|\/)$/;

const SCALARS = new Set([
  "scalar",
  "single-quoted-scalar",
  "double-quoted-scalar",
  "block-scalar",
]);

/** Analyze YAML or JSON text. */
export async function analyzeYaml(src: string): Promise<RawFinding[]> {
  const Parser = await yamlParser();
  const comments: Tok[] = [];
  const values: Array<{ tok: Tok; key: string }> = [];

  const visit = (t: Tok, key: string) => {
    if (!t || typeof t !== "object") return;
    if (Array.isArray(t)) {
      for (const x of t) visit(x, key);
      return;
    }
    if (t.type === "comment") comments.push(t);
    if (SCALARS.has(t.type)) values.push({ tok: t, key });
    for (const k of Object.keys(t)) {
      if (k === "key" || k === "value") continue;
      const v = t[k];
      if (v && typeof v === "object") visit(v, key);
    }
    const itemKey = t.key && SCALARS.has(t.key.type)
      ? (key ? `${key}.` : "") + scalarText(t.key)
      : key;
    if (t.key) visit(t.key, key);
    if (t.value) visit(t.value, itemKey);
  };
  for (const doc of new Parser().parse(src)) visit(doc, "");

  const out: RawFinding[] = [];
  comments.sort((a, b) => a.offset - b.offset);
  let cur: OffsetMap | null = null;
  let lastLine = -2;
  const starts = lineStarts(src);
  const blocks: OffsetMap[] = [];
  for (const c of comments) {
    const line = lineIndex(starts, c.offset);
    if (!cur || line !== lastLine + 1) blocks.push(cur = new OffsetMap());
    else cur.push("\n", c.offset);
    cur.push(c.source, c.offset);
    lastLine = line;
  }
  for (const b of blocks) {
    out.push(...analyzeProse({ text: b.text, map: b.map }));
  }

  for (const { tok, key } of values) {
    const text = scalarText(tok);
    // The leaf key names the value; a generic leaf (`normalize: {by: 1000}`)
    // takes its parent's name too.
    const parts = key.split(".");
    const leaf = parts[parts.length - 1];
    const kw = GENERIC_LEAF.has(leaf.toLowerCase())
      ? words(parts.slice(-2).join(" "))
      : words(leaf);
    // The parent key vetoes (`loss: {scale: 1000}`) and vouches
    // (`coords: {divisor: 1000}`) too.
    const around = words(parts.slice(-2).join(" "));
    if (tok.type === "scalar" && /^[-+]?[\d._]+(?:e[-+]?\d+)?$/i.test(text)) {
      const v = Number(text.replace(/_/g, ""));
      if (
        v === 1000 && any(kw, NORM_NAME) && !any(around, TIME) &&
        !any(around, UNIT) && !any(around, COUNT) &&
        around.some((w) =>
          COORD.has(w) && !NORM_NAME.has(w) || w === "normalize"
        )
      ) {
        out.push({
          offset: tok.offset,
          rule: "norm-param-1000",
          message: `1000 as \`${key}\` sets the coordinate normalizer`,
        });
      }
      continue;
    }
    if (!/1_?000|thousandths/i.test(tok.source)) continue;
    // Identifiers, paths and case ids are data, not statements.
    if (any(words(leaf), ID_KEY) || PATH_LIKE.test(text)) continue;
    out.push(...analyzeProse({
      text: tok.source,
      map: (i) => tok.offset + i,
      context: key,
      paragraph: true,
    }));
  }
  return out;
}

function scalarText(t: Tok): string {
  const s: string = t.source ?? "";
  if (t.type === "double-quoted-scalar" || t.type === "single-quoted-scalar") {
    return s.slice(1, -1);
  }
  return s;
}
