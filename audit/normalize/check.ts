/**
 * The checker's driver: collect files, read them concurrently, parse only
 * those that mention a thousand (the cheap prefilter), dispatch to the
 * analyzer of their language, then turn offsets into `line:col` findings and
 * apply inline suppressions.
 */
import { CONFIG_NAME, loadConfig } from "./config.ts";
import { lineIndex, lineStarts } from "./lines.ts";
import { analyzeMarkdown } from "./markdown.ts";
import { analyzePython } from "./python.ts";
import { findSuppressions } from "./suppress.ts";
import { analyzeTypeScript, ParseError } from "./typescript.ts";
import {
  type Finding,
  type RawFinding,
  RULES,
  type Suppressed,
} from "./types.ts";
import {
  collectFiles,
  type Excluded,
  extOf,
  type Gitignored,
  LANGUAGE_OF,
  normalizePath,
  relTo,
} from "./walk.ts";
import { analyzeYaml } from "./yaml.ts";
import { CheckError } from "./errors.ts";

/** Files without this never need a parse. */
const PREFILTER =
  /(?<![\d_.])1_?000(?![\d_])|thousandths|(?<![\w.])1(?:\.0*)?e\+?3(?!\d)/gi;
const OPERAND_BEFORE = new RegExp(
  String
    .raw`(?:[*\/×=:]\s*\(?|[*\/×][^;\n]{0,30}\(|\b(?:float|int|Number)\()\s*$` +
    String
      .raw`|\b(?:div|divide|true_divide|truediv|mul|multiply)\(\s*(?:[^,()]*,\s*)?$` +
    String.raw`|\b(?:by|to|with|into|over|in|of)\s+\x60?$`,
  "i",
);
const OPERAND_AFTER = /^(?:\.0*)?\s*[*\/×]|^ths\b/i;

/**
 * The cheap prefilter: a file needs a parse only if some 1000 in it is an
 * operand of `*` or `/`, a value (`= 1000`, `: 1000`, `float(1000)`) or
 * follows "by"/"to"/"in"; `range(1000)` or "every 1000 steps" alone never
 * make a finding. The parsers still decide everything about the rest.
 */
export function needsParse(text: string): boolean {
  for (const m of text.matchAll(PREFILTER)) {
    if (m[0].toLowerCase() === "thousandths") return true;
    const before = text.slice(Math.max(0, m.index - 40), m.index);
    const after = text.slice(m.index + m[0].length, m.index + m[0].length + 8);
    if (OPERAND_BEFORE.test(before) || OPERAND_AFTER.test(after)) return true;
  }
  return false;
}

/**
 * Minified JavaScript bundles are build output, not source: their names are
 * gone (`1e3*e[0]` is an hrtime conversion), so nothing in them can be
 * judged, and the fix belongs in their sources.
 */
export function isMinified(path: string, text: string): boolean {
  if (!/\.(?:[cm]?js|jsx)$/i.test(path)) return false;
  if (/\.min\.[cm]?js$/i.test(path)) return true;
  for (let at = 0; at < text.length;) {
    const nl = text.indexOf("\n", at);
    const end = nl < 0 ? text.length : nl;
    if (end - at > MINIFIED_LINE) return true;
    at = end + 1;
  }
  return false;
}
const MINIFIED_LINE = 5000;

/** Changelogs quote old conventions; they never state them. */
const EXPLAINING_FILE =
  /^(?:changelog|changes|history|news|releases?)(?:\.|$)/i;

/**
 * An OpenSpec change's proposal, design and task list narrate the change
 * (the bug, the plan, the work items); its normative text lives in the spec
 * deltas under `specs/`, which are checked like any spec.
 */
const CHANGE_NARRATIVE =
  /(?:^|\/)openspec\/changes\/(?:archive\/)?[^/]+\/(?:proposal|design|tasks)\.md$/i;

export interface CheckOptions {
  /** Absolute root: findings are reported relative to it. */
  root: string;
  /** Absolute files or folders; default the root. */
  paths?: string[];
  /**
   * Config file: a path, `null` for none, or undefined for the nearest
   * `.normalize-check.json` in the root or a parent folder.
   */
  config?: string | null;
}

export interface IgnoredFile {
  path: string;
  commentLine: number;
  reason: string;
}

/** A file that was read but could not be analyzed as written. */
export interface SkippedFile {
  /** Root-relative path. */
  path: string;
  /** `binary`: a NUL byte; `invalid-json`: checked leniently only. */
  kind: "binary" | "invalid-json";
  detail: string;
}

export interface CheckReport {
  findings: Finding[];
  suppressed: Suppressed[];
  excluded: Excluded[];
  /** Walked paths a `.gitignore` rule excluded, with the rule. */
  gitignored: Gitignored[];
  /** Named folders checked although a `.gitignore` rule excludes them. */
  overridden: Gitignored[];
  /** Binary files skipped and JSON files that do not parse as JSON. */
  skipped: SkippedFile[];
  /** Walked entries with a checked extension that are not regular files. */
  special: string[];
  /** Named folders of which ignore rules or excludes left nothing. */
  empty: string[];
  /** Files silenced by `normalize-check: ignore-file`. */
  ignoredFiles: IgnoredFile[];
  /** Files that were read and analyzed (binary files not included). */
  filesChecked: number;
  /** Files that passed the prefilter and were parsed. */
  filesParsed: number;
  /** Explicit paths of a type no analyzer reads. */
  unsupported: string[];
  /** Minified bundles that were skipped (root-relative). */
  minified: string[];
  /** The config that was applied, if any. */
  configPath: string | null;
}

const CODE_LANG: Record<string, "python" | "typescript" | "yaml"> = {
  python: "python",
  py: "python",
  python3: "python",
  py3: "python",
  ipython: "python",
  ts: "typescript",
  typescript: "typescript",
  tsx: "typescript",
  js: "typescript",
  javascript: "typescript",
  jsx: "typescript",
  mjs: "typescript",
  yaml: "yaml",
  yml: "yaml",
  json: "yaml",
};

/** Analyze one file's text; `path` picks the language by extension. */
export async function analyzeText(
  path: string,
  text: string,
): Promise<RawFinding[]> {
  const ext = extOf(path);
  switch (LANGUAGE_OF[ext]) {
    case "python":
      return await analyzePython(text);
    case "typescript":
      return await analyzeTypeScript(text, ext);
    case "yaml":
      return await analyzeYaml(text);
    case "markdown": {
      const base = path.slice(path.lastIndexOf("/") + 1);
      return await analyzeMarkdown(text, async (code, lang) => {
        const l = CODE_LANG[lang];
        if (l === "python") return await analyzePython(code);
        if (l === "typescript") {
          return await analyzeTypeScript(code, lang === "tsx" ? "tsx" : "ts");
        }
        if (l === "yaml") return await analyzeYaml(code);
        return null;
      }, EXPLAINING_FILE.test(base) || CHANGE_NARRATIVE.test(path));
    }
  }
  return [];
}

export interface FileResult {
  findings: Finding[];
  suppressed: Suppressed[];
  ignoredFile: IgnoredFile | null;
  /** Whether the prefilter sent the file to a parser. */
  parsed: boolean;
  /** Set for minified bundles, which are skipped. */
  minified?: boolean;
}

/** Findings of one file's text, with suppressions applied. */
export async function checkText(
  relPath: string,
  text: string,
): Promise<FileResult> {
  if (isMinified(relPath, text)) {
    return {
      findings: [],
      suppressed: [],
      ignoredFile: null,
      parsed: false,
      minified: true,
    };
  }
  const parsed = needsParse(text);
  let raw: RawFinding[] = [];
  try {
    if (parsed) raw = await analyzeText(relPath, text);
  } catch (e) {
    const where = e instanceof ParseError && e.where
      ? `${relPath}:${e.where}`
      : relPath;
    throw new CheckError(
      `cannot parse ${where}: ${(e as Error).message} ` +
        `(fix it, or exclude it in ${CONFIG_NAME} if it is invalid on purpose)`,
    );
  }
  const starts = lineStarts(text);
  const lines = text.split("\n");
  const findings: Finding[] = raw.map((r) => {
    const li = lineIndex(starts, r.offset);
    return {
      path: relPath,
      line: li + 1,
      column: r.offset - starts[li] + 1,
      rule: r.rule,
      message: r.message,
      snippet: (lines[li] ?? "").trim().slice(0, 200),
      fix: RULES[r.rule].fix,
    };
  });
  findings.sort((a, b) => a.line - b.line || a.column - b.column);
  if (findings.length === 0) {
    return { findings, suppressed: [], ignoredFile: null, parsed };
  }
  const sup = findSuppressions(text);
  if (sup.file) {
    return {
      findings: [],
      suppressed: findings.map((f) => ({ finding: f, ...sup.file! })),
      ignoredFile: { path: relPath, ...sup.file },
      parsed,
    };
  }
  const kept: Finding[] = [];
  const suppressed: Suppressed[] = [];
  for (const f of findings) {
    const s = sup.lines.get(f.line);
    if (s) suppressed.push({ finding: f, ...s });
    else kept.push(f);
  }
  return { findings: kept, suppressed, ignoredFile: null, parsed };
}

/**
 * The config that governs `root`: the nearest `.normalize-check.json` in
 * it or a parent folder, as linters look up theirs, so a run from a
 * subfolder keeps the project's excludes.
 */
export async function findConfig(root: string): Promise<string | null> {
  for (let dir = root;; dir = dir.slice(0, dir.lastIndexOf("/")) || "/") {
    const candidate = `${dir === "/" ? "" : dir}/${CONFIG_NAME}`;
    try {
      if ((await Deno.stat(candidate)).isFile) return candidate;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new CheckError(
          `cannot read ${candidate}: ${(e as Error).message}`,
        );
      }
    }
    if (dir === "/") return null;
  }
}

/**
 * Why a `.json` file is not JSON, or null. Such files (JSON with comments,
 * a truncated artifact) are still checked through the lenient YAML reader,
 * but the user hears that they are broken.
 */
function jsonProblem(text: string): string | null {
  try {
    JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    return null;
  } catch (e) {
    return (e as Error).message.split("\n")[0];
  }
}

/** Run the checker over files and folders. */
export async function checkPaths(opts: CheckOptions): Promise<CheckReport> {
  const root = normalizePath(opts.root);
  let rootInfo: Deno.FileInfo;
  try {
    rootInfo = await Deno.stat(root);
  } catch (e) {
    throw new CheckError(
      e instanceof Deno.errors.NotFound
        ? `root folder does not exist: ${root}`
        : `cannot read root folder ${root}: ${(e as Error).message}`,
    );
  }
  if (!rootInfo.isDirectory) {
    throw new CheckError(`root is not a folder: ${root}`);
  }
  const paths = (opts.paths?.length ? opts.paths : [root]).map(normalizePath);
  const configPath = opts.config === undefined
    ? await findConfig(root)
    : opts.config;
  const config = configPath ? await loadConfig(configPath) : null;
  const walked = await collectFiles(
    root,
    paths,
    config?.exclude ?? [],
    configPath ? configPath.slice(0, configPath.lastIndexOf("/")) || "/" : root,
  );
  const report: CheckReport = {
    findings: [],
    suppressed: [],
    excluded: walked.excluded,
    gitignored: walked.gitignored,
    overridden: walked.overridden,
    skipped: [],
    special: walked.special,
    empty: walked.empty,
    ignoredFiles: [],
    filesChecked: walked.files.length,
    filesParsed: 0,
    unsupported: walked.unsupported,
    minified: [],
    configPath: config ? configPath : null,
  };
  // Reads overlap; parsing is synchronous per file, so a small pool suffices.
  const results: FileResult[] = new Array(walked.files.length);
  const skipped: Array<SkippedFile | undefined> = new Array(
    walked.files.length,
  );
  let next = 0;
  const worker = async () => {
    while (next < walked.files.length) {
      const i = next++;
      const abs = walked.files[i];
      let text: string;
      try {
        text = await Deno.readTextFile(abs);
      } catch (e) {
        throw new CheckError(`cannot read ${abs}: ${(e as Error).message}`);
      }
      const rel = relTo(root, abs) ?? abs;
      const nul = text.indexOf("\0");
      if (nul >= 0) {
        skipped[i] = {
          path: rel,
          kind: "binary",
          detail: `NUL byte at offset ${nul}`,
        };
        continue;
      }
      if (extOf(abs) === "json") {
        const problem = jsonProblem(text);
        if (problem) {
          skipped[i] = { path: rel, kind: "invalid-json", detail: problem };
        }
      }
      results[i] = await checkText(rel, text);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  for (const s of skipped) {
    if (!s) continue;
    report.skipped.push(s);
    if (s.kind === "binary") report.filesChecked--;
  }
  results.forEach((r, i) => {
    if (r.parsed) report.filesParsed++;
    if (r.minified) {
      report.minified.push(relTo(root, walked.files[i]) ?? walked.files[i]);
    }
    report.findings.push(...r.findings);
    report.suppressed.push(...r.suppressed);
    if (r.ignoredFile) report.ignoredFiles.push(r.ignoredFile);
  });
  return report;
}
