/**
 * File discovery: folders are walked honouring every `.gitignore` on the way
 * (npm `ignore`, the gitignore matcher), `.git` is never entered, and the
 * config's `exclude` patterns apply to walked and explicitly named files
 * alike. Files named explicitly (a pre-commit file list) are checked even if
 * gitignored, as git itself would only pass tracked files.
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

export interface WalkResult {
  /** Absolute paths of files to check, sorted. */
  files: string[];
  excluded: Excluded[];
  /** Explicit files skipped because no analyzer reads their type. */
  unsupported: string[];
}

interface Frame {
  /** Absolute folder of the `.gitignore`, with a trailing slash. */
  base: string;
  ig: Ignore;
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

async function readGitignore(dir: string): Promise<Ignore | null> {
  try {
    return ignore().add(await Deno.readTextFile(`${dir}/.gitignore`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new CheckError(
      `cannot read ${dir}/.gitignore: ${(e as Error).message}`,
    );
  }
}

function gitignored(frames: Frame[], abs: string, dir: boolean): boolean {
  for (const f of frames) {
    if (!abs.startsWith(f.base)) continue;
    const sub = abs.slice(f.base.length);
    if (sub && f.ig.ignores(dir ? sub + "/" : sub)) return true;
  }
  return false;
}

/**
 * Expand `paths` (absolute) into the files to check. `exclude` patterns are
 * relative to `excludeBase` (the config's folder). Missing paths are a
 * usage error (exit 2).
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
  const unsupported: string[] = [];
  const shown = (abs: string) => relTo(root, abs) || (abs === root ? "." : abs);

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
    const here = gi ? [...frames, { base: abs + "/", ig: gi }] : frames;
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
      const child = `${abs}/${e.name}`;
      if (e.isDirectory) {
        if (e.name === ".git" || gitignored(here, child, true)) continue;
        if (!isExcluded(child, true)) subdirs.push(walkDir(child, here));
      } else if (e.isFile && LANGUAGE_OF[extOf(e.name)]) {
        if (gitignored(here, child, false)) continue;
        if (!isExcluded(child, false)) files.add(child);
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
      if (!isExcluded(p, true)) await walkDir(p, await parentFrames(root, p));
    } else if (!isExcluded(p, false)) {
      if (LANGUAGE_OF[extOf(p)]) files.add(p);
      else unsupported.push(p);
    }
  }
  excluded.sort((a, b) => a.path.localeCompare(b.path));
  return { files: [...files].sort(), excluded, unsupported };
}

/** `.gitignore` files from the root down to (not including) `dir`. */
async function parentFrames(root: string, dir: string): Promise<Frame[]> {
  const rel = relTo(root, dir);
  if (!rel) return [];
  const frames: Frame[] = [];
  const parts = rel.split("/");
  for (let i = 0; i < parts.length; i++) {
    const base = i ? `${root}/${parts.slice(0, i).join("/")}` : root;
    const gi = await readGitignore(base);
    if (gi) frames.push({ base: base + "/", ig: gi });
  }
  return frames;
}
