/**
 * The project config of normalize-check, `.normalize-check.json` (the
 * nearest one in the root or a parent folder): gitignore-style `exclude`
 * patterns relative to the folder that holds it, for fixture corpora full
 * of deliberate positives, vendored code, and the like.
 */
import { z } from "zod";
import { CheckError } from "./errors.ts";

export const CONFIG_NAME = ".normalize-check.json";

const ConfigSchema = z.strictObject({
  $comment: z.string().optional(),
  exclude: z.array(z.string().min(1)).default([]),
});

export type NormalizeConfig = z.infer<typeof ConfigSchema>;

/** Load and validate a config file; any problem is a one-line error. */
export async function loadConfig(path: string): Promise<NormalizeConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
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
