/**
 * Config loading: YAML files with `extends:` chains, deep-merged over the
 * defaults, `--set a.b=c` overrides, strict validation with errors that name
 * the dotted key, the file:line that set it and what is allowed.
 *
 * Merge rules: mappings merge key by key (the extending file wins); lists
 * and scalars replace; an empty group (`training:` with nothing under it) is
 * the same as leaving it out.
 *
 * Paths: `model.checkpoint`, `model.tokenizer`, `model.warm_start_config`,
 * `data.train_jsonl`, `data.val_jsonl` and `training.resume` resolve against
 * the directory of the YAML file that declares them (the working directory
 * for `--set`); `training.output_dir` and `model.warm_start_dir` always
 * resolve against the directory the command was started from, so configs
 * under `configs/` do not write runs next to themselves.
 *
 * An empty config file is an error (it would silently train the defaults).
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import {
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
} from "yaml";
import {
  DEFAULTS,
  keysAt,
  type ResolvedConfig,
  schemaAt,
  type Stage2Config,
  stage2Schema,
} from "./schema.ts";
import {
  describeValue as describe,
  didYouMean,
  InputError,
} from "../errors.ts";

/** A config problem (exit 2); `message` is one line, `problems` lists every one found. */
export class ConfigError extends InputError {
  constructor(readonly problems: string[]) {
    super(
      problems.length > 1
        ? `${problems[0]} (and ${problems.length - 1} more problem${
          problems.length > 2 ? "s" : ""
        })`
        : problems[0],
    );
    this.name = "ConfigError";
  }
}

type Path = (string | number)[];
type Obj = Record<string, unknown>;

/** Keys holding file paths resolved against the declaring YAML file. */
const FILE_RELATIVE_PATHS = [
  "model.checkpoint",
  "model.tokenizer",
  "model.warm_start_config",
  "data.train_jsonl",
  "data.val_jsonl",
  "training.resume",
];

/** Working directory the user started from (Deno tasks set INIT_CWD). */
export function userCwd(): string {
  return Deno.env.get("INIT_CWD") ?? Deno.cwd();
}

/** A path as shown in messages: relative to the user's cwd when inside it. */
export function displayPath(p: string): string {
  const rel = relative(userCwd(), p);
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : p;
}

/** Accumulates the merged object and where each key was set. */
class Layers {
  value: Obj = structuredClone(DEFAULTS) as unknown as Obj;
  /** dotted path -> "file:line" or "--set a.b=c" */
  where = new Map<string, string>();
  /** Files read, base first. */
  files: string[] = [];

  merge(src: Obj, locs: Map<string, string>, prefix: Path = []): void {
    mergeInto(this.value, src, prefix, locs, this.where);
  }

  /**
   * Where `path` was set: its own entry, else that of the nearest enclosing
   * leaf (a list item inherits its list's); never a group's, so a key left at
   * its default does not borrow the line of a sibling.
   */
  locate(path: Path): string | undefined {
    for (let n = path.length; n > 0; n--) {
      const prefix = path.slice(0, n);
      const w = this.where.get(prefix.join("."));
      if (w) return w;
      if (n < path.length && keysAt(prefix.map(String))) return undefined;
    }
    return undefined;
  }
}

function isPlain(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function mergeInto(
  dst: Obj,
  src: Obj,
  prefix: Path,
  locs: Map<string, string>,
  where: Map<string, string>,
): void {
  for (const [k, v] of Object.entries(src)) {
    const p = [...prefix, k];
    const key = p.join(".");
    const loc = locs.get(key);
    if (isPlain(dst[k]) && v === null) continue; // empty group: nothing to change
    if (isPlain(dst[k]) && isPlain(v)) {
      if (loc) where.set(key, loc);
      mergeInto(dst[k] as Obj, v, p, locs, where);
      continue;
    }
    // Replaced wholesale: forget where the old sub-keys came from, record
    // where the new ones did. Both walks visit only the values involved, so
    // a merge costs time linear in the number of keys.
    forEachPath(dst[k], key, (sub) => where.delete(sub));
    dst[k] = structuredClone(v);
    forEachPath(v, key, (sub) => {
      const l = locs.get(sub);
      if (l) where.set(sub, l);
    });
  }
}

/** Calls `fn` with `key` and the dotted path of every value nested under it. */
function forEachPath(v: unknown, key: string, fn: (path: string) => void) {
  fn(key);
  if (Array.isArray(v)) v.forEach((x, i) => forEachPath(x, `${key}.${i}`, fn));
  else if (isPlain(v)) {
    for (const [k, x] of Object.entries(v)) forEachPath(x, `${key}.${k}`, fn);
  }
}

/** Parse one YAML file into a plain object plus key locations. */
async function readYaml(
  file: string,
  from?: string,
): Promise<{ obj: Obj; locs: Map<string, string> }> {
  const shown = displayPath(file);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "file not found"
      : (e as Error).message;
    throw new ConfigError([
      `cannot read config ${shown}: ${why}${
        from ? ` (extended from ${from})` : ""
      }`,
    ]);
  }
  const parsed = parseYamlText(text, shown);
  if (Object.keys(parsed.obj).length === 0) {
    // Defaults alone would silently train 100 steps into runs/stage2.
    throw new ConfigError([
      `config ${shown} is empty: it sets no keys; write the settings you mean (configs/ has examples)${
        from ? ` (extended from ${from})` : ""
      }`,
    ]);
  }
  return parsed;
}

/** Parse YAML text; `shown` names the source in messages. */
export function parseYamlText(
  text: string,
  shown: string,
): { obj: Obj; locs: Map<string, string> } {
  const lc = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lc,
    prettyErrors: false,
    uniqueKeys: false,
  });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = lc.linePos(e.pos[0]).line;
    const msg = e.code === "MULTIPLE_DOCS"
      ? "a config file must hold a single YAML document (remove the extra ---)"
      : e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError([`${shown}:${line}: YAML syntax error: ${msg}`]);
  }
  const locs = new Map<string, string>();
  const walk = (node: unknown, path: Path) => {
    if (isMap(node)) {
      // Duplicate keys are found here, with a Set per mapping: the YAML
      // library's own `uniqueKeys` check is quadratic in the mapping size.
      const seen = new Set<string>();
      for (const pair of node.items) {
        const k = isScalar(pair.key)
          ? String(pair.key.value)
          : String(pair.key);
        const p = [...path, k];
        const range = (pair.key as Node | null)?.range ??
          (pair.value as Node | null)?.range;
        const line = range ? lc.linePos(range[0]).line : undefined;
        if (seen.has(k)) {
          throw new ConfigError([
            `${shown}:${
              line ?? 1
            }: YAML syntax error: Map keys must be unique (${
              describe(p.join("."))
            } appears twice)`,
          ]);
        }
        seen.add(k);
        if (line !== undefined) locs.set(p.join("."), `${shown}:${line}`);
        walk(pair.value, p);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const range = (item as Node | null)?.range;
        if (range) {
          locs.set(
            [...path, i].join("."),
            `${shown}:${lc.linePos(range[0]).line}`,
          );
        }
        walk(item, [...path, i]);
      });
    }
  };
  walk(doc.contents, []);
  let obj: unknown;
  try {
    obj = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    // alias problems surface only when the document is converted
    throw new ConfigError([
      `${shown}: YAML error: ${(e as Error).message.split("\n")[0]}`,
    ]);
  }
  if (!isPlain(obj)) {
    throw new ConfigError([
      `${shown}:1: a config file must be a YAML mapping of keys, got ${
        describe(obj)
      }`,
    ]);
  }
  return { obj, locs };
}

/** Resolve declared relative paths of one layer against `baseDir`. */
function rebasePaths(obj: Obj, baseDir: string): void {
  for (const dotted of FILE_RELATIVE_PATHS) {
    const [group, key] = dotted.split(".");
    const g = obj[group];
    if (!isPlain(g)) continue;
    const v = g[key];
    if (typeof v !== "string" || v === "" || isAbsolute(v)) continue;
    if (dotted === "training.resume" && v === "auto") continue;
    g[key] = resolve(baseDir, v);
  }
}

/** Load one file and everything it extends, base first, into `layers`. */
async function loadChain(
  file: string,
  layers: Layers,
  chain: string[],
  from?: string,
): Promise<void> {
  const abs = resolve(file);
  if (chain.includes(abs)) {
    const cycle = [...chain.slice(chain.indexOf(abs)), abs].map(displayPath)
      .join(" -> ");
    throw new ConfigError([`extends cycle: ${cycle}`]);
  }
  const { obj, locs } = await readYaml(abs, from);
  const ext = obj.extends;
  delete obj.extends;
  if (ext !== undefined && ext !== null) {
    const where = locs.get("extends") ?? displayPath(abs);
    if (typeof ext !== "string" || ext.trim() === "") {
      throw new ConfigError([
        `extends must be a path to another YAML file, got ${
          describe(ext)
        } (${where})`,
      ]);
    }
    await loadChain(resolve(dirname(abs), ext), layers, [...chain, abs], where);
  }
  rebasePaths(obj, dirname(abs));
  layers.files.push(abs);
  layers.merge(obj, locs);
}

/** Apply one `a.b=c` override (value parsed as YAML). */
function applyOverride(layers: Layers, spec: string): void {
  const where = `--set ${spec}`;
  const eq = spec.indexOf("=");
  if (eq <= 0) {
    throw new ConfigError([
      `${where}: expected KEY=VALUE, e.g. training.max_steps=10`,
    ]);
  }
  const key = spec.slice(0, eq).trim();
  const path = key.split(".");
  for (let i = 0; i < path.length; i++) {
    const allowed = keysAt(path.slice(0, i));
    if (!allowed || !allowed.includes(path[i])) {
      const parent = path.slice(0, i).join(".");
      throw new ConfigError([
        unknownKeyMessage(
          path.slice(0, i + 1).join("."),
          where,
          parent,
          allowed ?? [],
        ),
      ]);
    }
  }
  let value: unknown;
  try {
    value = parseYamlText(`v: ${spec.slice(eq + 1)}`, where).obj.v ?? null;
  } catch {
    throw new ConfigError([`${where}: value is not valid YAML`]);
  }
  if (
    FILE_RELATIVE_PATHS.includes(key) && typeof value === "string" &&
    value !== "auto" && !isAbsolute(value)
  ) {
    value = resolve(userCwd(), value);
  }
  let src: Obj = {};
  const root = src;
  for (let i = 0; i < path.length - 1; i++) src = (src[path[i]] = {}) as Obj;
  src[path[path.length - 1]] = value;
  const locs = new Map<string, string>();
  for (let i = 1; i <= path.length; i++) {
    locs.set(path.slice(0, i).join("."), where);
  }
  const addItemLocs = (v: unknown, p: string) => {
    if (Array.isArray(v)) {
      v.forEach((
        x,
        j,
      ) => (locs.set(`${p}.${j}`, where), addItemLocs(x, `${p}.${j}`)));
    } else if (isPlain(v)) {
      for (const [k, x] of Object.entries(v)) {
        locs.set(`${p}.${k}`, where), addItemLocs(x, `${p}.${k}`);
      }
    }
  };
  addItemLocs(value, key);
  layers.merge(root, locs);
}

function unknownKeyMessage(
  dotted: string,
  where: string,
  parent: string,
  allowed: string[],
): string {
  const hint = didYouMean(dotted.split(".").pop()!, allowed);
  return `unknown key ${dotted} (${where})${hint}; allowed keys${
    parent ? ` under ${parent}` : ""
  }: ${allowed.join(", ")}`;
}

/** Unknown keys anywhere in the merged tree, each with its location. */
function unknownKeys(obj: Obj, layers: Layers, path: string[] = []): string[] {
  const allowed = keysAt(path);
  if (!allowed) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const p = [...path, k];
    if (!allowed.includes(k)) {
      out.push(
        unknownKeyMessage(
          p.join("."),
          layers.locate(p) ?? "config",
          path.join("."),
          allowed,
        ),
      );
    } else if (isPlain(v)) out.push(...unknownKeys(v, layers, p));
  }
  return out;
}

function getAt(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

function compareLocations(a: string, b: string): number {
  const split = (l: string): [string, number] => {
    const m = /^(.*):(\d+)$/.exec(l);
    return m ? [m[1], Number(m[2])] : [l, 0];
  };
  const [fa, la] = split(a), [fb, lb] = split(b);
  return fa === fb ? la - lb : fa < fb ? -1 : 1;
}

/** Validate the merged tree; throws `ConfigError` listing every problem. */
function validate(layers: Layers): Stage2Config {
  const problems = unknownKeys(layers.value, layers);
  if (problems.length > 0) throw new ConfigError(problems);
  const parsed = stage2Schema.safeParse(layers.value);
  if (!parsed.success) {
    const seen = new Set<string>();
    const found: { msg: string; loc: string }[] = [];
    for (const issue of parsed.error.issues) {
      const path = issue.path as Path;
      const at = schemaAt(path);
      const leafPath = path.slice(0, at.depth);
      const dotted = leafPath.join(".");
      if (seen.has(dotted)) continue;
      seen.add(dotted);
      const what = at.description ??
        (at.keys ? `a mapping with keys ${at.keys.join(", ")}` : "valid");
      const loc = layers.locate(path) ?? "default";
      found.push({
        msg: `${dotted} must be ${what}, got ${
          describe(getAt(layers.value, leafPath))
        } (${loc})`,
        loc,
      });
    }
    // report in file order, so the first message is the first line to fix
    found.sort((a, b) => compareLocations(a.loc, b.loc));
    throw new ConfigError(found.map((f) => f.msg));
  }
  const cfg = parsed.data;
  problems.push(
    ...crossKeyProblems(
      cfg,
      (dotted) => layers.locate(dotted.split(".")) ?? "default",
    ),
  );
  if (problems.length > 0) throw new ConfigError(problems);
  // Run folders resolve against where the command was started, so configs
  // under configs/ do not write runs next to themselves.
  cfg.training.output_dir = resolve(userCwd(), cfg.training.output_dir);
  cfg.model.warm_start_dir = cfg.model.warm_start_dir === null
    ? null
    : resolve(userCwd(), cfg.model.warm_start_dir);
  cfg.model.warm_start_dir = warmStartRoot(cfg);
  return cfg;
}

/**
 * `validate`, plus a look at `model.checkpoint`: a folder without a
 * `config.json` is reported here, naming the key, instead of failing later
 * inside the model loader.
 */
async function validateWithPaths(layers: Layers): Promise<Stage2Config> {
  const cfg = validate(layers);
  const ckpt = cfg.model.checkpoint;
  if (ckpt !== null) {
    const info = await Deno.stat(join(ckpt, "config.json")).catch(() => null);
    if (!info?.isFile) {
      throw new ConfigError([
        `model.checkpoint ${
          displayPath(ckpt)
        } is not a checkpoint folder (no config.json there) (${
          layers.locate(["model", "checkpoint"]) ?? "config"
        })`,
      ]);
    }
  }
  return cfg;
}

/**
 * Rules that span several keys: the one home of each, used by the loader
 * (with `at` giving file:line) and by code that re-checks a config built
 * in memory (`stage2Knobs`).
 */
export function crossKeyProblems(
  cfg: Stage2Config,
  at: (dotted: string) => string = () => "config",
): string[] {
  const out: string[] = [];
  if (cfg.data.min_pixels > cfg.data.max_pixels) {
    out.push(
      `data.min_pixels must be <= data.max_pixels (${cfg.data.max_pixels}), got ${cfg.data.min_pixels} (${
        at("data.min_pixels")
      })`,
    );
  }
  if (cfg.data.val_jsonl !== null && cfg.data.train_jsonl === null) {
    out.push(
      `data.val_jsonl is set but data.train_jsonl is null; set both, or neither to use the synthetic dataset (${
        at("data.val_jsonl")
      })`,
    );
  }
  if (cfg.custom.trainer_variant === "stage2_ab_training") {
    const rm = cfg.custom.extra.rollout_matching;
    if (rm.decode_mode === "sample" && !(rm.temperature > 0)) {
      out.push(
        `custom.extra.rollout_matching.temperature must be > 0 with decode_mode: sample (or use decode_mode: greedy), got ${rm.temperature} (${
          at("custom.extra.rollout_matching.temperature")
        })`,
      );
    }
    if (
      rm.rollout_buffer.enabled &&
      !cfg.custom.extra.stage2_ab.schedule.pattern.includes("B")
    ) {
      out.push(
        `custom.extra.rollout_matching.rollout_buffer.enabled needs at least one "B" in custom.extra.stage2_ab.schedule.pattern (${
          at("custom.extra.rollout_matching.rollout_buffer.enabled")
        })`,
      );
    }
  }
  return out;
}

/**
 * The folder warm-start runs go to: `model.warm_start_dir`, by default
 * `<parent of training.output_dir>/warm_start`.
 *
 * @example
 * warmStartRoot(cfg); // "/home/me/runs/warm_start" for output_dir runs/x
 */
export function warmStartRoot(cfg: Stage2Config): string {
  return cfg.model.warm_start_dir ??
    join(dirname(cfg.training.output_dir), "warm_start");
}

/** Options for the detailed loader. */
export interface LoadedConfig {
  config: ResolvedConfig;
  /** Files read, base first (absolute). */
  files: string[];
  /** Settings that are valid but have no effect, e.g. stage2_ab keys under sft. */
  warnings: string[];
}

function variantWarnings(cfg: Stage2Config, layers: Layers): string[] {
  const out: string[] = [];
  if (cfg.custom.trainer_variant === "sft") {
    for (
      const k of ["custom.extra.stage2_ab", "custom.extra.rollout_matching"]
    ) {
      const set = [...layers.where.keys()].some((w) =>
        w === k || w.startsWith(k + ".")
      );
      if (set) {
        out.push(
          `${k} has no effect with custom.trainer_variant "sft" (${
            layers.locate(k.split("."))
          })`,
        );
      }
    }
  }
  const t = cfg.training;
  if (
    t.warmup_steps > t.max_steps && layers.where.has("training.warmup_steps")
  ) {
    out.push(
      `training.warmup_steps (${t.warmup_steps}) exceeds training.max_steps (${t.max_steps}): the learning rate never reaches its peak (${
        layers.locate(["training", "warmup_steps"])
      })`,
    );
  }
  if (cfg.model.checkpoint !== null && cfg.model.warm_start_config !== null) {
    out.push(
      `model.warm_start_config is ignored because model.checkpoint is set (${
        layers.locate(["model", "checkpoint"])
      })`,
    );
  }
  return out;
}

/** How a config is loaded. */
export interface LoadOptions {
  /**
   * Look at the paths the config names (`model.checkpoint` must be a
   * checkpoint folder). Default true; false for a config that describes a
   * past run (the audit reading a run's `config.yaml`), whose checkpoint
   * may be gone.
   */
  checkPaths?: boolean;
}

/** Load a YAML config (with its `extends` chain) plus `a.b=c` overrides. */
export async function loadConfigDetailed(
  path: string,
  overrides: string[] = [],
  opts: LoadOptions = {},
): Promise<LoadedConfig> {
  const layers = new Layers();
  await loadChain(path, layers, []);
  for (const o of overrides) applyOverride(layers, o);
  const config = opts.checkPaths === false
    ? validate(layers)
    : await validateWithPaths(layers);
  const ws = config.model.warm_start_config;
  if (
    ws !== null && config.model.checkpoint === null && layers.files.includes(ws)
  ) {
    throw new ConfigError([
      `model.warm_start_config points at ${
        displayPath(ws)
      }, which is this config or one it extends: a run cannot warm-start from itself (${
        layers.locate(["model", "warm_start_config"])
      })`,
    ]);
  }
  return {
    config,
    files: layers.files,
    warnings: variantWarnings(config, layers),
  };
}

/** Load a YAML config (with its `extends` chain) plus `a.b=c` overrides. */
export async function loadConfig(
  path: string,
  overrides: string[] = [],
  opts: LoadOptions = {},
): Promise<ResolvedConfig> {
  return (await loadConfigDetailed(path, overrides, opts)).config;
}

/**
 * Validate an in-memory config object (as if it were a YAML file named
 * `sourceName`); relative paths resolve against `dirname(sourceName)` and an
 * `extends` key is followed from there.
 */
export async function resolveConfigObject(
  obj: unknown,
  sourceName = "<config>",
  overrides: string[] = [],
): Promise<ResolvedConfig> {
  if (!isPlain(obj)) {
    throw new ConfigError([
      `${sourceName}: a config must be a mapping of keys, got ${describe(obj)}`,
    ]);
  }
  const layers = new Layers();
  const o = structuredClone(obj);
  const base = dirname(resolve(userCwd(), sourceName));
  const locs = new Map<string, string>();
  const walk = (v: unknown, p: string) => {
    if (isPlain(v)) {
      for (
        const [k, x] of Object.entries(v)
      ) {
        locs.set(p ? `${p}.${k}` : k, sourceName), walk(x, p ? `${p}.${k}` : k);
      }
    } else if (Array.isArray(v)) {
      v.forEach((
        x,
        i,
      ) => (locs.set(`${p}.${i}`, sourceName), walk(x, `${p}.${i}`)));
    }
  };
  walk(o, "");
  const ext = o.extends;
  delete o.extends;
  if (ext !== undefined && ext !== null) {
    if (typeof ext !== "string") {
      throw new ConfigError([
        `extends must be a path to another YAML file, got ${
          describe(ext)
        } (${sourceName})`,
      ]);
    }
    await loadChain(resolve(base, ext), layers, [], sourceName);
  }
  rebasePaths(o, base);
  layers.merge(o, locs);
  for (const ov of overrides) applyOverride(layers, ov);
  return await validateWithPaths(layers);
}
