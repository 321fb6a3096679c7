/**
 * `--archived`: every archived change (`openspec/changes/archive/<id>/`) must
 * have all of its tracked tasks checked, as `openspec validate --archived`
 * requires for pre-commit linting.
 */
import { trackedTaskFiles } from "./schema.ts";
import { parseTaskLines } from "./tasks.ts";
import type { Issue, ItemResult } from "./types.ts";

/** Archived change ids (non-dot folders), sorted; none when there is no archive. */
export function listArchivedIds(root: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(`${root}/openspec/changes/archive`)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return entries.filter((e) => e.isDirectory && !e.name.startsWith(".")).map((
    e,
  ) => e.name)
    .sort();
}

/** Task completion of one archived change. */
export function validateArchived(root: string, id: string): ItemResult {
  const start = performance.now();
  const rel = `openspec/changes/archive/${id}`;
  const dir = `${root}/${rel}`;
  const issues: Issue[] = [];
  const files = trackedTaskFiles(dir, root);
  let total = 0;
  let done = 0;
  for (const file of files.length > 0 ? files : [`${dir}/tasks.md`]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      // A task file that exists but cannot be read must not pass as "no tasks".
      const path = file.slice(root.length + 1);
      issues.push({
        level: "ERROR",
        path,
        file: path,
        message: "could not read task file",
      });
      continue;
    }
    const tasks = parseTaskLines(text);
    total += tasks.length;
    done += tasks.filter((t) => t.done).length;
  }
  const open = Math.max(total - done, 0);
  if (open > 0) {
    issues.push({
      level: "ERROR",
      path: "tasks.md",
      file: `${rel}/tasks.md`,
      message: `${open} incomplete task${
        open === 1 ? "" : "s"
      } (${done}/${total} completed)`,
    });
  }
  return {
    id,
    type: "change",
    valid: issues.length === 0,
    issues,
    durationMs: Math.round(performance.now() - start),
  };
}
