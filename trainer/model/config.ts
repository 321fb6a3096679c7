/**
 * Qwen3-VL configuration with Hugging Face `config.json` field names
 * (`Qwen3VLConfig` / `Qwen3VLTextConfig` / `Qwen3VLVisionConfig`), so a
 * config written here loads in transformers and a released config loads here.
 */
import type { VisionPreprocessConfig } from "../data/vision.ts";

export interface Qwen3VLRopeScaling {
  rope_type?: string;
  mrope_section: [number, number, number];
  mrope_interleaved?: boolean;
}

export interface Qwen3VLTextConfig {
  model_type?: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: Qwen3VLRopeScaling;
  attention_bias: boolean;
  initializer_range: number;
  tie_word_embeddings?: boolean;
  bos_token_id?: number;
  /** `<|im_end|>` in released Qwen3-VL configs: generation stops on it. */
  eos_token_id: number;
  pad_token_id?: number | null;
}

export interface Qwen3VLVisionConfig {
  model_type?: string;
  depth: number;
  hidden_size: number;
  hidden_act: string;
  intermediate_size: number;
  num_heads: number;
  in_channels: number;
  patch_size: number;
  spatial_merge_size: number;
  temporal_patch_size: number;
  out_hidden_size: number;
  num_position_embeddings: number;
  deepstack_visual_indexes: number[];
  initializer_range: number;
}

export interface Qwen3VLConfig {
  architectures?: string[];
  model_type: "qwen3_vl";
  text_config: Qwen3VLTextConfig;
  vision_config: Qwen3VLVisionConfig;
  image_token_id: number;
  video_token_id: number;
  vision_start_token_id: number;
  vision_end_token_id: number;
  tie_word_embeddings: boolean;
}

/** Special token ids the tiny config needs from the tokenizer. */
export interface TinyConfigIds {
  imageTokenId: number;
  visionStartTokenId: number;
  visionEndTokenId: number;
  /** `<|im_end|>`: the end-of-turn token generation stops on. */
  imEndTokenId: number;
  /**
   * HF requires the field; there are no videos here. Defaults to the
   * `<|im_end|>` id, which never follows `<|vision_start|>`: HF's
   * get_rope_index counts a vision block as a video when its first token is
   * the video id, so it must not alias the image id.
   */
  videoTokenId?: number;
  bosTokenId?: number;
  padTokenId?: number;
}

/**
 * The default tiny model: trains on two CPU cores. Patch size 8 with 2x2
 * merging turns a 64x64 image into an 8x8 patch grid and 16 `<|image_pad|>`
 * tokens (pass `visionPreprocessFor(cfg)` to the image preprocessing).
 */
export function tinyConfig(
  vocabSize: number,
  ids: TinyConfigIds,
): Qwen3VLConfig {
  for (const [k, v] of Object.entries(ids)) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v < vocabSize)) {
      throw new RangeError(
        `tinyConfig: ${k}=${v} is not a token id below vocab_size ${vocabSize}`,
      );
    }
  }
  return {
    architectures: ["Qwen3VLForConditionalGeneration"],
    model_type: "qwen3_vl",
    image_token_id: ids.imageTokenId,
    video_token_id: ids.videoTokenId ?? ids.imEndTokenId,
    vision_start_token_id: ids.visionStartTokenId,
    vision_end_token_id: ids.visionEndTokenId,
    tie_word_embeddings: true,
    text_config: {
      model_type: "qwen3_vl_text",
      vocab_size: vocabSize,
      hidden_size: 128,
      intermediate_size: 384,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 32,
      hidden_act: "silu",
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-6,
      rope_theta: 5000000,
      // sums to head_dim/2 = 16, in the proportions of the released 24/20/20
      rope_scaling: {
        rope_type: "default",
        mrope_section: [6, 5, 5],
        mrope_interleaved: true,
      },
      attention_bias: false,
      initializer_range: 0.02,
      tie_word_embeddings: true,
      ...(ids.bosTokenId !== undefined ? { bos_token_id: ids.bosTokenId } : {}),
      eos_token_id: ids.imEndTokenId,
      pad_token_id: ids.padTokenId ?? null,
    },
    vision_config: {
      model_type: "qwen3_vl",
      depth: 2,
      hidden_size: 64,
      hidden_act: "gelu_pytorch_tanh",
      intermediate_size: 256,
      num_heads: 2,
      in_channels: 3,
      patch_size: 8,
      spatial_merge_size: 2,
      temporal_patch_size: 2,
      out_hidden_size: 128,
      num_position_embeddings: 64,
      deepstack_visual_indexes: [0],
      initializer_range: 0.02,
    },
  };
}

/** The image-preprocessing sizes this model expects (for `preprocessImage`). */
export function visionPreprocessFor(
  cfg: Qwen3VLConfig,
): Pick<
  VisionPreprocessConfig,
  "patchSize" | "temporalPatchSize" | "mergeSize"
> {
  const v = cfg.vision_config;
  return {
    patchSize: v.patch_size,
    temporalPatchSize: v.temporal_patch_size,
    mergeSize: v.spatial_merge_size,
  };
}

function need(
  obj: Record<string, unknown>,
  where: string,
  key: string,
  kind: "int" | "num" | "str",
): void {
  const v = obj[key];
  const ok = kind === "int"
    ? Number.isInteger(v) && (v as number) >= 0
    : kind === "num"
    ? typeof v === "number" && Number.isFinite(v)
    : typeof v === "string";
  if (!ok) {
    throw new Error(
      `${where}: "${key}" must be ${
        kind === "int"
          ? "a non-negative integer"
          : kind === "num"
          ? "a number"
          : "a string"
      }, got ${JSON.stringify(v)}`,
    );
  }
}

/** `text_config`: required sizes, GQA shape, mRoPE sections, activation. */
function parseTextConfig(
  tc: Record<string, unknown>,
  tw: string,
): Pick<Qwen3VLTextConfig, "head_dim" | "hidden_act"> & {
  rs: Record<string, unknown>;
  section: [number, number, number];
} {
  for (
    const k of [
      "vocab_size",
      "hidden_size",
      "intermediate_size",
      "num_hidden_layers",
      "num_attention_heads",
      "num_key_value_heads",
    ]
  ) need(tc, tw, k, "int");
  const nH = tc.num_attention_heads as number,
    nKV = tc.num_key_value_heads as number;
  if (nKV < 1 || nH % nKV !== 0) {
    throw new Error(
      `${tw}: num_attention_heads ${nH} must be a multiple of num_key_value_heads ${nKV}`,
    );
  }
  const headDim = (tc.head_dim as number | undefined) ??
    (tc.hidden_size as number) / nH;
  const rs = (tc.rope_scaling ?? {}) as Record<string, unknown>;
  const section = (rs.mrope_section ?? [24, 20, 20]) as number[];
  if (
    !Array.isArray(section) || section.length !== 3 ||
    !section.every((s) => Number.isInteger(s) && s >= 0) ||
    section.reduce((a, b) => a + b, 0) !== headDim / 2
  ) {
    throw new Error(
      `${tw}: rope_scaling.mrope_section ${
        JSON.stringify(section)
      } must be 3 integers summing to head_dim/2 = ${headDim / 2}`,
    );
  }
  if (rs.rope_type !== undefined && rs.rope_type !== "default") {
    throw new Error(
      `${tw}: rope_scaling.rope_type "${rs.rope_type}" is not supported (only "default")`,
    );
  }
  const act = (tc.hidden_act as string | undefined) ?? "silu";
  if (act !== "silu") {
    throw new Error(
      `${tw}: hidden_act "${act}" is not supported (only "silu")`,
    );
  }
  return {
    head_dim: headDim,
    hidden_act: act,
    rs,
    section: section as [number, number, number],
  };
}

/** `vision_config`: required sizes, activation, position grid, deepstack indexes. */
function parseVisionConfig(
  vc: Record<string, unknown>,
  vw: string,
  tc: Record<string, unknown>,
): Pick<Qwen3VLVisionConfig, "hidden_act" | "deepstack_visual_indexes"> {
  for (
    const k of [
      "depth",
      "hidden_size",
      "intermediate_size",
      "num_heads",
      "patch_size",
      "spatial_merge_size",
      "temporal_patch_size",
      "out_hidden_size",
      "num_position_embeddings",
    ]
  ) need(vc, vw, k, "int");
  const vact = (vc.hidden_act as string | undefined) ?? "gelu_pytorch_tanh";
  if (!["gelu_pytorch_tanh", "gelu", "silu"].includes(vact)) {
    throw new Error(`${vw}: hidden_act "${vact}" is not supported`);
  }
  const side = Math.round(Math.sqrt(vc.num_position_embeddings as number));
  if (side * side !== vc.num_position_embeddings) {
    throw new Error(
      `${vw}: num_position_embeddings ${vc.num_position_embeddings} must be a perfect square`,
    );
  }
  const depth = vc.depth as number;
  const ds = (vc.deepstack_visual_indexes ?? []) as number[];
  if (
    !Array.isArray(ds) ||
    !ds.every((i) => Number.isInteger(i) && i >= 0 && i < depth)
  ) {
    throw new Error(
      `${vw}: deepstack_visual_indexes ${
        JSON.stringify(ds)
      } must be block indices below depth ${depth}`,
    );
  }
  if (ds.length > (tc.num_hidden_layers as number)) {
    throw new Error(
      `${vw}: ${ds.length} deepstack indexes exceed the ${tc.num_hidden_layers} text layers`,
    );
  }
  if (vc.out_hidden_size !== tc.hidden_size) {
    throw new Error(
      `${vw}: out_hidden_size ${vc.out_hidden_size} must equal text hidden_size ${tc.hidden_size}`,
    );
  }
  return { hidden_act: vact, deepstack_visual_indexes: ds };
}

/**
 * Validate a parsed `config.json` and fill HF defaults that released configs
 * may omit. `where` names the file in error messages.
 */
export function parseConfig(
  raw: unknown,
  where = "config.json",
): Qwen3VLConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${where}: expected a JSON object`);
  }
  const top = raw as Record<string, unknown>;
  if (top.model_type !== undefined && top.model_type !== "qwen3_vl") {
    throw new Error(
      `${where}: model_type "${top.model_type}" is not "qwen3_vl"`,
    );
  }
  const tc = top.text_config as Record<string, unknown> | undefined;
  const vc = top.vision_config as Record<string, unknown> | undefined;
  if (typeof tc !== "object" || tc === null) {
    throw new Error(`${where}: missing "text_config" object`);
  }
  if (typeof vc !== "object" || vc === null) {
    throw new Error(`${where}: missing "vision_config" object`);
  }
  for (const k of ["image_token_id", "vision_start_token_id"]) {
    need(top, where, k, "int");
  }
  const tw = `${where} text_config`;
  const text = parseTextConfig(tc, tw);
  const vision = parseVisionConfig(vc, `${where} vision_config`, tc);
  const tie =
    (top.tie_word_embeddings ?? tc.tie_word_embeddings ?? false) as boolean;
  if (tc.eos_token_id === undefined) {
    throw new Error(
      `${tw}: "eos_token_id" (the <|im_end|> id generation stops on) is required`,
    );
  }
  const eos = Array.isArray(tc.eos_token_id)
    ? tc.eos_token_id[0]
    : tc.eos_token_id;
  return {
    ...(top as unknown as Qwen3VLConfig),
    model_type: "qwen3_vl",
    // absent fields take HF's Qwen3VLConfig defaults, as transformers would
    video_token_id: (top.video_token_id as number | undefined) ?? 151656,
    vision_end_token_id: (top.vision_end_token_id as number | undefined) ??
      151653,
    tie_word_embeddings: tie,
    text_config: {
      ...(tc as unknown as Qwen3VLTextConfig),
      head_dim: text.head_dim,
      hidden_act: text.hidden_act,
      max_position_embeddings:
        (tc.max_position_embeddings as number | undefined) ?? 262144,
      rms_norm_eps: (tc.rms_norm_eps as number | undefined) ?? 1e-6,
      rope_theta: (tc.rope_theta as number | undefined) ?? 5000000,
      rope_scaling: {
        ...text.rs,
        mrope_section: text.section,
      } as Qwen3VLRopeScaling,
      attention_bias: (tc.attention_bias as boolean | undefined) ?? false,
      initializer_range: (tc.initializer_range as number | undefined) ?? 0.02,
      eos_token_id: eos as number,
    },
    vision_config: {
      ...(vc as unknown as Qwen3VLVisionConfig),
      hidden_act: vision.hidden_act,
      in_channels: (vc.in_channels as number | undefined) ?? 3,
      deepstack_visual_indexes: vision.deepstack_visual_indexes,
      initializer_range: (vc.initializer_range as number | undefined) ?? 0.02,
    },
  };
}
