/** Shared tiny model and inputs for the model tests. */
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  Qwen3VLForConditionalGeneration,
  tinyConfig,
} from "../../../trainer/model/mod.ts";

export const IDS = {
  imageTokenId: 5,
  visionStartTokenId: 3,
  visionEndTokenId: 4,
  imEndTokenId: 2,
};
export const VOCAB = 96;

export async function tinyModel(
  seed = 7,
): Promise<Qwen3VLForConditionalGeneration> {
  await initRuntime({ log: () => {} });
  return Qwen3VLForConditionalGeneration.create(tinyConfig(VOCAB, IDS), seed);
}

/** One 8x8-patch image (16 merged tokens) as pixel values [64, 384]. */
export function image(seed: number): tf.Tensor2D {
  return tf.randomUniform([64, 384], -1, 1, "float32", seed) as tf.Tensor2D;
}

/** A prompt: text, <|vision_start|>, 16 image pads, <|vision_end|>, text. */
export function promptIds(
  seed: number,
  textBefore = 3,
  textAfter = 6,
): Int32Array {
  const out: number[] = [];
  let s = seed;
  const tok = () => 10 + ((s = (s * 1103515245 + 12345) >>> 0) % (VOCAB - 10));
  for (let i = 0; i < textBefore; i++) out.push(tok());
  out.push(IDS.visionStartTokenId);
  for (let i = 0; i < 16; i++) out.push(IDS.imageTokenId);
  out.push(IDS.visionEndTokenId);
  for (let i = 0; i < textAfter; i++) out.push(tok());
  return Int32Array.from(out);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new Error(`length ${a.length} vs ${b.length}`);
  }
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
