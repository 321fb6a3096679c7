// normalize-check: ignore-file -- this checker's own sources quote the forms it looks for
/**
 * Python analyzer: a tree-sitter syntax tree (web-tree-sitter with the
 * `tree-sitter-python` grammar's wasm, both from npm, loaded on first use)
 * walked for arithmetic with 1000. Names are resolved through assignments,
 * default parameters, `for`/comprehension bindings and `self.x` attributes,
 * so a `scale=1000.0` default that reaches `v / scale` is reported where the
 * 1000 is written. Comments and docstrings go to the prose judge.
 */
import type { Language, Node, Parser } from "web-tree-sitter";
import {
  type ArithCandidate,
  isThousand,
  judge,
  type Verdict,
  verdictsToFindings,
  type Via,
} from "./arith.ts";
import { any, COORD, COUNT, NORM_NAME, TIME, UNIT, words } from "./context.ts";
import { analyzeProse, OffsetMap } from "./prose.ts";
import { selectSpans, toRange } from "./pychunks.ts";
import { lineStarts } from "./lines.ts";
import type { RawFinding } from "./types.ts";

let parserPromise: Promise<Parser> | undefined;

/** The shared parser; the grammar wasm is read once per process. */
function pythonParser(): Promise<Parser> {
  parserPromise ??= (async () => {
    const ts = await import("web-tree-sitter");
    await ts.Parser.init();
    const wasm = new URL(
      import.meta.resolve("tree-sitter-python/tree-sitter-python.wasm"),
    );
    const lang: Language = await ts.Language.load(await Deno.readFile(wasm));
    const parser = new ts.Parser();
    parser.setLanguage(lang);
    return parser;
  })();
  return parserPromise;
}

type DefHow = "default" | "constant" | "loop";

/** A binding; its value node is fetched from the tree only when used. */
class Def {
  #value: Node | null | undefined;
  constructor(
    readonly node: Node,
    readonly how: DefHow,
    readonly field: "right" | "value",
  ) {}
  get value(): Node | null {
    if (this.#value === undefined) {
      this.#value = this.node.childForFieldName(this.field);
    }
    return this.#value;
  }
}

/** Text that may hold a thousand: the cheap gate before any tree call. */
const HOT = /1_?000|1e3/i;
const CONST_EXPR = /\d\s*[-+*\/]\s*\d/;
const MODULE = -1;
const ASSIGN_NAME = /^([A-Za-z_][\w.]*)\s*(?::[^=\n]+)?=(?!=)/;
const PARAM_NAME = /^([A-Za-z_]\w*)\s*[:=]/;
const FOR_NAMES = /^(?:async\s+)?for\s+\(?([\w\s,]+?)\)?\s+in\b/;

/** Division and multiplication spelled as calls (torch, numpy, tf). */
const ARITH_CALL: Record<string, "div" | "mul"> = {
  div: "div",
  divide: "div",
  true_divide: "div",
  truediv: "div",
  mul: "mul",
  multiply: "mul",
};
const STATEMENT_END = new Set([
  "expression_statement",
  "return_statement",
  "assert_statement",
  "function_definition",
  "class_definition",
  "module",
  "block",
]);
/** Operands that repeat rather than scale: `"-" * 1000`, `[0] * 1000`. */
const SEQUENCE = new Set([
  "string",
  "concatenated_string",
  "list",
  "tuple",
  "list_comprehension",
]);

/** What surrounds an operation: see `ArithCandidate`. */
interface Context {
  ctx: string[];
  target: string[];
  test: string[];
  body: string[];
  bound: boolean;
  inTest: boolean;
  inIndex: boolean;
}

const TEST_CALL =
  /^(?:assert\w*|\w+\.assert\w*|approx|pytest\.approx|\w*\.?isclose|\w*\.?allclose|\w*\.?testing\.assert\w*)$/;

interface Fold {
  value: number;
  /** Offset of the literal the value came from. */
  literalOffset: number;
  via?: Via;
}

class PyAnalysis {
  /** scope (function start offset, MODULE) -> name -> defs. */
  defs = new Map<number, Map<string, Def[]>>();
  /** Function and lambda spans, sorted by start, for scope lookups. */
  scopes: Array<[number, number]> = [];
  candidates: Node[] = [];
  comments: Node[] = [];
  docstrings: Node[] = [];
  keywordArgs: Node[] = [];
  /** Names bound (directly or through other names) to text with 1000. */
  hotNames = new Set<string>();
  #hotRe: RegExp | null = null;

  constructor(readonly text: string) {}

  /** Scopes containing `offset`, innermost first, then the module. */
  scopeChain(offset: number): number[] {
    const chain: number[] = [];
    for (const [start, end] of this.scopes) {
      if (start > offset) break;
      if (offset < end) chain.push(start);
    }
    chain.reverse();
    chain.push(MODULE);
    return chain;
  }

  addDef(name: string, scope: number, def: Def): void {
    // Attributes (`self.scale`) are shared by all methods of the file.
    const s = name.includes(".") ? MODULE : scope;
    let m = this.defs.get(s);
    if (!m) this.defs.set(s, m = new Map());
    const list = m.get(name);
    if (list) list.push(def);
    else m.set(name, [def]);
  }

  lookup(name: string, from: Node): Def[] {
    if (name.includes(".")) return this.defs.get(MODULE)?.get(name) ?? [];
    for (const s of this.scopeChain(from.startIndex)) {
      const found = this.defs.get(s)?.get(name);
      if (found) return found;
    }
    return [];
  }

  /** Whether `text` may involve a thousand: a literal or a hot name. */
  hot(text: string): boolean {
    if (HOT.test(text)) return true;
    return this.#hotRe !== null && this.#hotRe.test(text);
  }

  /**
   * Gather the nodes of interest in one call into the wasm side
   * (`descendantsOfType`), read names from node text, and touch the tree
   * again only for nodes whose text may involve a thousand: per-node calls
   * into wasm cost more than the parse itself.
   */
  collect(root: Node): void {
    const nodes = root.descendantsOfType([
      "function_definition",
      "lambda",
      "binary_operator",
      "augmented_assignment",
      "assignment",
      "default_parameter",
      "typed_default_parameter",
      "for_in_clause",
      "for_statement",
      "keyword_argument",
      "comment",
      "expression_statement",
      "call",
    ]);
    const arith: Node[] = [];
    const defNodes: Array<[string, Node]> = [];
    for (const n of nodes) {
      if (!n) continue;
      switch (n.type) {
        case "function_definition":
        case "lambda":
          this.scopes.push([n.startIndex, n.endIndex]);
          break;
        case "binary_operator":
        case "augmented_assignment":
        case "call":
          arith.push(n);
          break;
        case "keyword_argument":
          this.keywordArgs.push(n);
          break;
        case "comment":
          this.comments.push(n);
          break;
        case "expression_statement":
          if (/^[rRbBuUfF]{0,2}["']/.test(n.text)) {
            const str = n.namedChild(0);
            if (n.namedChildCount === 1 && str?.type === "string") {
              this.docstrings.push(str);
            }
          }
          break;
        default: {
          const t = n.text;
          if (n.type === "assignment") {
            const m = ASSIGN_NAME.exec(t);
            if (m) defNodes.push([m[1], n]);
          } else if (n.type === "for_in_clause" || n.type === "for_statement") {
            const m = FOR_NAMES.exec(t);
            for (const name of m ? m[1].split(",") : []) {
              if (/^[A-Za-z_]\w*$/.test(name.trim())) {
                defNodes.push([name.trim(), n]);
              }
            }
          } else {
            const m = PARAM_NAME.exec(t);
            if (m) defNodes.push([m[1], n]);
          }
        }
      }
    }
    this.scopes.sort((a, b) => a[0] - b[0]);
    for (const [name, n] of defNodes) {
      const how: DefHow = n.type === "assignment"
        ? "constant"
        : n.type.startsWith("for")
        ? "loop"
        : "default";
      const field = n.type.endsWith("default_parameter") ? "value" : "right";
      this.addDef(
        name,
        this.scopeChain(n.startIndex)[0],
        new Def(n, how, field),
      );
    }
    // Names that carry a thousand, through chains like
    // `DEFAULT = 1000.0` -> `def f(v, scale=DEFAULT)`.
    for (let round = 0; round < 4; round++) {
      const before = this.hotNames.size;
      for (const [name, n] of defNodes) {
        if (!n.type.startsWith("for") && this.hot(n.text.slice(name.length))) {
          this.hotNames.add(name);
        }
      }
      if (this.hotNames.size === before) break;
      const alt = [...this.hotNames].map((x) => x.replace(/[.]/g, "\\.")).join(
        "|",
      );
      this.#hotRe = new RegExp(`(?<![\\w.])(?:${alt})(?![\\w])`);
    }
    for (const n of arith) {
      // Constant expressions (`999 + 1`) fold to a thousand too.
      if (!this.hot(n.text) && !CONST_EXPR.test(n.text)) continue;
      if (n.type === "call") {
        if (this.operands(n)) this.candidates.push(n);
        continue;
      }
      const op = n.childForFieldName("operator")?.type;
      if (
        op === "/" || op === "//" || op === "*" || op === "/=" ||
        op === "//=" || op === "*="
      ) {
        this.candidates.push(n);
      }
    }
  }

  fold(n: Node | null, depth = 0): Fold | null {
    if (!n || depth > 6) return null;
    switch (n.type) {
      case "integer":
      case "float": {
        const v = Number(n.text.replace(/_/g, "").replace(/[jJlL]$/, ""));
        return Number.isFinite(v)
          ? { value: v, literalOffset: n.startIndex }
          : null;
      }
      case "parenthesized_expression":
        return this.fold(n.namedChild(0), depth + 1);
      case "unary_operator": {
        const f = this.fold(n.childForFieldName("argument"), depth + 1);
        const op = n.childForFieldName("operator")?.type;
        if (!f) return null;
        return op === "-" ? { ...f, value: -f.value } : op === "+" ? f : null;
      }
      case "binary_operator": {
        const a = this.fold(n.childForFieldName("left"), depth + 1);
        const b = this.fold(n.childForFieldName("right"), depth + 1);
        if (!a || !b) return null;
        const op = n.childForFieldName("operator")?.type;
        const v = op === "+"
          ? a.value + b.value
          : op === "-"
          ? a.value - b.value
          : op === "*"
          ? a.value * b.value
          : op === "/"
          ? a.value / b.value
          : op === "**"
          ? a.value ** b.value
          : NaN;
        return Number.isFinite(v)
          ? { value: v, literalOffset: a.literalOffset }
          : null;
      }
      case "call": {
        // float(1000), int(1e3)
        const fn = n.childForFieldName("function")?.text;
        const args = n.childForFieldName("arguments");
        if ((fn === "float" || fn === "int") && args?.namedChildCount === 1) {
          return this.fold(args.namedChild(0), depth + 1);
        }
        return null;
      }
      case "identifier":
      case "attribute": {
        const defs = this.lookup(n.text, n).filter((d) => d.how !== "loop");
        if (defs.length === 0) return null;
        const folds = defs.map((d) => this.fold(d.value, depth + 1));
        const first = folds[0];
        if (!first || folds.some((f) => !f || f.value !== first.value)) {
          return null;
        }
        const how = defs.some((d) => d.how === "default")
          ? "default"
          : "constant";
        return {
          value: first.value,
          literalOffset: first.literalOffset,
          via: first.via ??
            { name: n.text, literalOffset: first.literalOffset, how },
        };
      }
    }
    return null;
  }

  /** Words of an operand and of what its names were bound to. */
  textOf(n: Node): string {
    return n.text;
  }

  boundWords(n: Node): string[] {
    const out: string[] = [];
    const stack: Node[] = [n];
    let budget = 50;
    while (stack.length && budget-- > 0) {
      const c = stack.pop()!;
      if (c.type === "identifier" || c.type === "attribute") {
        for (const d of this.lookup(c.text, c)) {
          const v = d.value;
          if (!v) continue;
          out.push(...words(v.text.slice(0, 200)));
          // One more hop: `for v in box` where `box = pred["bbox"]`.
          if (v.type === "identifier") {
            for (const d2 of this.lookup(v.text, v)) {
              out.push(...words(d2.value?.text.slice(0, 200) ?? ""));
            }
          }
        }
        if (c.type === "attribute") continue;
      }
      for (const ch of c.namedChildren) if (ch) stack.push(ch);
    }
    return out;
  }

  context(n: Node): Context {
    const c: Context = {
      ctx: [],
      target: [],
      test: [],
      body: [],
      bound: false,
      inTest: false,
      inIndex: false,
    };
    const named = (words: string[]) => {
      c.ctx.push(...words);
      c.target.push(...words);
    };
    let child: Node = n;
    let statementDone = false;
    for (let p = n.parent; p; child = p, p = p.parent) {
      if (!statementDone) {
        switch (p.type) {
          case "assignment":
          case "augmented_assignment":
            named(words(p.childForFieldName("left")?.text ?? ""));
            break;
          case "keyword_argument":
          case "default_parameter":
          case "typed_default_parameter":
            named(words(p.childForFieldName("name")?.text ?? ""));
            break;
          case "pair":
            named(words(p.childForFieldName("key")?.text ?? ""));
            break;
          case "call": {
            const fn = p.childForFieldName("function")?.text ?? "";
            c.ctx.push(...words(fn));
            if (TEST_CALL.test(fn)) {
              c.inTest = true;
              c.test.push(
                ...words(p.text.slice(0, 300)),
                ...this.boundWords(p),
              );
            }
            // `min(999, round(x * 1000))`: clamped to the last bin.
            const args = p.childForFieldName("arguments");
            if (args?.namedChildren.some((a) => a?.text === "999")) {
              c.ctx.push("bin");
            }
            break;
          }
          case "subscript":
            if (p.childForFieldName("value")?.id !== child.id) c.inIndex = true;
            break;
          case "assert_statement":
            c.inTest = true;
            break;
          case "comparison_operator": {
            const ws = words(p.text.slice(0, 300));
            c.ctx.push(...ws);
            // `out = dec.decode_boxes(...)` then `out[0] == approx(...)`.
            c.test.push(...ws, ...this.boundWords(p));
            if (
              p.children.some((x) => x && /^[<>]=?$/.test(x.type))
            ) c.bound = true;
            break;
          }
        }
        if (STATEMENT_END.has(p.type)) statementDone = true;
      }
      if (p.type === "lambda" && p.parent?.type === "argument_list") continue;
      if (p.type === "function_definition" || p.type === "lambda") {
        const name = p.childForFieldName("name")?.text ?? "";
        c.ctx.push(...words(name));
        if (c.inTest && p.type === "function_definition") {
          c.body.push(...words(p.text.slice(0, 2000)));
        }
        // `norm = lambda v: ...`: the name the lambda is stored under.
        const owner = p.parent;
        const stored = owner?.type === "assignment"
          ? owner.childForFieldName("left")
          : owner?.type === "keyword_argument"
          ? owner.childForFieldName("name")
          : owner?.type === "pair"
          ? owner.childForFieldName("key")
          : null;
        if (p.type === "lambda" && stored) c.ctx.push(...words(stored.text));
        break;
      }
    }
    return c;
  }

  /** Operands of `a / b`, `a *= b`, or `x.div(b)` / `np.divide(a, b)`. */
  operands(n: Node): { kind: "div" | "mul"; left: Node; right: Node } | null {
    if (n.type === "call") {
      const fn = n.childForFieldName("function");
      const name = fn?.type === "attribute"
        ? fn.childForFieldName("attribute")?.text
        : fn?.text;
      const kind = name && ARITH_CALL[name];
      const args = (n.childForFieldName("arguments")?.namedChildren ?? [])
        .filter((a): a is Node => !!a && a.type !== "keyword_argument");
      if (!kind || !fn) return null;
      if (args.length >= 2) return { kind, left: args[0], right: args[1] };
      const obj = fn.type === "attribute"
        ? fn.childForFieldName("object")
        : null;
      if (args.length === 1 && obj) return { kind, left: obj, right: args[0] };
      return null;
    }
    const op = n.childForFieldName("operator")?.type ?? "";
    const left = n.childForFieldName("left");
    const right = n.childForFieldName("right");
    if (!left || !right) return null;
    return { kind: op.startsWith("*") ? "mul" : "div", left, right };
  }

  candidate(n: Node): ArithCandidate | null {
    const ops = this.operands(n);
    if (!ops) return null;
    const { kind, left, right } = ops;
    let thousand: Fold | null = null;
    let operand: Node = left;
    const fr = this.fold(right);
    if (isThousand(fr?.value ?? null)) {
      thousand = fr;
      operand = left;
    } else if (kind === "mul") {
      const fl = this.fold(left);
      if (isThousand(fl?.value ?? null)) {
        thousand = fl;
        operand = right;
      }
    }
    if (!thousand) return null;
    const c = this.context(n);
    if (n.type === "augmented_assignment") {
      c.ctx.push(...words(left.text));
      c.target.push(...words(left.text));
    }
    const ov = this.fold(operand);
    const op = n.childForFieldName("operator")?.type ?? "";
    // `v * 1000 / n`: the product's divisor.
    let up = n.parent;
    let below: Node = n;
    while (up?.type === "parenthesized_expression") {
      below = up;
      up = up.parent;
    }
    const per = up?.type === "binary_operator" &&
        up.childForFieldName("operator")?.type === "/" &&
        up.childForFieldName("left")?.id === below.id
      ? words(up.childForFieldName("right")?.text ?? "")
      : null;
    return {
      kind,
      offset: n.startIndex,
      text: n.text.replace(/\s+/g, " "),
      operandWords: words(this.textOf(operand)),
      boundWords: this.boundWords(operand),
      contextWords: c.ctx,
      targetWords: c.target,
      testWords: c.test,
      testBodyWords: c.body,
      bound: c.bound,
      operandValue: ov ? ov.value : null,
      sequence: SEQUENCE.has(operand.type),
      floor: op === "//" || op === "//=",
      perWords: per,
      inTest: c.inTest,
      inIndex: c.inIndex,
      via: thousand.via,
    };
  }

  /**
   * `coord_scale=1000` defaults, constants and keyword arguments by name.
   * A normalizer name (`scale`) alone is no evidence of coordinates: the
   * name must say so (`coord_scale`), or the call it is passed to
   * (`draw(boxes, scale=1000)`). A name used in arithmetic is judged there.
   */
  namedNormalizers(): Verdict[] {
    const out: Verdict[] = [];
    const consider = (
      name: string,
      value: Node | null,
      how: Via["how"],
      around: string[] = [],
    ) => {
      if (!value) return;
      const ws = words(name);
      if (!any(ws, NORM_NAME) || any(ws, TIME) || any(ws, UNIT)) return;
      if (any(ws, COUNT)) return;
      const evidence = ws.some((w) => COORD.has(w) && !NORM_NAME.has(w)) ||
        any(around, COORD);
      if (!evidence) return;
      const f = this.fold(value);
      if (!f || !isThousand(f.value)) return;
      out.push({
        rule: "norm-param-1000",
        offset: f.literalOffset,
        message: `1000 as ${
          how === "default" ? "default parameter" : how
        } \`${name}\` sets the coordinate normalizer`,
      });
    };
    for (const scope of this.defs.values()) {
      for (const [name, defs] of scope) {
        for (const d of defs) {
          if (d.how !== "loop" && this.hot(d.node.text)) {
            consider(name, d.value, d.how);
          }
        }
      }
    }
    for (const k of this.keywordArgs) {
      if (!this.hot(k.text)) continue;
      const name = k.childForFieldName("name");
      const value = k.childForFieldName("value");
      if (!name || !value) continue;
      // The call's name and its other arguments say what is normalized.
      const args = k.parent;
      const call = args?.parent;
      const around = [
        ...words(call?.childForFieldName("function")?.text ?? ""),
        ...(args?.namedChildren ?? []).filter((a) => a && a.id !== k.id)
          .flatMap((a) => words(a!.text.slice(0, 100))),
      ];
      consider(name.text, value, "argument", around);
      // argparse/click: `add_argument("--coord-norm", default=1000.0)` names
      // the parameter in its first string argument.
      if (name.text === "default") {
        const first = args?.namedChild(0);
        if (first?.type === "string") consider(first.text, value, "default");
      }
    }
    return out;
  }
}

/** Merge full-line comments on consecutive lines into one prose block. */
function commentBlocks(text: string, comments: Node[]): OffsetMap[] {
  const blocks: OffsetMap[] = [];
  let cur: OffsetMap | null = null;
  let lastRow = -2;
  for (const c of comments) {
    const row = c.startPosition.row;
    const lineStart = text.lastIndexOf("\n", c.startIndex - 1) + 1;
    const alone = text.slice(lineStart, c.startIndex).trim() === "";
    if (!cur || row !== lastRow + 1 || !alone) {
      cur = new OffsetMap();
      blocks.push(cur);
    } else {
      cur.push("\n", c.startIndex);
    }
    cur.push(c.text, c.startIndex);
    // A trailing comment never joins the next line's comment.
    lastRow = alone ? row : -2;
  }
  return blocks;
}

/** Analyze Python source text. */
export async function analyzePython(text: string): Promise<RawFinding[]> {
  const parser = await pythonParser();
  // Parse only the top-level statements that can matter (see pychunks.ts).
  const spans = selectSpans(text);
  const starts = spans ? lineStarts(text) : [];
  const tree = spans
    ? parser.parse(text, null, {
      includedRanges: spans.map(([s, e]) => toRange(starts, s, e)),
    })
    : parser.parse(text);
  if (!tree) throw new Error("tree-sitter returned no tree");
  try {
    const a = new PyAnalysis(text);
    a.collect(tree.rootNode);
    const verdicts: Verdict[] = [];
    for (const n of a.candidates) {
      const c = a.candidate(n);
      const v = c && judge(c);
      if (v) verdicts.push(v);
    }
    verdicts.push(...a.namedNormalizers());
    const out = verdictsToFindings(verdicts);
    for (const b of commentBlocks(text, a.comments)) {
      out.push(...analyzeProse({ text: b.text, map: b.map }));
    }
    for (const s of a.docstrings) {
      out.push(...analyzeProse({
        text: s.text,
        map: (i) => s.startIndex + i,
        paragraph: true,
      }));
    }
    return out;
  } finally {
    tree.delete();
  }
}
