/**
 * File discovery: folders are walked honouring the `.gitignore` files of the
 * enclosing git repository and every one on the way down (npm `ignore`, the
 * gitignore matcher), `.git` is never entered, and the config's `exclude`
 * patterns apply to walked and explicitly named files alike.
 *
 * Explicit paths win over `.gitignore`: a file named on the command line (a
 * pre-commit file list) is checked even if ignored, and so is a folder named
 * explicitly that an ignore rule above it excludes (only the `.gitignore`
 * files inside it apply then). Every ignore decision keeps the rule and the
 * `.gitignore` line it came from, for `--verbose`.
 */
import ignore, { type Ignore } from "ignore";
import { CheckError } from "./errors.ts";

/** Extensions the checker understands, by analyzer. */
export const LANGUAGE_OF: Record<
  string,
  "python" | "typescript" | "markdown" | "yaml"
> = {
  py: "python",
  pyi: "python",
  ts: "typescript",
  tsx: "typescript",
  mts: "typescript",
  cts: "typescript",
  js: "typescript",
  jsx: "typescript",
  mjs: "typescript",
  cjs: "typescript",
  md: "markdown",
  markdown: "markdown",
  yaml: "yaml",
  yml: "yaml",
  json: "yaml",
};

export function extOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
}

export interface Excluded {
  /** Path relative to the root (folders end with `/`). */
  path: string;
  /** The config pattern that matched. */
  pattern: string;
}

/** A path a `.gitignore` rule excluded from a walk, or one it did not. */
export interface Gitignored {
  /** Path relative to the root (folders end with `/`). */
  path: string;
  /** The rule as written in the file. */
  rule: string;
  /** `FILE:LINE` of the rule (FILE relative to the root when inside it). */
  source: string;
}

export interface WalkResult {
  /** Absolute paths of files to check, sorted. */
  files: string[];
  excluded: Excluded[];
  /** Walked paths a `.gitignore` rule left out (the topmost of each tree). */
  gitignored: Gitignored[];
  /** Explicit folders checked although a `.gitignore` rule above excludes them. */
  overridden: Gitignored[];
  /** Explicit files skipped because no analyzer reads their type. */
  unsupported: string[];
  /** Walked entries with a checked extension that are not regular files. */
  special: string[];
  /** Explicit folders in which nothing was left to check. */
  empty: string[];
}

interface Frame {
  /** Absolute folder of the `.gitignore`, with a trailing slash. */
  base: string;
  ig: Ignore;
  /** Absolute path of the `.gitignore` file. */
  file: string;
  lines: string[];
}

/** Root-relative path, or null when `abs` lies outside the root. */
export function relTo(root: string, abs: string): string | null {
  if (abs === root) return "";
  const prefix = root.endsWith("/") ? root : root + "/";
  return abs.startsWith(prefix) ? abs.slice(prefix.length) : null;
}

/** Normalize `a/./b/../c` without touching the file system. */
export function normalizePath(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return "/" + parts.join("/");
}

function parentOf(abs: string): string {
  return abs.slice(0, abs.lastIndexOf("/")) || "/";
}

async function readGitignore(dir: string): Promise<Frame | null> {
  const file = `${dir === "/" ? "" : dir}/.gitignore`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    // A .gitignore that is a folder or unreadable is the user's to fix.
    throw new CheckError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return {
    base: dir === "/" ? "/" : dir + "/",
    ig: ignore().add(text),
    file,
    lines: text.split(/\r?\n/),
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The top of the git work tree holding `dir` (a `.git` folder or file). */
async function gitTop(dir: string): Promise<string | null> {
  for (let d = dir;; d = parentOf(d)) {
    if (await exists(`${d === "/" ? "" : d}/.git`)) return d;
    if (d === "/") return null;
  }
}

/**
 * The `.gitignore` rule that excludes `abs`, or null. The deepest file
 * decides first, so a `!negation` below re-includes what a rule above
 * excluded, as in git.
 */
function ignoredBy(
  frames: Frame[],
  abs: string,
  dir: boolean,
): { frame: Frame; rule: string } | null {
  for (let i = frames.length - 1; i >= 0; i--) {
    const f = frames[i];
    if (!abs.startsWith(f.base)) continue;
    const sub = abs.slice(f.base.length);
    if (!sub) continue;
    const r = f.ig.test(dir ? sub + "/" : sub);
    if (r.ignored) return { frame: f, rule: r.rule?.pattern ?? "?" };
    if (r.unignored) return null;
  }
  return null;
}

/**
 * Expand `paths` (absolute) into the files to check. `exclude` patterns are
 * relative to `excludeBase` (the config's folder). Missing paths and paths
 * that are neither a regular file nor a folder (a FIFO would block the
 * read) are usage errors (exit 2).
 */
export async function collectFiles(
  root: string,
  paths: string[],
  exclude: string[],
  excludeBase = root,
): Promise<WalkResult> {
  const patterns: Array<[string, Ignore]> = exclude.map((
    p,
  ) => [p, ignore().add(p)]);
  const files = new Set<string>();
  const excluded: Excluded[] = [];
  const gitignored: Gitignored[] = [];
  const overridden: Gitignored[] = [];
  const unsupported: string[] = [];
  const special: string[] = [];
  const empty: string[] = [];
  const shown = (abs: string) => relTo(root, abs) || (abs === root ? "." : abs);
  const record = (
    list: Gitignored[],
    abs: string,
    dir: boolean,
    hit: { frame: Frame; rule: string },
  ) => {
    const line = hit.frame.lines.findIndex((l) => l.trim() === hit.rule);
    list.push({
      path: shown(abs) + (dir && abs !== root ? "/" : ""),
      rule: hit.rule,
      source: shown(hit.frame.file) + (line >= 0 ? `:${line + 1}` : ""),
    });
  };

  /** Record and report an excluded path; true when excluded. */
  const isExcluded = (abs: string, dir: boolean): boolean => {
    const rel = relTo(excludeBase, abs);
    if (!rel) return false;
    const p = dir ? rel + "/" : rel;
    for (const [pattern, ig] of patterns) {
      if (ig.ignores(p)) {
        excluded.push({ path: shown(abs) + (dir ? "/" : ""), pattern });
        return true;
      }
    }
    return false;
  };

  const walkDir = async (abs: string, frames: Frame[]) => {
    const gi = await readGitignore(abs);
    const here = gi ? [...frames, gi] : frames;
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const e of Deno.readDir(abs)) entries.push(e);
    } catch (e) {
      throw new CheckError(
        `cannot read folder ${abs}: ${(e as Error).message}`,
      );
    }
    const subdirs: Promise<void>[] = [];
    for (const e of entries) {
      if (e.isSymlink) continue;
      const child = `${abs === "/" ? "" : abs}/${e.name}`;
      if (e.isDirectory) {
        if (e.name === ".git") continue;
        const hit = ignoredBy(here, child, true);
        if (hit) record(gitignored, child, true, hit);
        else if (!isExcluded(child, true)) subdirs.push(walkDir(child, here));
      } else if (LANGUAGE_OF[extOf(e.name)]) {
        const hit = ignoredBy(here, child, false);
        if (hit) record(gitignored, child, false, hit);
        else if (!e.isFile) special.push(shown(child));
        else if (!isExcluded(child, false)) files.add(child);
      }
    }
    await Promise.all(subdirs);
  };

  for (const p of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(p);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new CheckError(`no such file or folder: ${p}`);
      }
      throw new CheckError(`cannot read ${p}: ${(e as Error).message}`);
    }
    if (info.isDirectory) {
      if (isExcluded(p, true)) continue;
      const before = [files.size, gitignored.length, excluded.length];
      const frames = await framesAbove(root, p);
      const hit = ignoredBy(frames, p, true);
      if (hit) record(overridden, p, true, hit);
      // A named folder that a rule above excludes is checked: only the
      // .gitignore files inside it apply.
      await walkDir(p, hit ? [] : frames);
      // Say so when ignore rules or excludes left nothing of a named folder.
      if (
        files.size === before[0] &&
        (gitignored.length > before[1] || excluded.length > before[2])
      ) empty.push(shown(p));
    } else if (!info.isFile) {
      throw new CheckError(
        `${p}: not a regular file or folder (a pipe, socket or device cannot be checked)`,
      );
    } else if (!isExcluded(p, false)) {
      if (LANGUAGE_OF[extOf(p)]) files.add(p);
      else unsupported.push(p);
    }
  }
  excluded.sort((a, b) => a.path.localeCompare(b.path));
  gitignored.sort((a, b) => a.path.localeCompare(b.path));
  special.sort();
  return {
    files: [...files].sort(),
    excluded,
    gitignored,
    overridden,
    unsupported,
    special,
    empty,
  };
}

/**
 * `.gitignore` files that govern `dir`, from the top of its git work tree
 * (or the root, outside a repository) down to its parent.
 */
async function framesAbove(root: string, dir: string): Promise<Frame[]> {
  const top = await gitTop(dir) ?? (relTo(root, dir) !== null ? root : dir);
  const rel = relTo(top, dir);
  if (!rel) return [];
  const frames: Frame[] = [];
  const parts = rel.split("/");
  for (let i = 0; i < parts.length; i++) {
    const base = i
      ? `${top === "/" ? "" : top}/${parts.slice(0, i).join("/")}`
      : top;
    const f = await readGitignore(base);
    if (f) frames.push(f);
  }
  return frames;
}
