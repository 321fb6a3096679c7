/** Root discovery, item listing and id suggestions, as `openspec validate` does them. */
import { discoverSpecFiles, isDirectory } from "./fs.ts";

export interface Root {
  /** Absolute project root (holds `openspec/`). */
  path: string;
  /** `nearest`: found walking up; `implicit`: the start folder, no root found. */
  source: "nearest" | "implicit";
}

function realDir(path: string): string {
  try {
    const real = Deno.realPathSync(path);
    return Deno.statSync(real).isDirectory
      ? real
      : real.replace(/\/[^/]*$/, "") || "/";
  } catch {
    return path;
  }
}

function parent(dir: string): string {
  const p = dir.replace(/\/[^/]*$/, "");
  return p === "" ? "/" : p;
}

/**
 * Nearest folder at or above `start` whose `openspec/` holds `specs/` or
 * `changes/`; else the start folder itself (implicit), or null when
 * `allowImplicit` is false (bulk runs refuse to guess).
 */
export function resolveRoot(
  start: string,
  allowImplicit: boolean,
): Root | null {
  const begin = realDir(start);
  let dir = begin;
  while (true) {
    if (isDirectory(`${dir}/openspec`)) {
      const os = `${dir}/openspec`;
      if (isDirectory(`${os}/specs`) || isDirectory(`${os}/changes`)) {
        return { path: dir, source: "nearest" };
      }
    }
    const up = parent(dir);
    if (up === dir) break;
    dir = up;
  }
  return allowImplicit ? { path: begin, source: "implicit" } : null;
}

/** Active change ids: every non-dot folder under changes/ except `archive`. */
export function listChangeIds(root: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${root}/openspec/changes`)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return entries.filter((e) =>
    e.isDirectory && e.name !== "archive" && !e.name.startsWith(".")
  )
    .map((e) => e.name).sort();
}

/** Spec ids (capability paths) with a `spec.md`. */
export function listSpecIds(root: string): string[] {
  return discoverSpecFiles(`${root}/openspec/specs`).map((s) => s.id);
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length];
}

/** Up to `max` candidates by edit distance (stable for ties), as upstream. */
export function nearestMatches(
  input: string,
  candidates: string[],
  max = 5,
): string[] {
  return candidates.map((c) => ({ c, d: levenshtein(input, c) })).sort((x, y) =>
    x.d - y.d
  )
    .slice(0, max).map((x) => x.c);
}

/** Why an item name cannot be joined onto a folder, or null. */
export function itemNameProblem(
  id: string,
  type: "change" | "spec",
): string | null {
  const check = (v: string, label: string) =>
    v.length === 0
      ? `${label} must not be empty`
      : v === "." || v === ".."
      ? `${label} must not be '${v}'`
      : /[\\/]/u.test(v)
      ? `${label} must not contain path separators`
      : null;
  if (type === "change") return check(id, "Change name");
  for (const seg of id.split("/")) {
    const p = check(seg, "Spec id");
    if (p) return p;
  }
  return null;
}
