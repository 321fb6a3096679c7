/**
 * `stage2` command line. This file only parses arguments and dispatches:
 * every command lives in its own module, imported lazily so light commands
 * (normalize-check, validate-spec) never load TF.js.
 */
import { Command, CommanderError } from "commander";
import { EXIT_OK, EXIT_USAGE, reportError } from "./common.ts";

type Register = (program: Command) => void;

/** Command modules: each exports `register(program)`. */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  train: () => import("./train.ts"),
  infer: () => import("./infer.ts"),
  eval: () => import("./eval.ts"),
  report: () => import("./report.ts"),
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
    return reportError(e);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
