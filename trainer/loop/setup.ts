/**
 * Run set-up: where the data, the tokenizer and the model come from.
 *
 * - Data: `data.train_jsonl` / `data.val_jsonl`, or the built-in synthetic
 *   dataset written into `<run>/data/` (reused when its settings match).
 * - Tokenizer: `model.tokenizer`, else the checkpoint's `tokenizer.json`,
 *   else a tiny byte-level BPE built from the training answers.
 * - Model: `model.checkpoint`, else a fresh tiny model seeded by
 *   `training.seed` (warm start is resolved by the caller first).
 */
import { join } from "node:path";
import type { Stage2Config } from "../config/schema.ts";
import { InputError } from "../errors.ts";
import { loadJsonl } from "../data/jsonl.ts";
import { writeSynthDataset } from "../data/synth.ts";
import { FreshSynthData } from "../data/fresh.ts";
import type { InMemoryImages } from "./samples.ts";
import type { DetectionRecord } from "../data/types.ts";
import { tinyConfig } from "../model/config.ts";
import { applyGeometryInit } from "../model/tiny_init.ts";
import { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { buildTinyTokenizer } from "../tokenizer/build.ts";
import { renderChatText } from "../tokenizer/chat.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";

export interface RunData {
  train: DetectionRecord[];
  val: DetectionRecord[];
  trainJsonl: string;
  valJsonl: string | null;
  /** True when the synthetic dataset was generated (or reused) in the run. */
  synthetic: boolean;
  /** Rendered-in-memory train images (`data.synth.fresh`), else null. */
  trainImages: InMemoryImages | null;
}

interface SynthMeta {
  seed: number;
  n_train: number;
  n_val: number;
  imageSize: number;
  maxObjects: number;
  fresh?: boolean;
}

async function readSynthMeta(dir: string): Promise<SynthMeta | null> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, "synth.json")));
  } catch {
    return null;
  }
}

/** Loads (or synthesizes) the train/val records of a run. */
export async function resolveData(
  cfg: Stage2Config,
  runDir: string,
  log: (s: string) => void,
): Promise<RunData> {
  let trainJsonl = cfg.data.train_jsonl;
  let valJsonl = cfg.data.val_jsonl;
  let synthetic = false;
  if (trainJsonl === null) {
    const s = cfg.data.synth;
    const dir = join(runDir, "data");
    const meta = await readSynthMeta(dir);
    const same = meta !== null && meta.seed === s.seed &&
      meta.n_train === s.n_train && meta.n_val === s.n_val &&
      meta.imageSize === s.image_size && meta.maxObjects === s.max_objects &&
      (meta.fresh ?? false) === s.fresh;
    if (!same) {
      log(
        `synthesizing ${
          s.fresh ? "fresh" : s.n_train
        } train + ${s.n_val} val images (seed ${s.seed}) into ${dir}`,
      );
      await writeSynthDataset(dir, {
        // fresh training images live in memory, not on disk
        nTrain: s.fresh ? 0 : s.n_train,
        fresh: s.fresh,
        nVal: s.n_val,
        seed: s.seed,
        imageSize: s.image_size,
        maxObjects: s.max_objects,
      });
    }
    trainJsonl = join(dir, "train.jsonl");
    if (valJsonl === null && s.n_val > 0) valJsonl = join(dir, "val.jsonl");
    synthetic = true;
  }
  // fresh synthetic data: one new image per possible draw
  let trainImages: InMemoryImages | null = null;
  let train: DetectionRecord[];
  if (synthetic && cfg.data.synth.fresh) {
    const s = cfg.data.synth, T = cfg.training;
    const fresh = new FreshSynthData(
      s.seed,
      T.max_steps * T.gradient_accumulation_steps * T.micro_batch_size,
      { imageSize: s.image_size, maxObjects: s.max_objects },
    );
    train = fresh.records;
    trainImages = { image: (i) => fresh.image(i), cache: false };
  } else train = await loadJsonl(trainJsonl);
  if (train.length === 0) {
    throw new InputError(`${trainJsonl}: no training records`);
  }
  const val = valJsonl === null ? [] : await loadJsonl(valJsonl);
  return { train, val, trainJsonl, valJsonl, synthetic, trainImages };
}

/** A tokenizer with the exact `tokenizer.json` text it came from. */
export interface RunTokenizer {
  tokenizer: Tokenizer;
  json: string;
  source: string;
}

export async function tokenizerFromFile(path: string): Promise<RunTokenizer> {
  const tokenizer = await Tokenizer.fromFile(path);
  return { tokenizer, json: await Deno.readTextFile(path), source: path };
}

/** Builds the tiny BPE tokenizer from the training answers. */
export function buildTokenizerFromRecords(
  records: DetectionRecord[],
): RunTokenizer {
  // The image-pad count does not matter: added tokens are cut out before BPE.
  const texts = records.map((r) => renderChatText(r.objects, 1));
  const obj = buildTinyTokenizer(texts);
  const json = JSON.stringify(obj);
  return {
    tokenizer: Tokenizer.fromJson(obj, "built-in tiny tokenizer"),
    json,
    source: "built from the training data",
  };
}

/** A fresh tiny model sized to the tokenizer. */
export function createTinyModel(
  tok: Tokenizer,
  seed: number,
): Qwen3VLForConditionalGeneration {
  const sp = tok.specialIds;
  const model = Qwen3VLForConditionalGeneration.create(
    tinyConfig(tok.vocabSize, {
      imageTokenId: sp.imagePad,
      visionStartTokenId: sp.visionStart,
      visionEndTokenId: sp.visionEnd,
      imEndTokenId: sp.imEnd,
      padTokenId: sp.pad,
    }),
    seed,
  );
  // geometry-aware init of the tiny preset (see tiny_init.ts)
  applyGeometryInit(model, tok.coordIds);
  return model;
}

/**
 * Loads the model of a checkpoint folder. Any problem with its files
 * (unreadable, a header or tensors that do not fit its config.json) is an
 * `InputError` naming the folder: the user picked the folder, and the fix
 * is another one.
 */
export async function loadCheckpointModel(
  dir: string,
): Promise<Qwen3VLForConditionalGeneration> {
  try {
    return await Qwen3VLForConditionalGeneration.load(dir);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(
      `checkpoint ${dir}: cannot load the model (${(e as Error).message})`,
      { cause: e },
    );
  }
}

/**
 * Checks that a tokenizer and a model agree on vocabulary size and the
 * special-token ids the model's config names (a wrong `tokenizer.json`
 * next to a checkpoint otherwise fails later, far from its cause).
 */
export function checkTokenizerFitsModel(
  tok: Tokenizer,
  model: Qwen3VLForConditionalGeneration,
  where: string,
): void {
  const c = model.config;
  const V = c.text_config.vocab_size;
  const sp = tok.specialIds;
  const problems: string[] = [];
  if (tok.vocabSize > V) {
    problems.push(
      `tokenizer has ${tok.vocabSize} ids but the model's vocab_size is ${V}`,
    );
  }
  const pairs: [string, number | null | undefined, string, number][] = [
    ["image_token_id", c.image_token_id, "<|image_pad|>", sp.imagePad],
    [
      "vision_start_token_id",
      c.vision_start_token_id,
      "<|vision_start|>",
      sp.visionStart,
    ],
    [
      "vision_end_token_id",
      c.vision_end_token_id,
      "<|vision_end|>",
      sp.visionEnd,
    ],
    ["eos_token_id", c.text_config.eos_token_id, "<|im_end|>", sp.imEnd],
  ];
  for (const [key, id, token, tokId] of pairs) {
    if (id !== tokId) {
      problems.push(`${key} ${id} != tokenizer ${token} ${tokId}`);
    }
  }
  if (problems.length) {
    throw new InputError(
      `${where}: the tokenizer does not match the model: ${
        problems.join("; ")
      } (use the tokenizer.json saved with the checkpoint)`,
    );
  }
}
