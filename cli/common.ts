/**
 * What every command module shares: exit codes, the usage error, user paths
 * and the one error policy (how an error becomes a printed line and an exit
 * code). Command modules and `main.ts` import this file; it imports neither,
 * so there is no import cycle.
 */
import {
  EXIT_FINDINGS,
  EXIT_OK,
  EXIT_USAGE,
  exitCodeOf,
  InputError,
  isUserFacing,
  printable,
} from "../trainer/errors.ts";

export { EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, InputError };

/** A bad flag or argument (exit 2), printed as one line. */
export class UsageError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Resolve a user path against where the user started the command. */
export function userPath(p: string): string {
  if (p.startsWith("/")) return p;
  const base = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  return `${base.replace(/\/$/, "")}/${p}`;
}

/**
 * The error policy of every command: print one line on stderr (unprintable
 * bytes escaped) and return the exit code of `exitCodeOf`. An error that is
 * not user-facing is a bug or an environment failure: with `STAGE2_DEBUG`
 * set it is rethrown so the stack trace shows.
 */
export function reportError(e: unknown): number {
  const message = e instanceof Error ? e.message : String(e);
  if (isUserFacing(e)) {
    console.error(`stage2: ${printable(message)}`);
    // A user-facing error may wrap a lower-level one (`cause`): its stack
    // is what a bug report needs.
    const cause = (e as Error).cause;
    if (Deno.env.get("STAGE2_DEBUG") && cause instanceof Error) {
      console.error(cause.stack);
    }
    return exitCodeOf(e);
  }
  if (Deno.env.get("STAGE2_DEBUG")) throw e;
  console.error(
    `stage2: ${printable(message)} (set STAGE2_DEBUG=1 for the stack trace)`,
  );
  return exitCodeOf(e);
}
