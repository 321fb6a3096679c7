/**
 * The repository's import graph and function sizes, read from the sources
 * with the pinned `@babel/parser` (TypeScript plugin), for
 * `architecture_test.ts`. Every `import`/`export ... from`/`import()` with a
 * relative string specifier is an edge, type-only imports included: a type
 * import is still an arrow a reader has to follow.
 */
import { parse } from "@babel/parser";
import { dirname, join, normalize, relative } from "node:path";

// deno-lint-ignore no-explicit-any
type BNode = any;

/** Repository root (this file lives in `tests/`). */
export const ROOT = normalize(
  join(dirname(new URL(import.meta.url).pathname), ".."),
);

/**
 * Layers of `trainer/`, lowest first. A module may import modules of its
 * own folder and of lower layers only; folders on one layer never import
 * each other. `runtime` is the single file `trainer/runtime.ts` (the TF.js
 * backend), `errors` the single file `trainer/errors.ts` (the error
 * taxonomy every layer throws). `backend` (the blas TF.js backend and its
 * kernels) sits below `runtime`, which registers it, and `model`, which
 * calls its fused kernels; it knows nothing of the model or the loop.
 */
export const TRAINER_LAYERS: string[][] = [
  ["common", "coord", "errors"],
  ["backend"],
  ["data", "runtime"],
  ["config", "tokenizer", "trace"],
  ["model"],
  ["rollout"],
  ["variant"],
  ["sft", "stage2", "eval"],
  ["loop"],
  ["report", "selfcheck", "ablate"],
];

/** Top-level folders, lowest first, with the same rule. */
export const TOP_LAYERS: string[][] = [["trainer"], ["audit"], ["cli"]];

/**
 * Modules that must load without TF.js (following the imports loaded with
 * them; `import()` is lazy): the checkers, the CLI entry with the commands
 * that never train (normalize-check, validate-spec, audit, report), and the
 * run report.
 */
export const TF_FREE_ROOTS = [
  "audit/",
  "cli/main.ts",
  "cli/normalize_check.ts",
  "cli/validate_spec.ts",
  "cli/audit.ts",
  "cli/report.ts",
  "trainer/report/",
];

export interface Graph {
  /** Repository-relative module path -> the modules it imports (relative specifiers only, every kind). */
  edges: Map<string, string[]>;
  /** The same, only imports loaded together with the module (`static`). */
  eager: Map<string, string[]>;
  /** Repository-relative module path -> the packages it loads eagerly (bare `static` specifiers). */
  packages: Map<string, string[]>;
}

/** Parses TS source into a Babel AST. */
export function parseTs(text: string, file: string): BNode {
  try {
    return parse(text, {
      sourceType: "module",
      plugins: ["typescript"],
      errorRecovery: false,
    });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/**
 * How a module imports another: `static` (loaded with it), `type` (erased
 * at run time: `import type`, `import("x").T`) or `dynamic` (`import()`,
 * loaded on demand).
 */
export type ImportKind = "static" | "type" | "dynamic";

/** Import specifiers of one module with their kind, in source order. */
export function imports(ast: BNode): { spec: string; kind: ImportKind }[] {
  const out: { spec: string; kind: ImportKind }[] = [];
  const visit = (n: BNode): void => {
    if (n === null || typeof n !== "object") return;
    if (Array.isArray(n)) {
      for (const c of n) visit(c);
      return;
    }
    if (
      (n.type === "ImportDeclaration" || n.type === "ExportAllDeclaration" ||
        n.type === "ExportNamedDeclaration") && n.source
    ) {
      const specs = n.specifiers ?? [];
      const typeOnly = n.importKind === "type" || n.exportKind === "type" ||
        (specs.length > 0 &&
          specs.every((x: BNode) =>
            x.importKind === "type" || x.exportKind === "type"
          ));
      out.push({ spec: n.source.value, kind: typeOnly ? "type" : "static" });
    } else if (
      n.type === "ImportExpression" && n.source?.type === "StringLiteral"
    ) {
      out.push({ spec: n.source.value, kind: "dynamic" }); // Babel 8
    } else if (
      n.type === "CallExpression" && n.callee?.type === "Import" &&
      n.arguments[0]?.type === "StringLiteral"
    ) {
      out.push({ spec: n.arguments[0].value, kind: "dynamic" });
    } else if (n.type === "TSImportType") {
      const lit = n.source ?? n.argument?.literal ?? n.argument;
      if (lit?.type === "StringLiteral") {
        out.push({ spec: lit.value, kind: "type" });
      }
    }
    for (const k of Object.keys(n)) {
      if (k === "loc" || k === "start" || k === "end") continue;
      visit(n[k]);
    }
  };
  visit(ast.program);
  return out;
}

/** Import specifiers of one module (every kind), in source order. */
export function importSpecifiers(ast: BNode): string[] {
  return imports(ast).map((i) => i.spec);
}

/** Every `.ts` file under `dirs` (repository-relative), sorted. */
export async function tsFiles(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(join(ROOT, d))) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile && p.endsWith(".ts")) out.push(p);
    }
  };
  for (const d of dirs) {
    if (d.endsWith(".ts")) out.push(d);
    else await walk(d);
  }
  return out.sort();
}

/** The import graph of `files` (repository-relative paths). */
export async function importGraph(files: string[]): Promise<Graph> {
  const edges = new Map<string, string[]>();
  const eager = new Map<string, string[]>();
  const packages = new Map<string, string[]>();
  for (const f of files) {
    const ast = parseTs(await Deno.readTextFile(join(ROOT, f)), f);
    const rel: string[] = [];
    const now: string[] = [];
    const pkg: string[] = [];
    for (const { spec, kind } of imports(ast)) {
      if (!spec.startsWith(".")) {
        if (kind === "static") pkg.push(spec);
        continue;
      }
      const to = relative(ROOT, normalize(join(ROOT, dirname(f), spec)));
      rel.push(to);
      if (kind === "static") now.push(to);
    }
    edges.set(f, [...new Set(rel)]);
    eager.set(f, [...new Set(now)]);
    packages.set(f, [...new Set(pkg)]);
  }
  return { edges, eager, packages };
}

/** Import cycles (each as the list of modules around it), via Tarjan's SCCs. */
export function findCycles(edges: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      const selfLoop = (edges.get(v) ?? []).includes(v);
      if (scc.length > 1 || selfLoop) out.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) strong(v);
  return out;
}

/** The layer unit of a module: `trainer/<folder>` (or `trainer/runtime`), else its top folder. */
export function unitOf(path: string): { top: string; sub: string | null } {
  const parts = path.split("/");
  if (parts[0] === "trainer" && parts.length >= 2) {
    return { top: "trainer", sub: parts[1].replace(/\.ts$/, "") };
  }
  return { top: parts.length > 1 ? parts[0] : path, sub: null };
}

function layerIndex(layers: string[][], name: string): number {
  return layers.findIndex((l) => l.includes(name));
}

/**
 * Imports that break the layering: an import into a higher layer, or
 * between two folders of one layer. Unknown folders are violations too, so
 * a new folder has to be placed in `TRAINER_LAYERS` on purpose.
 */
export function layerViolations(edges: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [from, tos] of edges) {
    const a = unitOf(from);
    for (const to of tos) {
      const b = unitOf(to);
      if (a.top === "trainer" && b.top === "trainer") {
        if (a.sub === b.sub) continue;
        const la = layerIndex(TRAINER_LAYERS, a.sub!);
        const lb = layerIndex(TRAINER_LAYERS, b.sub!);
        if (la < 0 || lb < 0) {
          out.push(
            `${from} -> ${to}: trainer/${
              la < 0 ? a.sub : b.sub
            } is not placed in TRAINER_LAYERS`,
          );
        } else if (lb >= la) {
          out.push(
            `${from} -> ${to}: trainer/${a.sub} (layer ${la}) may not import trainer/${b.sub} (layer ${lb})`,
          );
        }
        continue;
      }
      const la = layerIndex(TOP_LAYERS, a.top);
      const lb = layerIndex(TOP_LAYERS, b.top);
      if (la < 0 || lb < 0 || a.top === b.top) continue;
      if (lb > la) {
        out.push(`${from} -> ${to}: ${a.top} may not import ${b.top}`);
      }
    }
  }
  return out.sort();
}

/** Modules reachable from `start` (itself included). */
export function closure(edges: Map<string, string[]>, start: string): string[] {
  const seen = new Set<string>([start]);
  const todo = [start];
  while (todo.length) {
    for (const w of edges.get(todo.pop()!) ?? []) {
      if (!seen.has(w)) {
        seen.add(w);
        todo.push(w);
      }
    }
  }
  return [...seen];
}

/**
 * For each module of `roots` (a folder ending in "/" or a file) that loads
 * TF.js eagerly: the first module on the way that is the TF.js runtime or
 * imports an `@tensorflow/` package.
 */
export function tfLoaders(graph: Graph, roots: string[]): string[] {
  const out: string[] = [];
  const starts = [...graph.eager.keys()].filter((f) =>
    roots.some((r) => r.endsWith("/") ? f.startsWith(r) : f === r)
  );
  for (const r of starts) {
    for (const m of closure(graph.eager, r)) {
      const tf = (graph.packages.get(m) ?? []).find((p) =>
        p.startsWith("@tensorflow/")
      );
      if (m === "trainer/runtime.ts" || tf) {
        out.push(`${r} reaches ${m}${tf ? ` (${tf})` : ""}`);
        break;
      }
    }
  }
  return out;
}

export interface FunctionSize {
  file: string;
  name: string;
  line: number;
  lines: number;
}

const FUNCTION_TYPES = new Set([
  "FunctionDeclaration",
  "FunctionExpression",
  "ArrowFunctionExpression",
  "ClassMethod",
  "ClassPrivateMethod",
  "ObjectMethod",
]);

function functionName(n: BNode, parent: BNode): string {
  if (n.id?.name) return n.id.name;
  if (n.key?.name) return n.key.name;
  if (parent?.type === "VariableDeclarator" && parent.id?.name) {
    return parent.id.name;
  }
  if (parent?.type === "ObjectProperty" && parent.key?.name) {
    return parent.key.name;
  }
  return "(anonymous)";
}

/** Every function of a module with its length in lines (nested ones included, each on its own). */
export function functionSizes(ast: BNode, file: string): FunctionSize[] {
  const out: FunctionSize[] = [];
  const visit = (n: BNode, parent: BNode): void => {
    if (n === null || typeof n !== "object") return;
    if (Array.isArray(n)) {
      for (const c of n) visit(c, parent);
      return;
    }
    if (FUNCTION_TYPES.has(n.type) && n.body) {
      out.push({
        file,
        name: functionName(n, parent),
        line: n.loc.start.line,
        lines: n.loc.end.line - n.loc.start.line + 1,
      });
    }
    for (const k of Object.keys(n)) {
      if (k === "loc" || k === "start" || k === "end") continue;
      visit(n[k], n);
    }
  };
  visit(ast.program, null);
  return out;
}
