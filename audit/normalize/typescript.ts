// normalize-check: ignore-file -- this checker's own sources quote the forms it looks for
/**
 * TypeScript/JavaScript analyzer: a Babel AST (`@babel/parser`, loaded on
 * first use, with error recovery) walked for arithmetic with 1000. Names are
 * resolved through `const`/`let` declarations, default parameters
 * (including destructured `{ scale = 1000 }`), `for..of` and `.map(v => ..)`
 * bindings and `this.x` fields. Comments go to the prose judge.
 */
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
import type { RawFinding } from "./types.ts";

/** A file the parser cannot read; `where` is `line:col` when known. */
export class ParseError extends Error {
  constructor(readonly where: string, message: string) {
    super(message);
  }
}

// deno-lint-ignore no-explicit-any
type BNode = any;

type ParseFn = (text: string, opts: Record<string, unknown>) => BNode;
let parsePromise: Promise<ParseFn> | undefined;

function babelParse(): Promise<ParseFn> {
  parsePromise ??= import("@babel/parser").then((m) => m.parse as ParseFn);
  return parsePromise;
}

type DefHow = "default" | "constant" | "loop";
interface Def {
  value: BNode;
  how: DefHow;
}

const SCOPES = new Set([
  "FunctionDeclaration",
  "FunctionExpression",
  "ArrowFunctionExpression",
  "ClassMethod",
  "ClassPrivateMethod",
  "ObjectMethod",
]);
const SKIP_KEYS = new Set([
  "loc",
  "start",
  "end",
  "extra",
  "leadingComments",
  "trailingComments",
  "innerComments",
  "comments",
  "tokens",
  "range",
  "errors",
]);
const ITERATORS = new Set([
  "map",
  "forEach",
  "flatMap",
  "filter",
  "every",
  "some",
  "find",
]);
/** Array and typed-array constructors: their first argument is a length. */
const ARRAY_CTOR =
  /^(?:Array|(?:Big)?(?:Int|Uint|Float)(?:8|16|32|64)(?:Clamped)?Array)$/;
const TEST_CALLEE =
  /^(?:assert\w*|expect|equal|strictEqual|deepEqual|deepStrictEqual|notEqual|ok|to(?:Be\w*|Equal|StrictEqual|Match\w*|Contain\w*)|closeTo|approximately)$/;
/** Operands that are no numbers (a string or array literal): no coordinate. */
const SEQUENCE = new Set([
  "StringLiteral",
  "TemplateLiteral",
  "ArrayExpression",
]);

/** What surrounds an operation: see `ArithCandidate`. */
interface Context {
  ctx: string[];
  target: string[];
  test: string[];
  bound: boolean;
  inTest: boolean;
  inIndex: boolean;
}
const STATEMENT_END = /Statement$|Declaration$|^Program$|^ClassBody$/;

interface Fold {
  value: number;
  literalOffset: number;
  via?: Via;
}

interface Visit {
  node: BNode;
  parents: BNode[];
}

class TsAnalysis {
  defs = new Map<BNode, Map<string, Def[]>>();
  candidates: Visit[] = [];
  props: Visit[] = [];
  parentOf = new Map<BNode, BNode>();
  program: BNode;

  constructor(readonly text: string, ast: BNode) {
    this.program = ast.program;
  }

  src(n: BNode): string {
    return this.text.slice(n.start, n.end);
  }

  /** `this.scale` and `obj.scale` keep their dotted text as the name. */
  nameOf(n: BNode): string | null {
    if (!n) return null;
    if (n.type === "Identifier") return n.name;
    if (n.type === "MemberExpression" && !n.computed) {
      const obj = n.object.type === "ThisExpression"
        ? "this"
        : this.nameOf(n.object);
      return obj && n.property.type === "Identifier"
        ? `${obj}.${n.property.name}`
        : null;
    }
    return null;
  }

  scopeOf(parents: BNode[]): BNode {
    for (let i = parents.length - 1; i >= 0; i--) {
      if (SCOPES.has(parents[i].type)) return parents[i];
    }
    return this.program;
  }

  addDef(name: string, scope: BNode, def: Def): void {
    const s = name.includes(".") ? this.program : scope;
    let m = this.defs.get(s);
    if (!m) this.defs.set(s, m = new Map());
    const list = m.get(name);
    if (list) list.push(def);
    else m.set(name, [def]);
  }

  lookup(name: string, node: BNode): Def[] {
    if (!name.includes(".")) {
      for (let p = this.parentOf.get(node); p; p = this.parentOf.get(p)) {
        if (SCOPES.has(p.type)) {
          const found = this.defs.get(p)?.get(name);
          if (found) return found;
        }
      }
    }
    return this.defs.get(this.program)?.get(name) ?? [];
  }

  /** Bind the names a parameter or pattern declares. */
  bindPattern(p: BNode, scope: BNode, value: BNode | null, how: DefHow): void {
    if (!p) return;
    if (p.type === "Identifier") {
      if (value) this.addDef(p.name, scope, { value, how });
    } else if (p.type === "AssignmentPattern") {
      this.bindPattern(p.left, scope, p.right, "default");
    } else if (p.type === "ObjectPattern") {
      for (const prop of p.properties) {
        if (prop.type === "ObjectProperty") {
          this.bindPattern(prop.value, scope, null, how);
        }
      }
    } else if (p.type === "TSParameterProperty") {
      this.bindPattern(p.parameter, scope, value, how);
    }
  }

  collect(): void {
    const walk = (n: BNode, parents: BNode[]) => {
      if (parents.length) this.parentOf.set(n, parents[parents.length - 1]);
      switch (n.type) {
        case "BinaryExpression":
          if (n.operator === "/" || n.operator === "*") {
            this.candidates.push({ node: n, parents: [...parents] });
          }
          break;
        case "AssignmentExpression":
          if (n.operator === "/=" || n.operator === "*=") {
            this.candidates.push({ node: n, parents: [...parents] });
          } else if (n.operator === "=") {
            const name = this.nameOf(n.left);
            if (name) {
              this.addDef(name, this.scopeOf(parents), {
                value: n.right,
                how: "constant",
              });
            }
          }
          break;
        case "VariableDeclarator":
          if (n.init) {
            if (n.id.type === "Identifier") {
              this.addDef(n.id.name, this.scopeOf(parents), {
                value: n.init,
                how: "constant",
              });
            }
          }
          break;
        case "ClassProperty":
          if (n.value && n.key?.type === "Identifier") {
            this.addDef(`this.${n.key.name}`, this.program, {
              value: n.value,
              how: "constant",
            });
          }
          break;
        case "ObjectProperty":
          this.props.push({ node: n, parents: [...parents] });
          break;
        case "ForOfStatement": {
          const decl = n.left.type === "VariableDeclaration"
            ? n.left.declarations[0]?.id
            : n.left;
          if (decl?.type === "Identifier") {
            this.addDef(decl.name, this.scopeOf(parents), {
              value: n.right,
              how: "loop",
            });
          }
          break;
        }
        default:
          if (SCOPES.has(n.type)) {
            for (const p of n.params ?? []) {
              this.bindPattern(p, n, null, "default");
            }
            // `box.map((v) => ...)`: v runs over box.
            const call = parents[parents.length - 1];
            if (
              call?.type === "CallExpression" && call.arguments[0] === n &&
              call.callee.type === "MemberExpression" &&
              ITERATORS.has(call.callee.property?.name) &&
              n.params[0]?.type === "Identifier"
            ) {
              this.addDef(n.params[0].name, n, {
                value: call.callee.object,
                how: "loop",
              });
            }
          }
      }
      parents.push(n);
      for (const key in n) {
        if (SKIP_KEYS.has(key)) continue;
        const v = n[key];
        if (Array.isArray(v)) {
          for (const c of v) {
            if (c && typeof c.type === "string") walk(c, parents);
          }
        } else if (v && typeof v === "object" && typeof v.type === "string") {
          walk(v, parents);
        }
      }
      parents.pop();
    };
    walk(this.program, []);
  }

  fold(n: BNode, depth = 0): Fold | null {
    if (!n || depth > 6) return null;
    switch (n.type) {
      case "NumericLiteral":
        return { value: n.value, literalOffset: n.start };
      case "TSAsExpression":
      case "TSNonNullExpression":
      case "TSSatisfiesExpression":
      case "ParenthesizedExpression":
        return this.fold(n.expression, depth + 1);
      case "UnaryExpression": {
        const f = this.fold(n.argument, depth + 1);
        if (!f) return null;
        return n.operator === "-"
          ? { ...f, value: -f.value }
          : n.operator === "+"
          ? f
          : null;
      }
      case "BinaryExpression": {
        const a = this.fold(n.left, depth + 1);
        const b = this.fold(n.right, depth + 1);
        if (!a || !b) return null;
        const v = n.operator === "+"
          ? a.value + b.value
          : n.operator === "-"
          ? a.value - b.value
          : n.operator === "*"
          ? a.value * b.value
          : n.operator === "/"
          ? a.value / b.value
          : n.operator === "**"
          ? a.value ** b.value
          : NaN;
        return Number.isFinite(v)
          ? { value: v, literalOffset: a.literalOffset }
          : null;
      }
      case "CallExpression":
        // Number(1000)
        if (
          n.callee.type === "Identifier" && n.callee.name === "Number" &&
          n.arguments.length === 1
        ) {
          return this.fold(n.arguments[0], depth + 1);
        }
        return null;
      case "Identifier":
      case "MemberExpression": {
        const name = this.nameOf(n);
        if (!name) return null;
        const defs = this.lookup(name, n).filter((d) => d.how !== "loop");
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
          via: first.via ?? { name, literalOffset: first.literalOffset, how },
        };
      }
    }
    return null;
  }

  textOf(n: BNode): string {
    return this.src(n);
  }

  boundWords(n: BNode): string[] {
    const out: string[] = [];
    const stack: BNode[] = [n];
    let budget = 50;
    while (stack.length && budget-- > 0) {
      const c = stack.pop();
      const name = this.nameOf(c);
      if (name) {
        for (const d of this.lookup(name, c)) {
          out.push(...words(this.src(d.value).slice(0, 200)));
          const n2 = this.nameOf(d.value);
          if (n2) {
            for (const d2 of this.lookup(n2, d.value)) {
              out.push(...words(this.src(d2.value).slice(0, 200)));
            }
          }
        }
        if (c.type !== "Identifier") continue;
      }
      for (
        const key of [
          "left",
          "right",
          "argument",
          "object",
          "expression",
          "arguments",
          "callee",
        ]
      ) {
        const v = c[key];
        if (Array.isArray(v)) stack.push(...v.filter(Boolean));
        else if (v && typeof v.type === "string") stack.push(v);
      }
    }
    return out;
  }

  context(v: Visit): Context {
    const c: Context = {
      ctx: [],
      target: [],
      test: [],
      bound: false,
      inTest: false,
      inIndex: false,
    };
    const named = (ws: string[]) => {
      c.ctx.push(...ws);
      c.target.push(...ws);
    };
    let done = false;
    let child = v.node;
    for (let i = v.parents.length - 1; i >= 0; child = v.parents[i], i--) {
      const p = v.parents[i];
      if (!done) {
        switch (p.type) {
          case "VariableDeclarator":
            named(words(this.src(p.id)));
            break;
          case "AssignmentExpression":
          case "AssignmentPattern":
            named(words(this.src(p.left)));
            break;
          case "ObjectProperty":
            named(words(this.src(p.key)));
            // `Array.from({ length: 1000 * n })`: a size, like an index
            if (p.value === child && this.src(p.key) === "length") {
              c.inIndex = true;
            }
            break;
          case "CallExpression":
          case "NewExpression": {
            const callee = p.callee;
            const name = callee.type === "MemberExpression"
              ? callee.property?.name ?? ""
              : callee.name ?? "";
            // `new Float32Array(1000 * n)`: an allocation size, like an index
            if (
              p.type === "NewExpression" && ARRAY_CTOR.test(name) &&
              p.arguments[0] === child
            ) {
              c.inIndex = true;
            }
            c.ctx.push(...words(this.src(callee).slice(0, 80)));
            // `expect(decode(k)).toBe(k / 1000)`: the matcher's receiver
            // holds the value under test.
            if (TEST_CALLEE.test(name)) {
              c.inTest = true;
              c.test.push(
                ...words(this.src(p).slice(0, 300)),
                ...this.boundWords(p),
              );
            }
            // `Math.min(999, Math.round(x * 1000))`: clamped to the last bin.
            if (
              p.arguments.some((a: BNode) =>
                a.type === "NumericLiteral" && a.value === 999
              )
            ) {
              c.ctx.push("bin");
            }
            break;
          }
          case "BinaryExpression":
            if (/^[<>]=?$|^[!=]==?$/.test(p.operator)) {
              const ws = words(this.src(p).slice(0, 300));
              c.ctx.push(...ws);
              c.test.push(...ws, ...this.boundWords(p));
              if (/^[<>]=?$/.test(p.operator)) c.bound = true;
            }
            break;
          case "MemberExpression":
            if (p.computed && p.property === child) c.inIndex = true;
            break;
        }
        if (STATEMENT_END.test(p.type)) done = true;
      }
      if (SCOPES.has(p.type)) {
        // An inline callback (`xs.map((k) => k / 1000)`) belongs to the
        // statement around the call: keep climbing.
        const up = v.parents[i - 1];
        if (
          (up?.type === "CallExpression" || up?.type === "NewExpression") &&
          up.arguments.includes(p)
        ) continue;
        const id = p.id ?? p.key;
        if (id) c.ctx.push(...words(this.src(id)));
        // `const norm = (v) => ...`, `{ waitMs: (s) => ... }`: the name the
        // function is stored under says what it computes.
        const owner = v.parents[i - 1];
        const stored = owner?.type === "VariableDeclarator"
          ? owner.id
          : owner?.type === "ObjectProperty" || owner?.type === "ClassProperty"
          ? owner.key
          : owner?.type === "AssignmentExpression"
          ? owner.left
          : null;
        if (stored) c.ctx.push(...words(this.src(stored)));
        break;
      }
    }
    return c;
  }

  candidate(v: Visit): ArithCandidate | null {
    const n = v.node;
    const kind = n.operator.startsWith("*") ? "mul" : "div";
    let thousand: Fold | null = null;
    let operand = n.left;
    const fr = this.fold(n.right);
    if (isThousand(fr?.value ?? null)) thousand = fr;
    else if (kind === "mul") {
      const fl = this.fold(n.left);
      if (isThousand(fl?.value ?? null)) {
        thousand = fl;
        operand = n.right;
      }
    }
    if (!thousand) return null;
    const c = this.context(v);
    if (n.type === "AssignmentExpression") {
      c.ctx.push(...words(this.src(n.left)));
      c.target.push(...words(this.src(n.left)));
    }
    const ov = this.fold(operand);
    // `v * 1000 / n`: the product's divisor.
    let below = n;
    let k = v.parents.length - 1;
    while (v.parents[k]?.type === "ParenthesizedExpression") {
      below = v.parents[k--];
    }
    const up = v.parents[k];
    const per = up?.type === "BinaryExpression" && up.operator === "/" &&
        up.left === below
      ? words(this.src(up.right))
      : null;
    let inner = operand;
    while (
      inner?.type === "ParenthesizedExpression" ||
      inner?.type === "TSAsExpression"
    ) inner = inner.expression;
    return {
      kind,
      offset: n.start,
      text: this.src(n).replace(/\s+/g, " "),
      operandWords: words(this.textOf(operand)),
      boundWords: this.boundWords(operand),
      contextWords: c.ctx,
      targetWords: c.target,
      testWords: c.test,
      testBodyWords: [],
      bound: c.bound,
      operandValue: ov ? ov.value : null,
      sequence: SEQUENCE.has(inner?.type),
      floor: false,
      perWords: per,
      inTest: c.inTest,
      inIndex: c.inIndex,
      via: thousand.via,
    };
  }

  /**
   * `coordScale = 1000` declarations, defaults and object properties by
   * name. A normalizer name (`scale`) alone is no evidence of coordinates:
   * the name must say so (`coordScale`), or the object around it
   * (`render({ boxes, scale: 1000 })`). A name used in arithmetic is judged
   * there.
   */
  namedNormalizers(): Verdict[] {
    const out: Verdict[] = [];
    const consider = (
      name: string,
      value: BNode,
      how: Via["how"],
      around: string[] = [],
    ) => {
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
          if (d.how !== "loop") consider(name, d.value, d.how);
        }
      }
    }
    for (const { node, parents } of this.props) {
      const key = node.key?.type === "Identifier"
        ? node.key.name
        : node.key?.value;
      // `{ scale = 1000 }` patterns were bound as defaults already.
      if (typeof key !== "string" || node.value?.type === "AssignmentPattern") {
        continue;
      }
      // Sibling keys and the call the object is passed to.
      const obj = parents[parents.length - 1];
      const call = parents[parents.length - 2];
      const around = [
        ...(obj?.properties ?? []).filter((p: BNode) => p !== node)
          .flatMap((p: BNode) => words(p.key ? this.src(p.key) : "")),
        ...(call?.type === "CallExpression"
          ? words(this.src(call.callee).slice(0, 80))
          : []),
      ];
      consider(key, node.value, "argument", around);
    }
    return out;
  }
}

function commentBlocks(text: string, comments: BNode[]): OffsetMap[] {
  const blocks: OffsetMap[] = [];
  let cur: OffsetMap | null = null;
  let lastLine = -2;
  for (const c of comments) {
    const line = c.loc.start.line;
    const lineStart = text.lastIndexOf("\n", c.start - 1) + 1;
    const alone = text.slice(lineStart, c.start).trim() === "";
    if (!cur || c.type !== "CommentLine" || line !== lastLine + 1 || !alone) {
      cur = new OffsetMap();
      blocks.push(cur);
    } else {
      cur.push("\n", c.start);
    }
    cur.push(text.slice(c.start, c.end), c.start);
    lastLine = alone && c.type === "CommentLine" ? c.loc.end.line : -2;
  }
  return blocks;
}

/** Babel plugins by file extension. */
function pluginsFor(ext: string): string[] {
  if (ext === "tsx") return ["typescript", "jsx"];
  if (ext === "ts" || ext === "mts" || ext === "cts") return ["typescript"];
  return ["jsx"];
}

/** Analyze TypeScript or JavaScript source text; `ext` picks the syntax. */
export async function analyzeTypeScript(
  text: string,
  ext = "ts",
): Promise<RawFinding[]> {
  const parse = await babelParse();
  const opts = {
    sourceType: "module",
    plugins: pluginsFor(ext),
    errorRecovery: true,
    allowReturnOutsideFunction: true,
    allowAwaitOutsideFunction: true,
  };
  let ast: BNode;
  try {
    ast = parse(text, opts);
  } catch {
    try {
      ast = parse(text, { ...opts, sourceType: "script" });
    } catch (e) {
      // Past what error recovery repairs: say where, as `line:col`.
      const loc = (e as { loc?: { line: number; column: number } }).loc;
      const msg = (e as Error).message.replace(/\s*\(\d+:\d+\)$/, "");
      throw new ParseError(loc ? `${loc.line}:${loc.column + 1}` : "", msg);
    }
  }
  const a = new TsAnalysis(text, ast);
  a.collect();
  const verdicts: Verdict[] = [];
  for (const v of a.candidates) {
    const c = a.candidate(v);
    const verdict = c && judge(c);
    if (verdict) verdicts.push(verdict);
  }
  verdicts.push(...a.namedNormalizers());
  const out = verdictsToFindings(verdicts);
  for (const b of commentBlocks(text, ast.comments ?? [])) {
    out.push(...analyzeProse({ text: b.text, map: b.map }));
  }
  return out;
}
