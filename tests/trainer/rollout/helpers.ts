/** Shared fixtures for rollout/stage2 tests: a small byte-level tokenizer. */
import type { RawSample } from "../../../trainer/variant/contract.ts";
import {
  buildTinyTokenizer,
  renderChatSample,
  renderChatText,
  serializeAnswer,
  Tokenizer,
} from "../../../trainer/tokenizer/mod.ts";
import type { GtObject } from "../../../trainer/data/types.ts";

export const SAMPLE_OBJECTS: GtObject[] = [
  { desc: "red circle", bbox_2d: [10, 20, 300, 400] },
  { desc: "blue square", bbox_2d: [500, 100, 700, 350] },
  { desc: "green triangle", bbox_2d: [0, 600, 999, 999] },
];

let cached: Tokenizer | undefined;

/** A deterministic tiny tokenizer trained on a few rendered answers. */
export function tinyTokenizer(): Tokenizer {
  if (cached) return cached;
  const texts: string[] = [];
  for (let i = 0; i < 6; i++) {
    const objs = SAMPLE_OBJECTS.slice(0, 1 + (i % 3)).map((o, j) => ({
      desc: ["red circle", "blue square", "green triangle", "dot"][(i + j) % 4],
      bbox_2d: o.bbox_2d,
    }));
    texts.push(renderChatText(objs, 4), serializeAnswer(objs));
  }
  cached = Tokenizer.fromJson(buildTinyTokenizer(texts, { vocabSize: 420 }));
  return cached;
}

/** A RawSample for `objects` with a fake 1-image grid of `pad` merged patches. */
export function rawSample(
  objects: GtObject[],
  index = 0,
  pad = 4,
  /** C * temporal_patch * patch^2 of the model (24 = 3 * 2 * 2 * 2). */
  pixelDim = 24,
): RawSample {
  const r = renderChatSample(tinyTokenizer(), { objects, imagePadCount: pad });
  const side = Math.round(Math.sqrt(pad)) * 2;
  return {
    ...r,
    index,
    record: {
      images: [`img${index}.png`],
      width: 64,
      height: 64,
      objects,
      source: `train.jsonl:${index + 1}`,
    },
    pixelValues: Float32Array.from(
      { length: side * side * pixelDim },
      (_, i) => Math.sin(i * 0.1 + index),
    ),
    pixelShape: [side * side, pixelDim],
    imageGridThw: [[1, side, side]],
  };
}

/** Text-style mRoPE: all three rows 0..T-1. */
export const flatRope = (
  ids: Int32Array,
): [Int32Array, Int32Array, Int32Array] => {
  const r = Int32Array.from(ids, (_, i) => i);
  return [r, r.slice(), r.slice()];
};
