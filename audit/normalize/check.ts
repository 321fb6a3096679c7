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
import { analyzeTypeScript } from "./typescript.ts";
import { type Finding, RULES, type RawFinding, type Suppressed } from "./types.ts";
import { collectFiles, type Excluded, extOf, LANGUAGE_OF, normalizePath, relTo } from "./walk.ts";
import { analyzeYaml } from "./yaml.ts";
import { CheckError } from "./errors.ts";

/** Files without this never need a parse. */
const PREFILTER = /(?<![\d_.])1_?000(?![\d_])|thousandths|(?<![\w.])1(?:\.0*)?e\+?3(?!\d)/i;

/** Changelogs quote old conventions; they never state them. */
const EXPLAINING_FILE = /^(?:changelog|changes|history|news|releases?)(?:\.|$)/i;

export interface CheckOptions {
  /** Absolute root: findings are reported relative to it. */
  root: string;
  /** Absolute files or folders; default the root. */
  paths?: string[];
  /**
   * Config file: a path, `null` for none, or undefined for
   * `<root>/.normalize-check.json` when present.
   */
  config?: string | null;
}

export interface IgnoredFile {
  path: string;
  commentLine: number;
  reason: string;
}

export interface CheckReport {
  findings: Finding[];
  suppressed: Suppressed[];
  excluded: Excluded[];
  /** Files silenced by `normalize-check: ignore-file`. */
  ignoredFiles: IgnoredFile[];
  /** Files that were read. */
  filesChecked: number;
  /** Files that passed the prefilter and were parsed. */
  filesParsed: number;
  /** Explicit paths of a type no analyzer reads. */
  unsupported: string[];
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
export async function analyzeText(path: string, text: string): Promise<RawFinding[]> {
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
        if (l === "typescript") return await analyzeTypeScript(code, lang === "tsx" ? "tsx" : "ts");
        if (l === "yaml") return await analyzeYaml(code);
        return null;
      }, EXPLAINING_FILE.test(base));
    }
  }
  return [];
}

/** Findings of one file's text, with suppressions applied. */
export async function checkText(
  relPath: string,
  text: string,
): Promise<{ findings: Finding[]; suppressed: Suppressed[]; ignoredFile: IgnoredFile | null }> {
  const raw = PREFILTER.test(text) ? await analyzeText(relPath, text) : [];
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
  if (findings.length === 0) return { findings, suppressed: [], ignoredFile: null };
  const sup = findSuppressions(text);
  if (sup.file) {
    return {
      findings: [],
      suppressed: findings.map((f) => ({ finding: f, ...sup.file! })),
      ignoredFile: { path: relPath, ...sup.file },
    };
  }
  const kept: Finding[] = [];
  const suppressed: Suppressed[] = [];
  for (const f of findings) {
    const s = sup.lines.get(f.line);
    if (s) suppressed.push({ finding: f, ...s });
    else kept.push(f);
  }
  return { findings: kept, suppressed, ignoredFile: null };
}

/** Run the checker over files and folders. */
export async function checkPaths(opts: CheckOptions): Promise<CheckReport> {
  const root = normalizePath(opts.root);
  const paths = (opts.paths?.length ? opts.paths : [root]).map(normalizePath);
  const configPath = opts.config === undefined ? `${root}/${CONFIG_NAME}` : opts.config;
  const config = configPath ? await loadConfig(configPath, opts.config !== undefined) : null;
  const walked = await collectFiles(root, paths, config?.exclude ?? []);
  const report: CheckReport = {
    findings: [],
    suppressed: [],
    excluded: walked.excluded,
    ignoredFiles: [],
    filesChecked: walked.files.length,
    filesParsed: 0,
    unsupported: walked.unsupported,
    configPath: config ? configPath : null,
  };
  // Reads overlap; parsing is synchronous per file, so a small pool suffices.
  const results: Array<Awaited<ReturnType<typeof checkText>>> = new Array(walked.files.length);
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
      if (text.includes("\0")) continue; // binary despite its extension
      const rel = relTo(root, abs) ?? abs;
      if (PREFILTER.test(text)) report.filesParsed++;
      try {
        results[i] = await checkText(rel, text);
      } catch (e) {
        throw new CheckError(`cannot analyze ${rel}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  for (const r of results) {
    if (!r) continue;
    report.findings.push(...r.findings);
    report.suppressed.push(...r.suppressed);
    if (r.ignoredFile) report.ignoredFiles.push(r.ignoredFile);
  }
  return report;
}
