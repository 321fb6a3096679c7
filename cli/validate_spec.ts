/**
 * `stage2 validate-spec`: OpenSpec validation with the verdicts of the
 * official `openspec validate` (1.13.2). Imports only the light
 * `audit/openspec` modules so a pre-commit call stays fast.
 */
import type { Command } from "commander";
import { resolveRoot, runValidate } from "../audit/openspec/mod.ts";
import { UsageError, userPath } from "./common.ts";

interface Flags {
  all?: boolean;
  changes?: boolean;
  specs?: boolean;
  type?: string;
  strict?: boolean;
  json?: boolean;
  root?: string;
  archiveCheck?: boolean;
  archived?: boolean;
}

export function register(program: Command): void {
  program.command("validate-spec")
    .description(
      "Validate OpenSpec changes and specs (same verdicts as `openspec validate`)",
    )
    .argument("[item]", "change or spec id")
    .option("--all", "validate all changes and specs")
    .option("--changes", "validate all changes")
    .option("--specs", "validate all specs")
    .option(
      "--type <type>",
      "item type when an id is both a change and a spec: change|spec",
    )
    .option("--strict", "fail on warnings too")
    .option(
      "--json",
      "JSON report (the official CLI's shape, plus `line` fields)",
    )
    .option(
      "--root <dir>",
      "folder to search for the OpenSpec root from (default: current folder)",
    )
    .option(
      "--no-interactive",
      "accepted for compatibility with `openspec validate`; validate-spec never prompts",
    )
    .option(
      "--archived",
      "check that every archived change has all its tasks done (pre-commit lint)",
    )
    .option(
      "--archive-check",
      "also fail on what `openspec archive` would refuse (MODIFIED/RENAMED of a missing requirement, ADDED of an existing one)",
    )
    .action(run);
}

async function run(item: string | undefined, flags: Flags): Promise<void> {
  if (
    flags.type !== undefined && flags.type !== "change" && flags.type !== "spec"
  ) {
    throw new UsageError(
      `--type must be 'change' or 'spec', got '${flags.type}'`,
    );
  }
  if (item !== undefined && (flags.all || flags.changes || flags.specs)) {
    throw new UsageError(
      `pass either an item ('${item}') or --all/--changes/--specs, not both`,
    );
  }
  if (
    flags.archived &&
    (item !== undefined || flags.all || flags.changes || flags.specs)
  ) {
    throw new UsageError(
      "--archived is a scope of its own: pass no item and no --all/--changes/--specs",
    );
  }
  const root = flags.root === undefined ? undefined : userPath(flags.root);
  if (root !== undefined) {
    try {
      if (!Deno.statSync(root).isDirectory) {
        throw new UsageError(`--root ${flags.root}: not a directory`);
      }
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`--root ${flags.root}: no such directory`);
    }
    // Name the folder the user gave, not "the current directory".
    if (!resolveRoot(root, false)) {
      throw new UsageError(
        `--root ${flags.root}: no OpenSpec root in ${root} or above it (expected an openspec/ folder holding specs/ or changes/)`,
      );
    }
  }
  const result = await runValidate({
    item,
    all: flags.all,
    changes: flags.changes,
    specs: flags.specs,
    type: flags.type as "change" | "spec" | undefined,
    strict: flags.strict,
    json: flags.json,
    root: root ?? Deno.env.get("INIT_CWD") ?? Deno.cwd(),
    archiveCheck: flags.archiveCheck,
    archived: flags.archived,
  });
  const enc = new TextEncoder();
  if (result.stdout) Deno.stdout.writeSync(enc.encode(result.stdout));
  if (result.stderr) Deno.stderr.writeSync(enc.encode(result.stderr));
  Deno.exitCode = result.exitCode;
}
