/**
 * `stage2` command line. This file only parses arguments and dispatches:
 * every command lives in its own module, imported lazily so light commands
 * (normalize-check, validate-spec) never load TF.js.
 */
import { Command, CommanderError } from "commander";

/** Exit codes shared by all commands. */
export const EXIT_OK = 0;
export const EXIT_FINDINGS = 1;
export const EXIT_USAGE = 2;

/** A user-facing error: printed as one line, no stack trace. */
export class UsageError extends Error {
  constructor(message: string, readonly exitCode = EXIT_USAGE) {
    super(message);
  }
}

/** Resolve a user path against where the user started the command. */
export function userPath(p: string): string {
  if (p.startsWith("/")) return p;
  const base = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  return `${base.replace(/\/$/, "")}/${p}`;
}

type Register = (program: Command) => void;

/** Command modules: each exports `register(program)`. */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  train: () => import("./train.ts"),
  infer: () => import("./infer.ts"),
  audit: () => import("./audit.ts"),
  "normalize-check": () => import("./normalize_check.ts"),
  "validate-spec": () => import("./validate_spec.ts"),
  data: () => import("./data.ts"),
  ablate: () => import("./ablate.ts"),
};

export async function main(argv: string[]): Promise<number> {
  const program = new Command("stage2")
    .description(
      "Train Qwen3-VL-style detectors with Stage-2 AB and check their code and specs",
    )
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
      writeOut: (s) => Deno.stdout.writeSync(new TextEncoder().encode(s)),
    });
  const name = argv.find((a) => !a.startsWith("-"));
  // Only the command being run is imported; `--help` alone lists names only.
  for (const [cmd, load] of Object.entries(COMMANDS)) {
    if (cmd === name) (await load()).register(program);
    else program.command(cmd).description(`(run \`stage2 ${cmd} --help\`)`);
  }
  try {
    Deno.exitCode = EXIT_OK;
    await program.parseAsync(argv, { from: "user" });
    // Commands report findings by setting `Deno.exitCode`; hand it back and
    // reset it so an in-process caller (tests) does not inherit it.
    const code = Deno.exitCode;
    Deno.exitCode = EXIT_OK;
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return EXIT_OK; // --help / --version
      return EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      console.error(`stage2: ${e.message}`);
      return e.exitCode;
    }
    // Anything else is a bug or an environment failure: one line for the
    // user, the stack only on request.
    if (Deno.env.get("STAGE2_DEBUG")) throw e;
    console.error(
      `stage2: ${e instanceof Error ? e.message : String(e)}` +
        " (set STAGE2_DEBUG=1 for the stack trace)",
    );
    return 1;
  }
}

if (import.meta.main) {
  // No top-level await: command modules import this file for `UsageError`,
  // and a pending top-level await here would deadlock their evaluation.
  main(Deno.args).then((code) => Deno.exit(code));
}
