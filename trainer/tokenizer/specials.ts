/** Chat and vision special tokens of the Qwen3-VL chat format. */
export const SPECIAL_TOKENS = {
  endOfText: "<|endoftext|>",
  imStart: "<|im_start|>",
  imEnd: "<|im_end|>",
  visionStart: "<|vision_start|>",
  visionEnd: "<|vision_end|>",
  imagePad: "<|image_pad|>",
} as const;

export type SpecialName = keyof typeof SPECIAL_TOKENS;

/** The specials in the id order the tiny-tokenizer builder assigns. */
export const SPECIAL_ORDER: readonly SpecialName[] = [
  "endOfText",
  "imStart",
  "imEnd",
  "visionStart",
  "visionEnd",
  "imagePad",
];
