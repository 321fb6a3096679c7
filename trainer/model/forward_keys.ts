/**
 * The argument names of `Qwen3VLForConditionalGeneration.forward`: the
 * model's side of the forward contract (design §2: helper fields such as
 * labels, loss weights, text position ids, channel tags or logits slicing
 * never reach the forward as unknown arguments). One list, read by the model
 * (which rejects anything else), by the Stage-2 variant (which checks its
 * training forwards before calling) and by the audit (which flags helper
 * keys recorded in a trace). No imports, so the audit stays free of TF.js.
 */

/** Every argument `forward` accepts (camelCase, as in `ForwardArgs`). */
export const FORWARD_KEYS = [
  "inputIds",
  "inputsEmbeds",
  "pixelValues",
  "imageGridThw",
  "positionIds",
  "attentionMask",
  "useCache",
  "pastKeyValues",
  "logitsToKeep",
] as const;

export type ForwardKey = typeof FORWARD_KEYS[number];

/** Inference only: returns logits for the last N positions. */
export const LOGITS_SLICING_KEY = "logitsToKeep";

/**
 * Generation-only arguments: a KV cache carried in, and logits slicing. A
 * training forward (and every soft-context pass) starts without a cache and
 * needs full-sequence logits.
 */
export const GENERATION_ONLY_KEYS: readonly ForwardKey[] = [
  "pastKeyValues",
  LOGITS_SLICING_KEY,
];

/**
 * Hugging Face's snake_case spelling of a forward key.
 *
 * @example
 * snakeCaseKey("inputsEmbeds"); // "inputs_embeds"
 */
export function snakeCaseKey(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
