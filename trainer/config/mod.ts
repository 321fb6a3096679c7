/** Config system: load/validate YAML configs, hash and persist the result. */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { stringify } from "yaml";
import { writeFileAtomic } from "../data/atomic.ts";
import type { Stage2Config } from "./schema.ts";

export {
  DEFAULTS,
  type ResolvedConfig,
  type Stage2Config,
  stage2Schema,
} from "./schema.ts";
export { type Stage2Knobs, stage2Knobs } from "./knobs.ts";
export {
  ConfigError,
  displayPath,
  loadConfig,
  loadConfigDetailed,
  type LoadedConfig,
  type LoadOptions,
  resolveConfigObject,
  userCwd,
  warmStartRoot,
} from "./load.ts";

/**
 * Keys that do not change what a run computes, left out of `configHash` so a
 * warm-start run is reused whatever folder, thread count, trace level or
 * resume setting it was started with.
 */
export const HASH_EXCLUDED_KEYS = [
  "model.warm_start_dir",
  "training.output_dir",
  "training.resume",
  "training.threads",
  "training.trace",
];

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${
      Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) =>
        `${JSON.stringify(k)}:${canonicalJson(o[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/** Stable sha256 (hex) of the config's canonical JSON, minus `HASH_EXCLUDED_KEYS`. */
export function configHash(cfg: Stage2Config): string {
  const c = structuredClone(cfg) as unknown as Record<
    string,
    Record<string, unknown>
  >;
  for (const k of HASH_EXCLUDED_KEYS) {
    const [group, key] = k.split(".");
    if (c[group]) delete c[group][key];
  }
  return createHash("sha256").update(canonicalJson(c)).digest("hex");
}

/** The resolved config a run folder keeps (`writeResolvedConfig`). */
export const RESOLVED_CONFIG_FILE = "config.yaml";

/** Write `<runDir>/config.yaml` (atomic); returns its path. */
export async function writeResolvedConfig(
  runDir: string,
  cfg: Stage2Config,
): Promise<string> {
  const path = join(runDir, RESOLVED_CONFIG_FILE);
  const header =
    `# Resolved stage2 config (defaults + extends + overrides); hash ${
      configHash(cfg)
    }\n`;
  await writeFileAtomic(path, header + stringify(cfg, { lineWidth: 0 }));
  return path;
}
