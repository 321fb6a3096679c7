/**
 * `validate-spec` engine: resolves the root and the items like
 * `openspec validate` (1.13.2), validates them and renders the human or JSON
 * report. Pure apart from file reads: returns the text and the exit code.
 */
import { validateChange } from "./change_rules.ts";
import {
  itemNameProblem,
  listChangeIds,
  listSpecIds,
  nearestMatches,
  resolveRoot,
  type Root,
} from "./discovery.ts";
import { listArchivedIds, validateArchived } from "./archived.ts";
import { commonmarkNotes } from "./commonmark.ts";
import { discoverSpecFiles } from "./fs.ts";
import { formatHuman } from "./human.ts";
import { loadYamlSupport, needsYaml } from "./schema.ts";
import { validateSpecFile } from "./spec_rules.ts";
import type { FileNote, Issue, ItemResult, ItemType, Report } from "./types.ts";

export type { Issue, ItemResult, ItemType, Level, Report } from "./types.ts";
export { resolveRoot } from "./discovery.ts";

export interface ValidateOptions {
  item?: string;
  all?: boolean;
  changes?: boolean;
  specs?: boolean;
  type?: ItemType;
  strict?: boolean;
  json?: boolean;
  /** Folder to start root discovery from (default: the current folder). */
  root?: string;
  /** Report what `openspec archive` would refuse as errors. */
  archiveCheck?: boolean;
  /** Check task completion of archived changes instead (`openspec validate --archived`). */
  archived?: boolean;
}

export interface ValidateOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Issue in the official JSON shape: level, path, optional line, message. */
function jsonIssue(i: Issue) {
  return {
    level: i.level,
    path: i.path,
    ...(i.line ? { line: i.line } : {}),
    message: i.message,
  };
}

function jsonItem(r: ItemResult) {
  return {
    id: r.id,
    type: r.type,
    valid: r.valid,
    issues: r.issues.map(jsonIssue),
    durationMs: r.durationMs,
  };
}

function counts(results: ItemResult[]) {
  const passed = results.filter((r) => r.valid).length;
  return { items: results.length, passed, failed: results.length - passed };
}

function jsonReport(
  results: ItemResult[],
  byType: ItemType[],
  root: Root,
): string {
  const summary = {
    totals: counts(results),
    byType: Object.fromEntries(
      byType.map((t) => [t, counts(results.filter((r) => r.type === t))]),
    ),
  };
  return JSON.stringify(
    {
      items: results.map(jsonItem),
      summary,
      version: "1.0",
      root: { path: root.path, source: root.source },
    },
    null,
    2,
  );
}

function status(
  code: string,
  message: string,
  extra: Record<string, string> = {},
): string {
  return JSON.stringify(
    { status: [{ severity: "error", code, message, ...extra }] },
    null,
    2,
  );
}

function validateItem(
  root: Root,
  type: ItemType,
  id: string,
  opts: ValidateOptions,
  mainSpecs?: Map<string, string | null>,
): ItemResult {
  const start = performance.now();
  let report: Report;
  if (type === "change") {
    report = validateChange({
      root: root.path,
      id,
      strict: !!opts.strict,
      archiveCheck: opts.archiveCheck,
      mainSpecs,
    });
  } else {
    const rel = `openspec/specs/${id}/spec.md`;
    report = validateSpecFile(`${root.path}/${rel}`, !!opts.strict, rel);
  }
  return {
    id,
    type,
    valid: report.valid,
    issues: report.issues,
    durationMs: Math.round(performance.now() - start),
  };
}

/** CommonMark-vs-OpenSpec heading notes for the Markdown files of an item. */
async function addNotes(root: Root, r: ItemResult): Promise<void> {
  const files = r.type === "spec"
    ? [`openspec/specs/${r.id}/spec.md`]
    : discoverSpecFiles(`${root.path}/openspec/changes/${r.id}/specs`).map((
      s,
    ) => s.file.slice(root.path.length + 1));
  const notes: FileNote[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(`${root.path}/${file}`);
    } catch {
      continue;
    }
    for (const n of await commonmarkNotes(text)) notes.push({ file, ...n });
  }
  if (notes.length > 0) r.notes = notes;
}

const out = (
  exitCode: number,
  stdout: string[],
  stderr: string[] = [],
): ValidateOutput => ({
  exitCode,
  stdout: stdout.length ? stdout.join("\n") + "\n" : "",
  stderr: stderr.length ? stderr.join("\n") + "\n" : "",
});

export async function runValidate(
  opts: ValidateOptions,
): Promise<ValidateOutput> {
  const bulk = !!(opts.all || opts.changes || opts.specs);
  const start = opts.root ?? Deno.cwd();
  const root = resolveRoot(start, !bulk);
  if (!root) {
    const message = "No OpenSpec root found from the current directory.";
    const fix = "Run openspec init to create a root here.";
    return opts.json
      ? out(1, [
        status("no_openspec_root", message, { target: "openspec.root", fix }),
      ])
      : out(1, [], [`Error: ${message}`, `Fix: ${fix}`]);
  }
  if (opts.archived) {
    const ids = listArchivedIds(root.path);
    if (needsYaml(root.path, ids, `${root.path}/openspec/changes/archive`)) {
      await loadYamlSupport();
    }
    const results = ids.map((id) => validateArchived(root.path, id));
    const code = results.some((r) => !r.valid) ? 1 : 0;
    if (opts.json) return out(code, [jsonReport(results, ["change"], root)]);
    if (results.length === 0) return out(0, ["No archived changes found."]);
    return out(code, formatHuman(results, false));
  }
  if (bulk) {
    const wantChanges = !!(opts.all || opts.changes);
    const wantSpecs = !!(opts.all || opts.specs);
    const results: ItemResult[] = [];
    const mainSpecs = new Map<string, string | null>();
    const changeIds = wantChanges ? listChangeIds(root.path) : [];
    if (needsYaml(root.path, changeIds)) await loadYamlSupport();
    if (wantChanges) {
      for (const id of changeIds) {
        results.push(validateItem(root, "change", id, opts, mainSpecs));
      }
    }
    if (wantSpecs) {
      for (const id of listSpecIds(root.path)) {
        results.push(validateItem(root, "spec", id, opts));
      }
    }
    // Stable sort: a change and a spec sharing an id keep change-first order.
    results.sort((a, b) => a.id.localeCompare(b.id));
    const byType: ItemType[] = [
      ...(wantChanges ? ["change" as const] : []),
      ...(wantSpecs ? ["spec" as const] : []),
    ];
    const code = results.some((r) => !r.valid) ? 1 : 0;
    if (opts.json) return out(code, [jsonReport(results, byType, root)]);
    if (results.length === 0) return out(0, ["No items found to validate."]);
    for (const r of results) await addNotes(root, r);
    return out(code, formatHuman(results, false));
  }
  if (!opts.item) {
    return out(1, [], [
      "Nothing to validate. Try one of:",
      "  stage2 validate-spec --all",
      "  stage2 validate-spec --changes",
      "  stage2 validate-spec --specs",
      "  stage2 validate-spec <item-name>",
    ]);
  }
  const id = opts.item;
  const changes = listChangeIds(root.path);
  const specs = listSpecIds(root.path);
  const isChange = changes.includes(id);
  const isSpec = specs.includes(id);
  const type = opts.type ?? (isChange ? "change" : isSpec ? "spec" : undefined);
  if (!type) {
    const suggestions = nearestMatches(id, [...changes, ...specs]);
    const message = suggestions.length
      ? `Unknown item '${id}'. Did you mean: ${suggestions.join(", ")}?`
      : `Unknown item '${id}'.`;
    return opts.json
      ? out(1, [status("unknown_item", message)])
      : out(1, [], [message]);
  }
  if (!opts.type && isChange && isSpec) {
    const message = `Ambiguous item '${id}' matches both a change and a spec.`;
    return opts.json
      ? out(1, [
        status("ambiguous_item", message, { fix: "Pass --type change|spec." }),
      ])
      : out(1, [], [message, "Pass --type change|spec."]);
  }
  const problem = itemNameProblem(id, type);
  if (problem) {
    return opts.json
      ? out(1, [status("invalid_item", problem)])
      : out(1, [], [problem]);
  }
  if (type === "change" && needsYaml(root.path, [id])) await loadYamlSupport();
  const result = validateItem(root, type, id, opts);
  const code = result.valid ? 0 : 1;
  if (opts.json) return out(code, [jsonReport([result], [type], root)]);
  await addNotes(root, result);
  return out(code, formatHuman([result], true));
}
