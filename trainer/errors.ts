/**
 * The one error taxonomy of the toolkit. Every command maps an error to an
 * exit code the same way, so trainer, data and checker code throw these
 * classes where the problem is found and the CLI only prints them:
 *
 * - `InputError` (exit 2): bad input or usage — a config, data file,
 *   image, checkpoint, run folder or flag the user can fix. The message is
 *   the whole story: one line naming the file, record or key.
 * - `RunFailedError` (exit 1): the run itself failed (a non-finite loss).
 * - Findings of a checker (audit, normalize-check, validate-spec) are not
 *   errors: the command returns `EXIT_FINDINGS`.
 * - Anything else is a bug or an environment failure (exit 1; the CLI
 *   prints the stack only with `STAGE2_DEBUG=1`).
 *
 * @example
 * throw new InputError(`${file}:${line}: unknown key "coordmode"`);
 */

/** Success. */
export const EXIT_OK = 0;
/** Findings or violations (checkers), or a failed run. */
export const EXIT_FINDINGS = 1;
/** A failed run (same code as findings: "the work did not pass"). */
export const EXIT_FAILED = 1;
/** Bad input or usage. */
export const EXIT_USAGE = 2;

/** An error whose message is meant for the user, with its exit code. */
export class Stage2Error extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "Stage2Error";
  }
}

/** Bad input or usage (exit 2): the user can fix it; the message says how. */
export class InputError extends Stage2Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT_USAGE, options);
    this.name = "InputError";
  }
}

/** The run failed (exit 1), e.g. training diverged to a non-finite loss. */
export class RunFailedError extends Stage2Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT_FAILED, options);
    this.name = "RunFailedError";
  }
}

/** File-system errors about a path the user named: bad input, not a bug. */
const INPUT_FS_ERRORS = [
  Deno.errors.NotFound,
  Deno.errors.PermissionDenied,
  Deno.errors.IsADirectory,
  Deno.errors.NotADirectory,
  Deno.errors.AlreadyExists,
  Deno.errors.FilesystemLoop,
];

/** Exit code for an error that reached a command's top level. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof Stage2Error) return e.exitCode;
  if (INPUT_FS_ERRORS.some((c) => e instanceof c)) return EXIT_USAGE;
  return EXIT_FAILED;
}

/** True when the message alone explains the error (no stack trace needed). */
export function isUserFacing(e: unknown): boolean {
  return e instanceof Stage2Error ||
    INPUT_FS_ERRORS.some((c) => e instanceof c);
}

// C0 controls except tab, DEL, C1 controls, invisible format characters
// (BOM, bidi controls), lone surrogates, and U+FFFD (what undecodable bytes
// of a binary file became).
const UNPRINTABLE =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]|\p{Cf}|\p{Cs}/gu;

/**
 * `s` safe to print on one terminal line: control and other unprintable
 * characters become `\xNN` / `\uNNNN` escapes (so bytes read from a binary
 * file never reach the terminal raw), newlines become `\n`.
 *
 * @example
 * printable("bad \x01 byte"); // "bad \\x01 byte"
 */
export function printable(s: string): string {
  return s.replace(/\r?\n/g, "\\n").replace(UNPRINTABLE, (c) => {
    const code = c.codePointAt(0)!;
    const hex = code.toString(16);
    return code < 0x100
      ? `\\x${hex.padStart(2, "0")}`
      : code < 0x10000
      ? `\\u${hex.padStart(4, "0")}`
      : `\\u{${hex}}`;
  });
}

/** A value shown in a message: JSON, with non-finite numbers by name, cut to `max`. */
export function describeValue(v: unknown, max = 60): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number" && !Number.isFinite(v)) {
    return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  }
  let s: string;
  try {
    s = JSON.stringify(v, (_k, x) =>
      typeof x === "number" && !Number.isFinite(x)
        ? (Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity")
        : x) ?? String(v);
  } catch {
    s = String(v);
  }
  s = printable(s);
  return s.length > max ? s.slice(0, max - 3) + "..." : s;
}

/**
 * ` (did you mean x?)` naming the allowed names close to `name` (edit
 * distance <= 2, or one containing the other), or "" when none is.
 *
 * @example
 * didYouMean("coordmode", ["coord_mode", "images"]); // " (did you mean coord_mode?)"
 */
export function didYouMean(name: string, allowed: readonly string[]): string {
  const close = allowed.filter((a) =>
    editDistance(a, name) <= 2 || a.includes(name) || name.includes(a)
  );
  return close.length > 0 ? ` (did you mean ${close.join(" or ")}?)` : "";
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3; // only "<= 2" matters
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(
        d[j] + 1,
        d[j - 1] + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return d[b.length];
}
