/**
 * Model checkpoints in Hugging Face's folder layout: `config.json` plus
 * `model.safetensors`, or shards `model-0000i-of-0000n.safetensors` with a
 * `model.safetensors.index.json` weight map. Tensor names and layouts are
 * HF's, so released Qwen3-VL weights load and saved ones load in transformers.
 *
 * Both directions stream tensor by tensor: a shard is written from one
 * tensor's bytes at a time, and loading reads each tensor from its file
 * straight into the buffer the model keeps (`tensorStorage`), so a
 * 2B-parameter checkpoint (8.5 GB as float32) loads within about its own
 * size in memory. One loading pipeline, `readCheckpoint`:
 * `checkpointEntries` (headers only) -> `checkCheckpoint` (names and shapes
 * against config.json, no data read) -> `readCheckpointWeights` (in-memory
 * layout values), which `Qwen3VLForConditionalGeneration.load` hands to
 * `fromValues`. Errors are plain and name the folder or file; the loop's
 * `loadCheckpointModel` turns them into input errors (exit 2).
 */
import { join } from "node:path";
import { tensorStorage, type tf } from "../runtime.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import { parseConfig, type Qwen3VLConfig } from "./config.ts";
import {
  fromHf,
  initialValues,
  internalShape,
  type ParamSpec,
  paramSpecs,
  toHf,
} from "./params.ts";
import {
  encodeData,
  encodeHeader,
  type FloatDType,
  readSafetensorsHeader,
  readTensorInto,
  type SafeTensor,
  type TensorEntry,
} from "./safetensors.ts";
import { Rng } from "../common/rng.ts";

export interface SaveOptions {
  /** Split weights into shards of at most this many bytes (plus an index). */
  maxShardBytes?: number;
  /** How float weights are stored: F32 (default, exact) or BF16. */
  dtype?: FloatDType;
}

/**
 * A float tensor to write: HF name, HF shape, and its HF-layout values on
 * demand (`data` is called once, in write order).
 */
export interface TensorSource {
  name: string;
  shape: number[];
  /** Element count; the data must have exactly this length. */
  size: number;
  data: () => Float32Array;
}

const pad = (i: number) => String(i).padStart(5, "0");

/**
 * Write tensors as one `model.safetensors` or as shards plus
 * `model.safetensors.index.json` (each file atomically: a temp file renamed
 * into place), removing the layout not written. Data is produced and
 * written one tensor at a time.
 */
export async function writeWeights(
  dir: string,
  tensors: TensorSource[],
  opts: SaveOptions = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const float = opts.dtype ?? "F32";
  const limit = opts.maxShardBytes ?? Infinity;
  const bytesOf = (t: TensorSource) => (float === "BF16" ? 2 : 4) * t.size;
  const shards: TensorSource[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (size > 0 && size + bytesOf(t) > limit) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytesOf(t);
  }
  const meta = { format: "pt" };
  const single = shards.length === 1;
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [i, shard] of shards.entries()) {
    const file = single
      ? "model.safetensors"
      : `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    await writeShard(join(dir, file), shard, float, meta);
    for (const t of shard) {
      weightMap[t.name] = file;
      total += bytesOf(t);
    }
  }
  if (single) {
    await Deno.remove(join(dir, "model.safetensors.index.json")).catch(
      () => {},
    );
  } else {
    const index = { metadata: { total_size: total }, weight_map: weightMap };
    await writeFileAtomic(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify(index, null, 2) + "\n",
    );
    await Deno.remove(join(dir, "model.safetensors")).catch(() => {});
  }
}

async function writeShard(
  path: string,
  tensors: TensorSource[],
  float: FloatDType,
  meta: Record<string, string>,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = await Deno.open(tmp, { write: true, create: true });
  try {
    await writeAll(
      file,
      encodeHeader(
        tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: float })),
        meta,
      ),
    );
    for (const t of tensors) {
      const data = t.data();
      if (data.length !== t.size) {
        throw new Error(
          `checkpoint: tensor ${t.name} has ${data.length} values for shape [${t.shape}]`,
        );
      }
      await writeAll(file, encodeData(data, float));
    }
    file.close();
    await Deno.rename(tmp, path);
  } catch (e) {
    try {
      file.close();
    } catch {
      // already closed
    }
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}

/** What saving needs of a model (`Qwen3VLForConditionalGeneration`). */
export interface CheckpointModel {
  readonly config: Qwen3VLConfig;
  readonly specs: ParamSpec[];
  param(name: string): tf.Variable;
}

/** Write `config.json` and the weights into `dir`, each file atomically. */
export async function saveCheckpoint(
  model: CheckpointModel,
  dir: string,
  opts: SaveOptions = {},
): Promise<void> {
  await writeWeights(
    dir,
    model.specs.map((s) => ({
      name: s.name,
      shape: s.hfShape,
      size: s.hfShape.reduce((a, b) => a * b, 1),
      data: () => toHf(s, model.param(s.name).dataSync() as Float32Array),
    })),
    opts,
  );
  // config last: a folder with a config.json has its weights complete
  await writeFileAtomic(
    join(dir, "config.json"),
    JSON.stringify(model.config, null, 2) + "\n",
  );
}

/**
 * Write a checkpoint of freshly initialised weights without building the
 * model: the same values as `Qwen3VLForConditionalGeneration.create(config,
 * seed)`, produced one tensor at a time (for large benchmark checkpoints).
 */
export async function writeRandomCheckpoint(
  config: Qwen3VLConfig,
  dir: string,
  seed: number,
  opts: SaveOptions = {},
): Promise<void> {
  const cfg = parseConfig(config, "model config");
  const rng = Rng.fromSeed(seed);
  // the stream is consumed in spec order, as create() consumes it
  await writeWeights(
    dir,
    paramSpecs(cfg).map((s) => ({
      name: s.name,
      shape: s.hfShape,
      size: s.hfShape.reduce((a, b) => a * b, 1),
      data: () => toHf(s, initialValues(s, rng)),
    })),
    opts,
  );
  await writeFileAtomic(
    join(dir, "config.json"),
    JSON.stringify(cfg, null, 2) + "\n",
  );
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${path}: not found`);
    }
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The weight files of a checkpoint folder (shards from the index, or the single file). */
export async function checkpointFiles(dir: string): Promise<string[]> {
  const indexPath = join(dir, "model.safetensors.index.json");
  if (await exists(indexPath)) {
    const idx = await readJson(indexPath) as {
      weight_map?: Record<string, string>;
    };
    if (!idx.weight_map || typeof idx.weight_map !== "object") {
      throw new Error(`${indexPath}: missing "weight_map"`);
    }
    return [...new Set(Object.values(idx.weight_map))];
  }
  if (await exists(join(dir, "model.safetensors"))) {
    return ["model.safetensors"];
  }
  throw new Error(
    `${dir}: no model.safetensors or model.safetensors.index.json`,
  );
}

/** Every tensor's location, by HF name, from the files' headers (no data read). */
export async function checkpointEntries(
  dir: string,
): Promise<Map<string, TensorEntry & { path: string }>> {
  const all = new Map<string, TensorEntry & { path: string }>();
  for (const f of await checkpointFiles(dir)) {
    const path = join(dir, f);
    const file = await Deno.open(path).catch((e) => {
      throw new Error(`${path}: ${(e as Error).message}`);
    });
    try {
      const { entries } = await readSafetensorsHeader(file, path);
      for (const e of entries) {
        if (all.has(e.name)) {
          throw new Error(
            `${path}: tensor ${e.name} appears in more than one shard`,
          );
        }
        all.set(e.name, { ...e, path });
      }
    } finally {
      file.close();
    }
  }
  return all;
}

/** Every tensor of a checkpoint folder, by HF name (single file or shards). */
export async function readCheckpointTensors(
  dir: string,
): Promise<Map<string, SafeTensor>> {
  const out = new Map<string, SafeTensor>();
  for (const [name, e] of await checkpointEntries(dir)) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const float = e.dtype !== "I32" && e.dtype !== "I64";
    const data = float ? new Float32Array(n) : new Int32Array(n);
    const file = await Deno.open(e.path);
    try {
      await readTensorInto(file, e, data);
    } finally {
      file.close();
    }
    out.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

/**
 * Check that a folder's tensors are exactly the config's parameters with
 * their HF shapes and float dtypes; reports every problem at once, by name.
 */
export function checkCheckpoint(
  dir: string,
  specs: ParamSpec[],
  entries: Map<string, TensorEntry>,
): void {
  const missing: string[] = [], misShaped: string[] = [];
  for (const s of specs) {
    const t = entries.get(s.name);
    if (!t) {
      missing.push(s.name);
      continue;
    }
    if (
      t.shape.length !== s.hfShape.length ||
      t.shape.some((d, i) => d !== s.hfShape[i])
    ) {
      misShaped.push(`${s.name} [${t.shape}] (expected [${s.hfShape}])`);
    } else if (t.dtype === "I32" || t.dtype === "I64") {
      misShaped.push(`${s.name} has integer dtype ${t.dtype}`);
    }
  }
  const known = new Set(specs.map((s) => s.name));
  const unexpected = [...entries.keys()].filter((k) => !known.has(k));
  if (missing.length || unexpected.length || misShaped.length) {
    const parts = [];
    if (missing.length) parts.push(`missing: ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected: ${unexpected.join(", ")}`);
    if (misShaped.length) parts.push(`mis-shaped: ${misShaped.join(", ")}`);
    throw new Error(
      `${dir}: checkpoint tensors do not match config.json; ${
        parts.join("; ")
      }`,
    );
  }
}

/**
 * The parameters of a checked checkpoint in their in-memory layout, each
 * read from its file into the buffer the model will keep.
 */
export async function readCheckpointWeights(
  specs: ParamSpec[],
  entries: Map<string, TensorEntry & { path: string }>,
): Promise<Map<string, Float32Array>> {
  const values = new Map<string, Float32Array>();
  const files = new Map<string, Deno.FsFile>();
  try {
    for (const s of specs) {
      const e = entries.get(s.name)!;
      let file = files.get(e.path);
      if (!file) files.set(e.path, file = await Deno.open(e.path));
      const n = internalShape(s).reduce((a, b) => a * b, 1);
      const dst = tensorStorage(n);
      if (s.layout === "same") await readTensorInto(file, e, dst);
      else {
        // HF [out, in] -> [in, out]: decode, then transpose into place
        const hf = new Float32Array(n);
        await readTensorInto(file, e, hf);
        fromHf(s, hf, dst);
      }
      values.set(s.name, dst);
    }
  } finally {
    for (const f of files.values()) f.close();
  }
  return values;
}

/**
 * Reads a checkpoint folder's config and weights (in-memory layout, keyed
 * by HF name) for `Qwen3VLForConditionalGeneration.load`: the headers are
 * checked against the config first (mismatches reported by name, all at
 * once), then each tensor streams into the buffer the model keeps.
 */
export async function readCheckpoint(
  dir: string,
): Promise<{ config: Qwen3VLConfig; values: Map<string, Float32Array> }> {
  const cfgPath = join(dir, "config.json");
  const config = parseConfig(await readJson(cfgPath), cfgPath);
  const specs = paramSpecs(config);
  const entries = await checkpointEntries(dir);
  checkCheckpoint(dir, specs, entries);
  return { config, values: await readCheckpointWeights(specs, entries) };
}
