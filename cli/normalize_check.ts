/**
 * `stage2 normalize-check [PATHS...]`: find leftover 1000-based bin
 * normalization. Light on purpose: the parsers load only when a file needs
 * them, and nothing here touches TF.js or the trainer.
 */
import type { Command } from "commander";
import { EXIT_FINDINGS, EXIT_OK, UsageError, userPath } from "./common.ts";
import {
  CheckError,
  checkPaths,
  CONFIG_NAME,
  formatFindings,
  FORMATS,
  type OutputFormat,
  summary,
  verboseLines,
  warnings,
} from "../audit/normalize/mod.ts";

interface Opts {
  format: string;
  root?: string;
  /** A path, `false` for `--no-config`, undefined for the default lookup. */
  config?: string | false;
  verbose?: boolean;
}

async function run(paths: string[], opts: Opts): Promise<number> {
  if (!FORMATS.includes(opts.format as OutputFormat)) {
    throw new CheckError(
      `unknown --format '${opts.format}' (expected ${FORMATS.join(", ")})`,
    );
  }
  const format = opts.format as OutputFormat;
  const report = await checkPaths({
    root: userPath(opts.root ?? "."),
    paths: paths.map(userPath),
    config: opts.config === undefined
      ? undefined
      : opts.config === false
      ? null
      : userPath(opts.config),
  });
  const out = formatFindings(report.findings, format);
  if (format === "json" || out) {
    await Deno.stdout.write(new TextEncoder().encode(out));
  }
  if (opts.verbose) { for (const l of verboseLines(report)) console.error(l); }
  for (const w of warnings(report)) console.error(w);
  if (format !== "json") console.error(summary(report));
  return report.findings.length ? EXIT_FINDINGS : EXIT_OK;
}

export function register(program: Command): void {
  program
    .command("normalize-check")
    .description(
      "Find leftover 1000-based coordinate-bin normalization (bins decode as k/999) " +
        "in Python, TS/JS, Markdown, YAML and JSON. Exit 0 clean, 1 findings, 2 usage or read error.",
    )
    .argument(
      "[paths...]",
      "files or folders to check (default: .); folders honour .gitignore",
    )
    .option("--format <format>", `output format: ${FORMATS.join("|")}`, "text")
    .option(
      "--root <dir>",
      "reported paths are relative to this folder (default: .)",
    )
    .option(
      "--config <file>",
      `config with "exclude" patterns (default: the nearest ${CONFIG_NAME} in the root or a parent folder)`,
    )
    .option("--no-config", "apply no config file (check excluded paths too)")
    .option(
      "-v, --verbose",
      "also list the config, excluded paths and suppressed findings",
    )
    .action(async (paths: string[], opts: Opts) => {
      try {
        Deno.exitCode = await run(paths, opts);
      } catch (e) {
        // The library's errors become the CLI's one-line usage errors (exit 2).
        if (e instanceof CheckError) {
          throw new UsageError(`normalize-check: ${e.message}`);
        }
        throw e;
      }
    });
}
