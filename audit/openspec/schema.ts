/**
 * Change metadata (`.openspec.yaml`), workflow schemas and the files a
 * change's schema tracks as its task list.
 *
 * Schemas resolve project-local (`openspec/schemas/<name>/schema.yaml`), then
 * the user data dir, then the built-in `spec-driven` (embedded below: only its
 * artifact outputs matter to validation).
 */
import type * as Yaml from "yaml";
import type * as Zod from "zod";
import { globToRegExp, walkFiles } from "./fs.ts";

// yaml and zod cost ~100 ms to load, a third of a single-item run; most
// changes have no metadata file, so they load only when a YAML file exists.
let yaml: typeof Yaml | undefined;
let zod: typeof Zod | undefined;

/** Load the YAML/schema support; idempotent. */
export async function loadYamlSupport(): Promise<void> {
  yaml ??= await import("yaml");
  zod ??= await import("zod");
}

function parseYaml(text: string): unknown {
  if (!yaml) {
    throw new Error(
      "internal: loadYamlSupport() was not awaited before reading YAML",
    );
  }
  return yaml.parse(text);
}

function z(): typeof Zod.z {
  if (!zod) {
    throw new Error(
      "internal: loadYamlSupport() was not awaited before reading YAML",
    );
  }
  return zod.z;
}

/** Whether validating `changeIds` under `root` can read any YAML file. */
export function needsYaml(
  root: string,
  changeIds: string[],
  changesDir = `${root}/openspec/changes`,
): boolean {
  const exists = (p: string) => {
    try {
      Deno.statSync(p);
      return true;
    } catch {
      return false;
    }
  };
  return exists(`${root}/openspec/config.yaml`) ||
    exists(`${root}/openspec/config.yml`) ||
    schemaDirs(root).some(exists) ||
    changeIds.some((id) => exists(`${changesDir}/${id}/${METADATA_FILENAME}`));
}

export const METADATA_FILENAME = ".openspec.yaml";

export interface SchemaInfo {
  artifacts: { id: string; generates: string }[];
  tracks?: string;
  builtIn: boolean;
}

const SPEC_DRIVEN: SchemaInfo = {
  artifacts: [
    { id: "proposal", generates: "proposal.md" },
    { id: "specs", generates: "specs/**/*.md" },
    { id: "design", generates: "design.md" },
    { id: "tasks", generates: "tasks.md" },
  ],
  tracks: "tasks.md",
  builtIn: true,
};

const kebab = (label: string) =>
  z().string().superRefine((v, ctx) => {
    if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/u.test(v)) {
      ctx.addIssue({
        code: "custom",
        message:
          `${label} must be kebab-case with lowercase letters, numbers, and single hyphen separators`,
      });
    }
  });

/** Same shape and messages as the official change-metadata schema. */
let metadataSchema: ReturnType<typeof buildMetadataSchema> | undefined;
const ChangeMetadataSchema = () => (metadataSchema ??= buildMetadataSchema());
const buildMetadataSchema = () =>
  z().object({
    schema: z().string().min(1, { message: "schema is required" }),
    created: z().string().regex(/^\d{4}-\d{2}-\d{2}$/, {
      message: "created must be YYYY-MM-DD format",
    }).optional(),
    goal: z().string().min(1).optional(),
    affected_areas: z().array(z().string().min(1)).optional(),
    initiative: z().object({
      store: kebab("Store id"),
      id: kebab("Initiative id"),
    })
      .strict()
      .optional(),
    skip_specs: z().boolean().optional(),
    retire_capabilities: z().boolean().optional(),
  });

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function userSchemasDir(): string {
  const xdg = Deno.env.get("XDG_DATA_HOME");
  const home = Deno.env.get("HOME") ?? "";
  return xdg
    ? `${xdg}/openspec/schemas`
    : `${home}/.local/share/openspec/schemas`;
}

function schemaDirs(projectRoot: string): string[] {
  return [`${projectRoot}/openspec/schemas`, userSchemasDir()];
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Names every resolvable schema (built-in included), sorted. */
export function listSchemas(projectRoot: string): string[] {
  const names = new Set<string>(["spec-driven"]);
  for (const dir of schemaDirs(projectRoot)) {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(dir)];
    } catch {
      continue;
    }
    for (const e of entries) {
      if (/\.(fork|init)-(staging|backup)-/.test(e.name)) continue;
      if (isFile(`${dir}/${e.name}/schema.yaml`)) names.add(e.name);
    }
  }
  return [...names].sort();
}

/** The first `requires` cycle, written `a → b → a`, as the official check reports it. */
function findCycle(
  artifacts: { id: string; requires: string[] }[],
): string | null {
  const byId = new Map(artifacts.map((a) => [a.id, a]));
  const visited = new Set<string>();
  const stack = new Set<string>();
  const parent = new Map<string, string>();
  const dfs = (id: string): string | null => {
    visited.add(id);
    stack.add(id);
    for (const dep of byId.get(id)?.requires ?? []) {
      if (!visited.has(dep)) {
        parent.set(dep, id);
        const found = dfs(dep);
        if (found) return found;
      } else if (stack.has(dep)) {
        const path = [dep];
        for (let cur = id; cur !== dep; cur = parent.get(cur)!) {
          path.unshift(cur);
        }
        path.unshift(dep);
        return path.join(" → ");
      }
    }
    stack.delete(id);
    return null;
  };
  for (const a of artifacts) {
    if (!visited.has(a.id)) {
      const found = dfs(a.id);
      if (found) return found;
    }
  }
  return null;
}

/** Load a schema by name; throws with a one-line reason when it cannot. */
export function resolveSchema(name: string, projectRoot: string): SchemaInfo {
  const normalized = name.replace(/\.ya?ml$/, "");
  if (
    !normalized || normalized === "." || normalized === ".." ||
    /[\\/]/.test(normalized)
  ) {
    throw new Error(`Schema '${normalized}' not found.`);
  }
  for (const dir of schemaDirs(projectRoot)) {
    const path = `${dir}/${normalized}/schema.yaml`;
    const text = readText(path);
    if (text === null) continue;
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch (e) {
      throw new Error(
        `Failed to parse schema at '${path}': ${(e as Error).message}`,
      );
    }
    // The official schema grammar (name, version, artifacts with
    // description and template, apply.requires): a schema the official CLI
    // refuses to load must not resolve here either, or task checks diverge.
    const relPath = (field: string) =>
      z().string().min(1, { error: `${field} is required` }).superRefine(
        (v, ctx) => {
          const escapes = v.split(/[\\/]+/u).includes("..");
          if (
            v.startsWith("/") || /^[A-Za-z]:/u.test(v) || v.startsWith("\\") ||
            escapes || v.includes("\0")
          ) {
            ctx.addIssue({
              code: "custom",
              message:
                `${field} must be a relative path inside its allowed directory`,
            });
          }
        },
      );
    const parsed = z().object({
      name: z().string().min(1, { error: "Schema name is required" }),
      version: z().number().int().positive({
        error: "Version must be a positive integer",
      }),
      description: z().string().optional(),
      artifacts: z().array(
        z().object({
          id: z().string().min(1, { error: "Artifact ID is required" }),
          generates: relPath("generates field"),
          description: z().string(),
          template: relPath("template field"),
          instruction: z().string().optional(),
          requires: z().array(z().string()).default([]),
        }),
      ).min(1, { error: "At least one artifact required" })
        .max(1000, { error: "A schema may declare at most 1000 artifacts" }),
      apply: z().object({
        requires: z().array(z().string()).min(1, {
          error: "At least one required artifact",
        }),
        tracks: relPath("apply.tracks").nullable().optional(),
        instruction: z().string().optional(),
      }).optional(),
    }).safeParse(raw);
    const invalid = (why: string) =>
      new Error(`Invalid schema at '${path}': ${why}`);
    if (!parsed.success) {
      const all = parsed.error.issues.map((e) =>
        `${e.path.join(".")}: ${e.message}`
      );
      throw invalid(`Invalid schema: ${all.join(", ")}`);
    }
    const ids = parsed.data.artifacts.map((a) => a.id);
    const dup = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dup !== undefined) throw invalid(`Duplicate artifact ID: ${dup}`);
    for (const a of parsed.data.artifacts) {
      const bad = a.requires.find((r) => !ids.includes(r));
      if (bad !== undefined) {
        throw invalid(
          `Invalid dependency reference in artifact '${a.id}': '${bad}' does not exist`,
        );
      }
    }
    const badApply = (parsed.data.apply?.requires ?? []).find((r) =>
      !ids.includes(r)
    );
    if (badApply !== undefined) {
      throw invalid(
        `Invalid apply.requires reference: '${badApply}' does not exist (artifacts: ${
          ids.join(", ")
        })`,
      );
    }
    const cycle = findCycle(parsed.data.artifacts);
    if (cycle) throw invalid(`Cyclic dependency detected: ${cycle}`);
    return {
      artifacts: parsed.data.artifacts,
      tracks: parsed.data.apply?.tracks ?? undefined,
      builtIn: false,
    };
  }
  if (normalized === "spec-driven") return SPEC_DRIVEN;
  throw new Error(
    `Schema '${normalized}' not found. Available schemas: ${
      listSchemas(projectRoot).join(", ")
    }`,
  );
}

function projectConfigSchema(projectRoot: string): string | undefined {
  const text = readText(`${projectRoot}/openspec/config.yaml`) ??
    readText(`${projectRoot}/openspec/config.yml`);
  if (text === null) return undefined;
  try {
    const raw = parseYaml(text) as Record<string, unknown> | null;
    const s = raw && typeof raw === "object" ? raw.schema : undefined;
    return typeof s === "string" && s.length > 0 ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Metadata, validated; null when absent; throws when present but invalid. */
function readChangeMetadata(changeDir: string, projectRoot: string) {
  const text = readText(`${changeDir}/${METADATA_FILENAME}`);
  if (text === null) return null;
  const parsed = ChangeMetadataSchema().safeParse(parseYaml(text));
  if (!parsed.success) {
    throw new Error(`Invalid metadata: ${parsed.error.message}`);
  }
  if (!listSchemas(projectRoot).includes(parsed.data.schema)) {
    throw new Error(`Unknown schema '${parsed.data.schema}'`);
  }
  return parsed.data;
}

/** Metadata schema, else project config schema, else `spec-driven`. */
export function resolveSchemaForChange(
  changeDir: string,
  projectRoot: string,
): string {
  const meta = readChangeMetadata(changeDir, projectRoot);
  if (meta?.schema) return meta.schema;
  return projectConfigSchema(projectRoot) ?? "spec-driven";
}

export interface Marker {
  declared: boolean;
  invalidReason?: string;
}

function unhonorable(reason: string): Marker {
  // The reason quotes user text and is printed to a terminal: control
  // characters (CR, ESC) must not reach it.
  // deno-lint-ignore no-control-regex
  const control = /[\u0000-\u001f\u007f]/g;
  return { declared: false, invalidReason: reason.replace(control, "?") };
}

/** The `skip_specs` marker, honoured only when the metadata would load. */
export function readSkipSpecsMarker(
  changeDir: string,
  projectRoot: string,
): Marker {
  const key = "skip_specs";
  let raw: string | null;
  try {
    raw = readText(`${changeDir}/${METADATA_FILENAME}`);
  } catch (e) {
    return unhonorable(
      `the metadata file cannot be read (${(e as Error).message})`,
    );
  }
  if (raw === null) return { declared: false };
  let parsed: unknown;
  try {
    parsed = parseYaml(raw);
  } catch {
    const mentioned = new RegExp(`^\\s*(['"]?)${key}\\1\\s*:`, "m").test(raw);
    return mentioned
      ? unhonorable("the file is not valid YAML")
      : { declared: false };
  }
  const result = ChangeMetadataSchema().safeParse(parsed);
  if (result.success) {
    if (result.data.skip_specs !== true) return { declared: false };
    try {
      if (!listSchemas(projectRoot).includes(result.data.schema)) {
        return unhonorable(`schema: unknown schema '${result.data.schema}'`);
      }
      resolveSchema(result.data.schema, projectRoot);
    } catch (e) {
      return unhonorable((e as Error).message);
    }
    return { declared: true };
  }
  const obj = parsed as Record<string, unknown> | null;
  if (
    typeof obj === "object" && obj !== null && key in obj && obj[key] !== false
  ) {
    const first = result.error.issues[0];
    const where = first.path.length > 0 ? `${first.path.join(".")}: ` : "";
    return unhonorable(`${where}${first.message}`);
  }
  return { declared: false };
}

/** Files (absolute) an artifact's `generates` resolves to in a change. */
export function artifactOutputs(
  changeDir: string,
  generates: string,
): string[] {
  if (!/[*?{[]/.test(generates)) {
    return isFile(`${changeDir}/${generates}`)
      ? [`${changeDir}/${generates}`]
      : [];
  }
  const re = globToRegExp(generates);
  return walkFiles(changeDir).filter((rel) => re.test(rel)).map((rel) =>
    `${changeDir}/${rel}`
  )
    .sort();
}

/** Task files the change's schema tracks (empty when it cannot be resolved). */
export function trackedTaskFiles(
  changeDir: string,
  projectRoot: string,
): string[] {
  let schema: SchemaInfo;
  try {
    schema = resolveSchema(
      resolveSchemaForChange(changeDir, projectRoot),
      projectRoot,
    );
  } catch {
    return [];
  }
  const artifact = schema.tracks != null
    ? schema.artifacts.find((a) => a.generates === schema.tracks)
    : schema.artifacts.find((a) => a.id === "tasks");
  return artifact ? artifactOutputs(changeDir, artifact.generates) : [];
}

/** True when the change resolves to the built-in `spec-driven` schema. */
export function usesBuiltInSpecDriven(
  changeDir: string,
  projectRoot: string,
): boolean {
  try {
    const name = resolveSchemaForChange(changeDir, projectRoot).replace(
      /\.ya?ml$/,
      "",
    );
    return name === "spec-driven" && resolveSchema(name, projectRoot).builtIn;
  } catch {
    return false;
  }
}

/** Whether any artifact of the change's schema already has an output. */
export function hasSchemaOutput(
  changeDir: string,
  projectRoot: string,
): boolean {
  try {
    const schema = resolveSchema(
      resolveSchemaForChange(changeDir, projectRoot),
      projectRoot,
    );
    return schema.artifacts.some((a) =>
      artifactOutputs(changeDir, a.generates).length > 0
    );
  } catch {
    return false;
  }
}
