/** The Qwen3-VL model: configuration, forward, generation, checkpoints. */
export {
  parseConfig,
  type Qwen3VLConfig,
  type Qwen3VLTextConfig,
  type Qwen3VLVisionConfig,
  tinyConfig,
  type TinyConfigIds,
  visionPreprocessFor,
} from "./config.ts";
export {
  type ForwardArgs,
  type ForwardOutput,
  type ForwardTraceInfo,
  Qwen3VLForConditionalGeneration,
} from "./qwen3vl.ts";
export { KVCache } from "./kv_cache.ts";
export {
  argmax,
  generate,
  type GenerateRequest,
  type GenerateResult,
  sampleTopP,
} from "./generate.ts";
export { getRopeIndex, packedPositionIds, type RopeIndex } from "./rope.ts";
export {
  type CheckpointModel,
  readCheckpoint,
  readCheckpointTensors,
  saveCheckpoint,
  type SaveOptions,
} from "./checkpoint.ts";
export {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
} from "./safetensors.ts";
export { type ParamSpec, paramSpecs } from "./params.ts";
