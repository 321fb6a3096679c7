/**
 * The checker's user-facing error (bad config, missing path, unreadable
 * file): the CLI turns it into a one-line usage error, exit 2. The library
 * has its own class so it does not depend on the CLI.
 */
export class CheckError extends Error {
  override name = "CheckError";
}
