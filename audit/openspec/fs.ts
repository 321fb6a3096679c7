/**
 * File discovery with the official walk rules: dot entries skipped, symlinked
 * directories not followed, results in code-point order. Synchronous on
 * purpose: a validate run reads a few hundred small files, and sync reads
 * avoid promise overhead that dominates at that size.
 */

function readDir(dir: string): Deno.DirEntry[] | null {
  try {
    return [...Deno.readDirSync(dir)];
  } catch (e) {
    if (
      e instanceof Deno.errors.NotFound ||
      e instanceof Deno.errors.NotADirectory
    ) {
      return null;
    }
    throw e;
  }
}

function statFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface DiscoveredSpec {
  /** Capability path, e.g. `auth` or `area/auth`. */
  id: string;
  file: string;
}

/** Every `spec.md` below a specs root (not at the root itself), by id. */
export function discoverSpecFiles(root: string): DiscoveredSpec[] {
  const out: DiscoveredSpec[] = [];
  const walk = (dir: string, segments: string[]) => {
    const entries = readDir(dir);
    if (!entries) return;
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path, [...segments, e.name]);
      else if (e.name === "spec.md" && segments.length > 0) {
        if (e.isFile || (e.isSymlink && statFile(path))) {
          out.push({ id: segments.join("/"), file: path });
        }
      }
    }
  };
  walk(root, []);
  return out.sort((a, b) => byCodePoint(a.id, b.id));
}

/** Markdown files under specs/ other than `spec.md` (candidates for unread deltas). */
export function otherMarkdownFiles(
  root: string,
): { path: string; file: string; segments: string[] }[] {
  const out: { path: string; file: string; segments: string[] }[] = [];
  const walk = (dir: string, segments: string[]) => {
    const entries = readDir(dir);
    if (!entries) return;
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) {
        walk(path, [...segments, e.name]);
        continue;
      }
      if (!e.isFile && !e.isSymlink) continue;
      if (e.name === "spec.md" || !e.name.toLowerCase().endsWith(".md")) {
        continue;
      }
      if (e.isSymlink && !statFile(path)) continue;
      out.push({ path: [...segments, e.name].join("/"), file: path, segments });
    }
  };
  walk(root, []);
  return out.sort((a, b) => byCodePoint(a.path, b.path));
}

/** Any regular (or symlinked) non-dot file anywhere below `dir`. */
export function hasAnyFileUnder(dir: string): boolean {
  const entries = readDir(dir);
  if (!entries) return false;
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    if (e.isFile || e.isSymlink) return true;
    if (e.isDirectory && hasAnyFileUnder(`${dir}/${e.name}`)) return true;
  }
  return false;
}

/** Relative POSIX paths of non-dot files below `dir`. */
export function walkFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    for (const e of readDir(abs) ?? []) {
      if (e.name.startsWith(".")) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) walk(`${abs}/${e.name}`, r);
      else out.push(r);
    }
  };
  walk(dir, "");
  return out;
}

/**
 * Glob -> RegExp for schema `generates` patterns (`*`, `**`, `?`, `{a,b}`).
 * Hand-written because only custom workflow schemas use globs here and this
 * subset covers the documented ones; a glob library would be the first
 * dependency of this otherwise dependency-light command.
 */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      const slash = glob[i + 2] === "/";
      // `**/` matches zero or more non-dot folders (fast-glob's default).
      re += slash ? "(?:[^/.][^/]*/)*" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "{") {
      braces++;
      re += "(?:";
    } else if (c === "}" && braces > 0) {
      braces--;
      re += ")";
    } else if (c === "," && braces > 0) re += "|";
    else re += c.replace(/[.+^$()|[\]\\{}]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

export function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

export function isFile(path: string): boolean {
  return statFile(path);
}

/** Sorted names of non-dot subdirectories. */
export function subdirectories(dir: string): string[] {
  return (readDir(dir) ?? []).filter((e) =>
    e.isDirectory && !e.name.startsWith(".")
  )
    .map((e) => e.name).sort(byCodePoint);
}

/** Whether `dir` holds a non-dot entry that is not a directory. */
export function hasOwnFile(dir: string): boolean {
  return (readDir(dir) ?? []).some((e) =>
    !e.name.startsWith(".") && !e.isDirectory
  );
}
