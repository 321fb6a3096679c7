import { checkText } from "../../../audit/normalize/mod.ts";

/** `line:rule` of each finding in `text`, analyzed as file `path`. */
export async function found(path: string, text: string): Promise<string[]> {
  const r = await checkText(path, text);
  return r.findings.map((f) => `${f.line}:${f.rule}`);
}
