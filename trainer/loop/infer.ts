/**
 * Single-image inference from a checkpoint folder: greedy generation, strict
 * parse into detections, and optionally a dump of the exact inputs and
 * logits of one full (non-cached) forward over prompt + answer, so the
 * numerics can be compared with another implementation.
 */
import { join } from "node:path";
import { tf } from "../runtime.ts";
import { binBoxToPixels, type Xyxy } from "../coord/pixels.ts";
import { DEFAULTS } from "../config/schema.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import { readPng } from "../data/png.ts";
import { preprocessImage } from "../data/vision.ts";
import { visionPreprocessFor } from "../model/config.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { encodeSafetensors } from "../model/safetensors.ts";
import { type DropCounts, parseRolloutForMatching } from "../rollout/parse.ts";
import { renderPrompt } from "../tokenizer/chat.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { checkFiniteWeights, checkMaxNewTokens } from "./guards.ts";
import { checkTokenizerFitsModel, loadCheckpointModel } from "./setup.ts";
import { PREPROCESSOR_FILE } from "./checkpoint.ts";

/** Resize bounds saved with a checkpoint (HF `preprocessor_config.json` names). */
export interface PreprocessorBounds {
  min_pixels: number;
  max_pixels: number;
}

export async function writePreprocessorConfig(
  dir: string,
  model: Qwen3VLForConditionalGeneration,
  bounds: PreprocessorBounds,
): Promise<void> {
  const v = visionPreprocessFor(model.config);
  await writeFileAtomic(
    join(dir, PREPROCESSOR_FILE),
    JSON.stringify(
      {
        image_processor_type: "Qwen2VLImageProcessor",
        min_pixels: bounds.min_pixels,
        max_pixels: bounds.max_pixels,
        patch_size: v.patchSize,
        temporal_patch_size: v.temporalPatchSize,
        merge_size: v.mergeSize,
        image_mean: [0.5, 0.5, 0.5],
        image_std: [0.5, 0.5, 0.5],
      },
      null,
      2,
    ) + "\n",
  );
}

/** A checkpoint's resize bounds (defaults when it has no preprocessor config). */
export async function readBounds(dir: string): Promise<PreprocessorBounds> {
  try {
    const o = JSON.parse(
      await Deno.readTextFile(join(dir, PREPROCESSOR_FILE)),
    ) as Partial<PreprocessorBounds>;
    return {
      min_pixels: o.min_pixels ?? DEFAULTS.data.min_pixels,
      max_pixels: o.max_pixels ?? DEFAULTS.data.max_pixels,
    };
  } catch {
    return {
      min_pixels: DEFAULTS.data.min_pixels,
      max_pixels: DEFAULTS.data.max_pixels,
    };
  }
}

export interface Detection {
  desc: string;
  /** Coord bins 0..999. */
  bbox_2d: Xyxy;
  /** Pixel box in the input image (x over 0..W-1, y over 0..H-1). */
  bbox_px: Xyxy;
}

export interface InferResult {
  /** The decoded answer, cut at the end-of-turn token. */
  answer: string;
  /** True when the answer is one closed JSON object. */
  parsed: boolean;
  detections: Detection[];
  drops: DropCounts;
  /** Generated tokens (end-of-turn included when produced). */
  newTokens: number;
  /** Where the dump went, when asked. */
  dump: string | null;
  width: number;
  height: number;
}

export interface InferOptions {
  checkpoint: string;
  image: string;
  maxNewTokens: number;
  /** Write input_ids, pixel_values, image_grid_thw, position_ids, logits here. */
  dump?: string;
}

/**
 * Loads a checkpoint for inference; every problem with it (unreadable
 * files, tensors that do not fit its config.json, a tokenizer of another
 * model, non-finite weights) is an `InputError` naming the folder.
 */
export async function loadForInference(
  checkpoint: string,
): Promise<{ model: Qwen3VLForConditionalGeneration; tok: Tokenizer }> {
  const model = await loadCheckpointModel(checkpoint);
  try {
    const tok = await Tokenizer.fromFile(join(checkpoint, "tokenizer.json"));
    checkTokenizerFitsModel(tok, model, `checkpoint ${checkpoint}`);
    checkFiniteWeights(model, `checkpoint ${checkpoint}`);
    return { model, tok };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export async function inferImage(o: InferOptions): Promise<InferResult> {
  const img = await readPng(o.image);
  const { model, tok } = await loadForInference(o.checkpoint);
  try {
    checkMaxNewTokens(o.maxNewTokens, model, "--max-new-tokens");
    const bounds = await readBounds(o.checkpoint);
    const pre = preprocessImage(img.rgb, img.height, img.width, {
      ...visionPreprocessFor(model.config),
      minPixels: bounds.min_pixels,
      maxPixels: bounds.max_pixels,
    });
    const prompt = renderPrompt(tok, pre.mergedTokenCount);
    const pixelValues = tf.tensor2d(pre.pixelValues, pre.shape);
    try {
      const gen = await model.generate({
        prompts: [prompt],
        pixelValues,
        imageGridThw: [pre.gridThw],
        maxNewTokens: o.maxNewTokens,
        mode: "greedy",
      });
      const out = gen.tokens[0];
      const p = parseRolloutForMatching(tok, out);
      const detections = p.predictions.map((q) => ({
        desc: q.desc,
        bbox_2d: q.bbox,
        bbox_px: binBoxToPixels(q.bbox, img.width, img.height),
      }));
      let dump: string | null = null;
      if (o.dump) {
        dump = o.dump;
        await writeDump(model, prompt, out, pixelValues, pre, o.dump);
      }
      return {
        answer: tok.decode(p.responseIds),
        parsed: !p.invalid && p.stop === "closed",
        detections,
        drops: p.drops,
        newTokens: out.length,
        dump,
        width: img.width,
        height: img.height,
      };
    } finally {
      pixelValues.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** One full forward over prompt + answer; its inputs and logits as safetensors. */
async function writeDump(
  model: Qwen3VLForConditionalGeneration,
  prompt: Int32Array,
  answer: Int32Array,
  pixelValues: tf.Tensor2D,
  pre: { gridThw: [number, number, number]; shape: [number, number] },
  path: string,
): Promise<void> {
  const ids = new Int32Array(prompt.length + answer.length);
  ids.set(prompt);
  ids.set(answer, prompt.length);
  const T = ids.length;
  const rope = model.getRopeIndex([ids], [pre.gridThw]);
  const inputIds = tf.tensor2d(ids, [1, T], "int32");
  const positionIds = tf.tensor3d(rope.positionIds, [3, 1, T], "int32");
  try {
    const out = model.forward({
      inputIds,
      pixelValues,
      imageGridThw: [pre.gridThw],
      positionIds,
    });
    const logits = out.logits.dataSync() as Float32Array;
    const V = out.logits.shape[2];
    out.logits.dispose();
    await writeFileAtomic(
      path,
      encodeSafetensors([
        ["input_ids", { shape: [1, T], data: ids }],
        ["pixel_values", {
          shape: pre.shape,
          data: pixelValues.dataSync() as Float32Array,
        }],
        ["image_grid_thw", {
          shape: [1, 3],
          data: Int32Array.from(pre.gridThw),
        }],
        ["position_ids", { shape: [3, 1, T], data: rope.positionIds }],
        ["logits", { shape: [1, T, V], data: logits }],
      ], { format: "pt", producer: "stage2 infer --dump" }),
    );
  } finally {
    inputIds.dispose();
    positionIds.dispose();
  }
}
