/**
 * The project config of normalize-check, `.normalize-check.json` at the
 * root: gitignore-style `exclude` patterns relative to the root (for fixture
 * corpora full of deliberate positives, vendored code, ...).
 */
import { z } from "zod";
import { CheckError } from "./errors.ts";

export const CONFIG_NAME = ".normalize-check.json";

const ConfigSchema = z.strictObject({
  $comment: z.string().optional(),
  exclude: z.array(z.string().min(1)).default([]),
});

export type NormalizeConfig = z.infer<typeof ConfigSchema>;

/**
 * Load a config file. `required` is false for the implicit
 * `<root>/.normalize-check.json`, which may be absent.
 */
export async function loadConfig(
  path: string,
  required: boolean,
): Promise<NormalizeConfig | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && !required) return null;
    throw new CheckError(`cannot read config ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckError(
      `config ${path} is not valid JSON: ${(e as Error).message}`,
    );
  }
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.length
      ? `key '${issue.path.join(".")}'`
      : "top level";
    throw new CheckError(`config ${path}: ${where}: ${issue.message}`);
  }
  return r.data;
}
