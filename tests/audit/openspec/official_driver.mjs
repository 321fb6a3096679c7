// Runs many `openspec validate` invocations in one Node process.
//
// Node startup plus loading the official CLI costs ~0.6 s per call; the
// differential suite makes a dozen calls, so they share one process here.
// Each case runs the official `ValidateCommand.execute` exactly as the CLI's
// `validate` action does, from the case's folder, with console output and
// `process.exitCode` captured per case. One plain CLI call in the suite checks
// that this driver and the real command line agree.
//
// Usage: node official_driver.mjs <openspec package dir> <cases.json>
//   cases.json: [{ "cwd": "...", "args": ["--all", "--json", ...] }, ...]
// Prints a JSON array of { code, stdout, stderr }.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [pkgDir, casesFile] = process.argv.slice(2);
const { ValidateCommand } = await import(
  pathToFileURL(`${pkgDir}/dist/commands/validate.js`).href
);
const cases = JSON.parse(readFileSync(casesFile, "utf-8"));

/** Commander's view of `validate [item] [flags]`. */
function parse(args) {
  const options = { interactive: true };
  let item;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--type") options.type = args[++i];
    else if (a.startsWith("--")) {
      options[a.slice(2).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = true;
    } else item = a;
  }
  return { item, options };
}

const log = console.log;
const error = console.error;
const results = [];
for (const c of cases) {
  const out = [];
  const err = [];
  console.log = (...xs) => out.push(xs.join(" "));
  console.error = (...xs) => err.push(xs.join(" "));
  process.exitCode = undefined;
  process.chdir(c.cwd);
  const { item, options } = parse(c.args);
  try {
    await new ValidateCommand().execute(item, options);
  } catch (e) {
    err.push(`Error: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
  results.push({
    code: process.exitCode ?? 0,
    stdout: out.length ? out.join("\n") + "\n" : "",
    stderr: err.length ? err.join("\n") + "\n" : "",
  });
}
console.log = log;
console.error = error;
process.exitCode = 0;
log(JSON.stringify(results));
