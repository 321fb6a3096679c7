/**
 * Model checkpoints in Hugging Face's folder layout: `config.json` plus
 * `model.safetensors`, or shards `model-0000i-of-0000n.safetensors` with a
 * `model.safetensors.index.json` weight map. Tensor names and layouts are
 * HF's, so released Qwen3-VL weights load and saved ones load in transformers.
 */
import { join } from "node:path";
import type { tf } from "../runtime.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import { parseConfig, type Qwen3VLConfig } from "./config.ts";
import { fromHf, type ParamSpec, paramSpecs, toHf } from "./params.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from "./safetensors.ts";

export interface SaveOptions {
  /** Split weights into shards of at most this many bytes (plus an index). */
  maxShardBytes?: number;
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
  await Deno.mkdir(dir, { recursive: true });
  const tensors: [string, { shape: number[]; data: Float32Array }][] = model
    .specs.map((s) => [
      s.name,
      {
        shape: s.hfShape,
        data: toHf(s, model.param(s.name).dataSync() as Float32Array),
      },
    ]);
  const meta = { format: "pt" };
  const limit = opts.maxShardBytes ?? Infinity;
  const shards: typeof tensors[] = [[]];
  let size = 0;
  for (const t of tensors) {
    const bytes = t[1].data.byteLength;
    if (size > 0 && size + bytes > limit) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytes;
  }
  if (shards.length === 1) {
    await writeFileAtomic(
      join(dir, "model.safetensors"),
      encodeSafetensors(tensors, meta),
    );
    await Deno.remove(join(dir, "model.safetensors.index.json")).catch(
      () => {},
    );
  } else {
    const n = shards.length;
    const pad = (i: number) => String(i).padStart(5, "0");
    const weightMap: Record<string, string> = {};
    let total = 0;
    for (const [i, shard] of shards.entries()) {
      const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
      await writeFileAtomic(join(dir, file), encodeSafetensors(shard, meta));
      for (const [name, t] of shard) {
        weightMap[name] = file;
        total += t.data.byteLength;
      }
    }
    const index = { metadata: { total_size: total }, weight_map: weightMap };
    await writeFileAtomic(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify(index, null, 2) + "\n",
    );
    await Deno.remove(join(dir, "model.safetensors")).catch(() => {});
  }
  // config last: a folder with a config.json has its weights complete
  await writeFileAtomic(
    join(dir, "config.json"),
    JSON.stringify(model.config, null, 2) + "\n",
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

/** Every tensor of a checkpoint folder, by HF name (single file or shards). */
export async function readCheckpointTensors(
  dir: string,
): Promise<Map<string, SafeTensor>> {
  const indexPath = join(dir, "model.safetensors.index.json");
  const single = join(dir, "model.safetensors");
  const files: string[] = [];
  if (await exists(indexPath)) {
    const idx = await readJson(indexPath) as {
      weight_map?: Record<string, string>;
    };
    if (!idx.weight_map || typeof idx.weight_map !== "object") {
      throw new Error(`${indexPath}: missing "weight_map"`);
    }
    files.push(...new Set(Object.values(idx.weight_map)));
  } else if (await exists(single)) files.push("model.safetensors");
  else {throw new Error(
      `${dir}: no model.safetensors or model.safetensors.index.json`,
    );}
  const all = new Map<string, SafeTensor>();
  for (const f of files) {
    const path = join(dir, f);
    const { tensors } = decodeSafetensors(await Deno.readFile(path), path);
    for (const [k, v] of tensors) {
      if (all.has(k)) {
        throw new Error(`${path}: tensor ${k} appears in more than one shard`);
      }
      all.set(k, v);
    }
  }
  return all;
}

/**
 * Reads a checkpoint folder's config and weights (in-memory layout, keyed
 * by HF name) for `Qwen3VLForConditionalGeneration.load`; tensor mismatches
 * are reported by name, all at once.
 */
export async function readCheckpoint(
  dir: string,
): Promise<{ config: Qwen3VLConfig; values: Map<string, Float32Array> }> {
  const cfgPath = join(dir, "config.json");
  const cfg = parseConfig(await readJson(cfgPath), cfgPath);
  const tensors = await readCheckpointTensors(dir);
  const specs = paramSpecs(cfg);
  const missing: string[] = [], misShaped: string[] = [];
  const values = new Map<string, Float32Array>();
  for (const s of specs) {
    const t = tensors.get(s.name);
    if (!t) {
      missing.push(s.name);
      continue;
    }
    if (
      t.shape.length !== s.hfShape.length ||
      t.shape.some((d, i) => d !== s.hfShape[i])
    ) {
      misShaped.push(`${s.name} [${t.shape}] (expected [${s.hfShape}])`);
      continue;
    }
    if (!(t.data instanceof Float32Array)) {
      misShaped.push(`${s.name} has integer dtype ${t.dtype}`);
      continue;
    }
    values.set(s.name, fromHf(s, t.data));
  }
  const known = new Set(specs.map((s) => s.name));
  const unexpected = [...tensors.keys()].filter((k) => !known.has(k));
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
  return { config: cfg, values };
}
