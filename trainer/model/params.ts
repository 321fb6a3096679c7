/**
 * The parameter table of Qwen3VLForConditionalGeneration: every tensor's
 * Hugging Face name and shape, how it is laid out in memory here, and how it
 * is initialised.
 *
 * Linear weights are kept as [in, out] (HF stores [out, in]) because the wasm
 * backend multiplies without transpose flags much faster; the patch
 * embedding's Conv3d kernel [out, C, tps, ps, ps] is the same linear over
 * flattened patches. Checkpoints always use HF's layout (see `toHf`/`fromHf`).
 */
import type { Qwen3VLConfig } from "./config.ts";

export interface ParamSpec {
  /** HF tensor name, e.g. `model.language_model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** Shape in the HF checkpoint. */
  hfShape: number[];
  /** "linear": stored transposed as [prod(hfShape[1:]), hfShape[0]]; "same": as in HF. */
  layout: "linear" | "same";
  init: "normal" | "ones" | "zeros";
  std: number;
}

/** Shape of the in-memory tensor for a spec. */
export function internalShape(s: ParamSpec): number[] {
  if (s.layout === "same") return s.hfShape;
  const out = s.hfShape[0];
  const inn = s.hfShape.slice(1).reduce((a, b) => a * b, 1);
  return [inn, out];
}

/** All parameters of a config, in a stable order. */
export function paramSpecs(cfg: Qwen3VLConfig): ParamSpec[] {
  const tc = cfg.text_config, vc = cfg.vision_config;
  const specs: ParamSpec[] = [];
  const add = (
    name: string,
    hfShape: number[],
    layout: "linear" | "same",
    init: ParamSpec["init"],
    std = 0,
  ) => specs.push({ name, hfShape, layout, init, std });
  const lin = (
    prefix: string,
    out: number,
    inn: number,
    bias: boolean,
    std: number,
  ) => {
    add(`${prefix}.weight`, [out, inn], "linear", "normal", std);
    if (bias) add(`${prefix}.bias`, [out], "same", "zeros");
  };
  const ln = (prefix: string, dim: number) => {
    add(`${prefix}.weight`, [dim], "same", "ones");
    add(`${prefix}.bias`, [dim], "same", "zeros");
  };

  const vs = vc.initializer_range, dv = vc.hidden_size;
  const v = "model.visual";
  add(
    `${v}.patch_embed.proj.weight`,
    [dv, vc.in_channels, vc.temporal_patch_size, vc.patch_size, vc.patch_size],
    "linear",
    "normal",
    vs,
  );
  add(`${v}.patch_embed.proj.bias`, [dv], "same", "zeros");
  add(
    `${v}.pos_embed.weight`,
    [vc.num_position_embeddings, dv],
    "same",
    "normal",
    vs,
  );
  for (let i = 0; i < vc.depth; i++) {
    const b = `${v}.blocks.${i}`;
    ln(`${b}.norm1`, dv);
    ln(`${b}.norm2`, dv);
    lin(`${b}.attn.qkv`, 3 * dv, dv, true, vs);
    lin(`${b}.attn.proj`, dv, dv, true, vs);
    lin(`${b}.mlp.linear_fc1`, vc.intermediate_size, dv, true, vs);
    lin(`${b}.mlp.linear_fc2`, dv, vc.intermediate_size, true, vs);
  }
  const merged = dv * vc.spatial_merge_size ** 2;
  const merger = (prefix: string, postShuffle: boolean) => {
    ln(`${prefix}.norm`, postShuffle ? merged : dv);
    lin(`${prefix}.linear_fc1`, merged, merged, true, vs);
    lin(`${prefix}.linear_fc2`, vc.out_hidden_size, merged, true, vs);
  };
  merger(`${v}.merger`, false);
  vc.deepstack_visual_indexes.forEach((_, j) =>
    merger(`${v}.deepstack_merger_list.${j}`, true)
  );

  const ts = tc.initializer_range, h = tc.hidden_size, hd = tc.head_dim;
  const l = "model.language_model";
  add(`${l}.embed_tokens.weight`, [tc.vocab_size, h], "same", "normal", ts);
  for (let i = 0; i < tc.num_hidden_layers; i++) {
    const b = `${l}.layers.${i}`;
    add(`${b}.input_layernorm.weight`, [h], "same", "ones");
    lin(
      `${b}.self_attn.q_proj`,
      tc.num_attention_heads * hd,
      h,
      tc.attention_bias,
      ts,
    );
    lin(
      `${b}.self_attn.k_proj`,
      tc.num_key_value_heads * hd,
      h,
      tc.attention_bias,
      ts,
    );
    lin(
      `${b}.self_attn.v_proj`,
      tc.num_key_value_heads * hd,
      h,
      tc.attention_bias,
      ts,
    );
    lin(
      `${b}.self_attn.o_proj`,
      h,
      tc.num_attention_heads * hd,
      tc.attention_bias,
      ts,
    );
    add(`${b}.self_attn.q_norm.weight`, [hd], "same", "ones");
    add(`${b}.self_attn.k_norm.weight`, [hd], "same", "ones");
    add(`${b}.post_attention_layernorm.weight`, [h], "same", "ones");
    lin(`${b}.mlp.gate_proj`, tc.intermediate_size, h, false, ts);
    lin(`${b}.mlp.up_proj`, tc.intermediate_size, h, false, ts);
    lin(`${b}.mlp.down_proj`, h, tc.intermediate_size, false, ts);
  }
  add(`${l}.norm.weight`, [h], "same", "ones");
  if (!cfg.tie_word_embeddings) lin("lm_head", tc.vocab_size, h, false, ts);
  return specs;
}

/**
 * Initial values of a parameter in its in-memory layout, drawn from `rng`
 * like HF `_init_weights` (normal via Box-Muller on the seeded stream,
 * ones, zeros): identical weights for identical seeds and spec order.
 */
export function initialValues(
  s: ParamSpec,
  rng: { float(): number },
  out?: Float32Array,
): Float32Array {
  const n = s.hfShape.reduce((a, b) => a * b, 1);
  const data = out ?? new Float32Array(n);
  if (s.init === "ones") data.fill(1);
  else if (s.init === "normal") {
    for (let i = 0; i < n; i += 2) {
      const u1 = 1 - rng.float(), u2 = rng.float();
      const r = Math.sqrt(-2 * Math.log(u1)) * s.std;
      data[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) data[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
  }
  return data;
}

/** dst[c * rows + r] = src[r * cols + c], in cache-sized tiles. */
function transposeInto(
  src: Float32Array,
  rows: number,
  cols: number,
  dst: Float32Array,
): void {
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(r0 + T, rows);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(c0 + T, cols);
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
      }
    }
  }
}

/** In-memory values -> HF layout (row-major Float32Array of `hfShape`). */
export function toHf(spec: ParamSpec, data: Float32Array): Float32Array {
  if (spec.layout === "same") return data;
  const [inn, out] = internalShape(spec);
  const res = new Float32Array(data.length);
  transposeInto(data, inn, out, res);
  return res;
}

/** HF layout -> in-memory values (into `out` when given). */
export function fromHf(
  spec: ParamSpec,
  data: Float32Array,
  out?: Float32Array,
): Float32Array {
  if (spec.layout === "same") {
    if (!out) return data;
    out.set(data);
    return out;
  }
  const [inn, o] = internalShape(spec);
  const res = out ?? new Float32Array(data.length);
  transposeInto(data, o, inn, res);
  return res;
}
