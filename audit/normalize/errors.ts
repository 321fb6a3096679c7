/**
 * The checker's user-facing error (bad config, missing path, unreadable
 * file): the CLI prints its message as one line and exits 2.
 *
 * Not `UsageError` from cli/main.ts: main.ts awaits at top level while it
 * imports the command module, so importing it back deadlocks module
 * evaluation ("Top-level await promise never resolved").
 */
export class CheckError extends Error {
  override name = "CheckError";
}
