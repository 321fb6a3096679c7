/**
 * `Qwen3VLForConditionalGeneration` on TF.js with Hugging Face semantics and
 * parameter names: vision tower + text decoder (RMSNorm, q/k norm, GQA,
 * SwiGLU, interleaved mRoPE) + tied or untied LM head.
 *
 * Forward contract (design §2): exactly one of `inputIds` / `inputsEmbeds`;
 * visual features replace the `<|image_pad|>` rows (found by id, or by
 * bitwise equality with the placeholder embedding); 3-row mRoPE or 4-row
 * `[text; t; h; w]` position ids, where row 0 restarting at 0 is the only
 * source of packed-segment boundaries (block-causal attention); a KV cache
 * only when asked for; unknown arguments are an error. Validation and all
 * host-side planning live in `forward_plan.ts`; this file holds the
 * weights and the compute.
 */
import { tf } from "../runtime.ts";
import type { ForwardTraceInfo } from "../trace/schema.ts";
import type { ModelTracer } from "../trace/tracer.ts";
import { parseConfig, type Qwen3VLConfig } from "./config.ts";
import { KVCache } from "./kv_cache.ts";
import {
  activation,
  addMatMul,
  addRmsNorm,
  blockAttention,
  embeddingLookup,
  fusedAvailable,
  gatedActivation,
  matMulShared,
  mm,
  mmConstRight,
  qkPrep,
  recording,
  rmsNorm,
  scatterRows,
} from "./ops.ts";
import {
  initialValues,
  internalShape,
  type ParamSpec,
  paramSpecs,
} from "./params.ts";
import { getRopeIndex, textRopeTables } from "./rope.ts";
import {
  attention,
  type MaterializedPlan,
  materializePlan,
} from "./attention.ts";
import { visionForward } from "./vision.ts";
import {
  type ForwardArgs,
  ForwardContractError,
  type ForwardOutput,
  type ForwardPlan,
  forwardTraceInfo,
  planForward,
  updateCache,
} from "./forward_plan.ts";
import type { AttentionBlock } from "../backend/fused_kernels.ts";
import { installWasmKernelFixes } from "./wasm_kernels.ts";
import { readCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import {
  generate as generateTokens,
  type GenerateRequest,
  type GenerateResult,
} from "./generate.ts";
import { Rng } from "../common/rng.ts";

export type { ForwardArgs, ForwardOutput, ForwardTraceInfo };

let instanceCount = 0;

interface LayerWeights {
  qkv: tf.Tensor2D;
  qkvBias: tf.Tensor1D | null;
  qkNorm: tf.Tensor2D;
  gateUp: tf.Tensor2D;
}

/**
 * Weights in the form the decoder multiplies with. On the blas path nothing
 * is derived (`layers` empty, `head` null): the fused kernels apply the norm
 * scales themselves and BLAS reads the tied embedding table transposed in
 * place, so a large checkpoint is held once.
 */
interface DerivedWeights {
  layers: LayerWeights[];
  /** LM head [H, V] with the final norm folded in; null on the blas path. */
  head: tf.Tensor2D | null;
}

type RopeTensors =
  /** [B*T, 1, hd] tables, broadcast over the q and k heads. */
  | { kind: "elementwise"; cos: tf.Tensor3D; sin: tf.Tensor3D }
  /** Single-token rows (decode): per-row rotation matrices [B, hd, hd]. */
  | { kind: "matrix"; m: tf.Tensor3D };

/**
 * RoPE operands for this forward. For one token per row outside a gradient
 * tape, diag(cos) + R diag(sin) as a matrix turns four kernels per layer
 * into one (decode steps are bound by per-kernel overhead).
 */
function ropeTensors(
  cos: Float32Array,
  sin: Float32Array,
  B: number,
  T: number,
  d: number,
  inference: boolean,
): RopeTensors {
  if (T !== 1 || !inference || fusedAvailable()) {
    return {
      kind: "elementwise",
      cos: tf.tensor3d(cos, [B * T, 1, d]),
      sin: tf.tensor3d(sin, [B * T, 1, d]),
    };
  }
  const m = new Float32Array(B * d * d);
  const h = d / 2;
  for (let b = 0; b < B; b++) {
    const o = b * d * d, r = b * d;
    for (let j = 0; j < d; j++) {
      m[o + j * d + j] = cos[r + j];
      // (x @ R)_j = -x_{j+h} for j < h, x_{j-h} otherwise
      if (j < h) m[o + (j + h) * d + j] = -sin[r + j];
      else m[o + (j - h) * d + j] = sin[r + j];
    }
  }
  return { kind: "matrix", m: tf.tensor3d(m, [B, d, d]) };
}

/** rotate_half as a matrix: (x @ R) = concat(-x2, x1) for x [.., d]. */
function rotateHalfMatrix(d: number): tf.Tensor2D {
  const r = new Float32Array(d * d);
  for (let j = 0; j < d / 2; j++) {
    r[(j + d / 2) * d + j] = -1;
    r[j * d + j + d / 2] = 1;
  }
  return tf.tensor2d(r, [d, d]);
}

export class Qwen3VLForConditionalGeneration {
  readonly config: Qwen3VLConfig;
  readonly specs: ParamSpec[];
  private readonly params = new Map<string, tf.Variable>();
  private tracer: ModelTracer | undefined;
  private derivedCache: { sources: object[]; weights: DerivedWeights } | null =
    null;
  private readonly rotateHalf: tf.Tensor2D;
  private readonly rotateHalfT: tf.Tensor2D;

  private constructor(
    config: Qwen3VLConfig,
    values: Map<string, Float32Array>,
  ) {
    this.config = config;
    this.specs = paramSpecs(config);
    installWasmKernelFixes();
    this.rotateHalf = rotateHalfMatrix(config.text_config.head_dim);
    this.rotateHalfT = tf.keep(tf.transpose(this.rotateHalf));
    // TF.js variable names are process-global: suffix an instance number
    const inst = instanceCount++;
    for (const s of this.specs) {
      const v = values.get(s.name);
      if (!v) throw new Error(`internal: no value for parameter ${s.name}`);
      const init = tf.tensor(v, internalShape(s));
      this.params.set(s.name, tf.variable(init, true, `${s.name}#${inst}`));
      init.dispose(); // the variable holds its own reference to the data
    }
  }

  /** Fresh weights, initialised like HF `_init_weights` from a seeded stream. */
  static create(
    config: Qwen3VLConfig,
    seed: number,
  ): Qwen3VLForConditionalGeneration {
    const cfg = parseConfig(config, "model config");
    const rng = Rng.fromSeed(seed);
    const values = new Map<string, Float32Array>();
    for (const s of paramSpecs(cfg)) values.set(s.name, initialValues(s, rng));
    return new Qwen3VLForConditionalGeneration(cfg, values);
  }

  /** Build from in-memory-layout values keyed by HF name (used by checkpoint loading). */
  static fromValues(
    config: Qwen3VLConfig,
    values: Map<string, Float32Array>,
  ): Qwen3VLForConditionalGeneration {
    return new Qwen3VLForConditionalGeneration(
      parseConfig(config, "model config"),
      values,
    );
  }

  /** Load `config.json` + `model.safetensors` (or a sharded index) from `dir`. */
  static async load(dir: string): Promise<Qwen3VLForConditionalGeneration> {
    const { config, values } = await readCheckpoint(dir);
    return Qwen3VLForConditionalGeneration.fromValues(config, values);
  }

  /** Atomically write `config.json` + `model.safetensors` into `dir`. */
  async save(dir: string): Promise<void> {
    await saveCheckpoint(this, dir);
  }

  /**
   * Every parameter, in `specs` order. Variable names are `<HF name>#<n>`
   * (unique per model instance); `paramNames()` gives the stable HF names in
   * the same order, e.g. as optimizer state keys.
   */
  trainableVariables(): tf.Variable[] {
    return this.specs.map((s) => this.params.get(s.name)!);
  }

  /** HF tensor names, in `trainableVariables()` order. */
  paramNames(): string[] {
    return this.specs.map((s) => s.name);
  }

  /** Parameter by HF name (in-memory layout; see params.ts). */
  param(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`no parameter named ${name}`);
    return v;
  }

  /** Release all weights. */
  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.disposeDerived();
    this.rotateHalf.dispose();
    this.rotateHalfT.dispose();
  }

  /**
   * Reports every forward (its plan's facts, and the tensors it consumed
   * and produced) and, with a `ModelTracer`, every generation call.
   */
  setTracer(
    t: ModelTracer | ModelTracer["forward"] | undefined,
  ): void {
    this.tracer = typeof t === "function" ? { forward: t } : t;
  }

  /** The embedding module: [B, T] int32 ids -> [B, T, H] (differentiable). */
  embedTokens(inputIds: tf.Tensor2D): tf.Tensor3D {
    if (inputIds.rank !== 2) {
      throw new Error(
        `embedTokens: inputIds must be [B, T], got [${inputIds.shape}]`,
      );
    }
    const [b, t] = inputIds.shape;
    const ids = Int32Array.from(inputIds.dataSync());
    return tf.tidy(() =>
      tf.reshape(
        embeddingLookup(
          this.param("model.language_model.embed_tokens.weight") as tf.Tensor2D,
          ids,
        ),
        [b, t, this.config.text_config.hidden_size],
      )
    );
  }

  /** HF `get_rope_index`: 3-row mRoPE positions for token rows. */
  getRopeIndex(
    inputIds: Int32Array[],
    imageGridThw: number[][] = [],
    attentionMask?: Int32Array[],
  ) {
    return getRopeIndex(this.config, inputIds, imageGridThw, attentionMask);
  }

  /** Generation (see generate.ts), reported to the tracer with the seeds it received. */
  generate(req: GenerateRequest): Promise<GenerateResult> {
    const t = this.tracer;
    if (!t?.generation) return generateTokens(this, req);
    return t.generation({
      requests: req.prompts.length,
      mode: req.mode,
      seeds: req.seeds ? [...req.seeds] : null,
      maxNewTokens: req.maxNewTokens,
    }, () => generateTokens(this, req));
  }

  /**
   * The forward pass (HF semantics; contract in the module comment):
   * validation and host-side planning (`planForward`: one `ForwardPlan`
   * record), the compute on that plan, then the returned cache and the
   * trace, both read off the same plan.
   */
  forward(args: ForwardArgs): ForwardOutput {
    let plan: ForwardPlan;
    try {
      plan = planForward(this.config, args, {
        placeholderEmbedding: () => this.placeholderEmbedding(),
        recording: recording(),
      });
    } catch (e) {
      if (e instanceof ForwardContractError) this.tracer?.forward(e.trace);
      throw e;
    }
    const { logits, newKV } = this.compute(plan, args);
    const cache = plan.useCache
      ? updateCache(
        plan,
        args.pastKeyValues ?? new KVCache(plan.batch),
        newKV,
      )
      : null;
    this.tracer?.forward(
      forwardTraceInfo(plan, logits.shape[1], cache !== null),
      {
        inputsEmbeds: args.inputsEmbeds ?? null,
        inputIds: args.inputIds ?? null,
        logits,
        embedTable: this.param(
          "model.language_model.embed_tokens.weight",
        ) as tf.Tensor2D,
        positionIds: args.positionIds ?? null,
        pixelValues: args.pixelValues ?? null,
        imageGridThw: plan.grids,
      },
    );
    return { logits, pastKeyValues: cache };
  }

  /** The `<|image_pad|>` row of the embedding table [H]. */
  private placeholderEmbedding(): Float32Array {
    const H = this.config.text_config.hidden_size;
    const table = this.param("model.language_model.embed_tokens.weight");
    const row = tf.slice(table, [this.config.image_token_id, 0], [1, H]);
    const out = row.dataSync().slice() as Float32Array;
    row.dispose();
    return out;
  }

  /**
   * The compute of one forward on its plan: embeddings (with visual
   * features in the placeholder rows), the decoder layers (deepstack
   * features added after the first ones), the final norm and the LM head.
   */
  private compute(
    plan: ForwardPlan,
    args: ForwardArgs,
  ): { logits: tf.Tensor3D; newKV: { kT: tf.Tensor4D; v: tf.Tensor4D }[] } {
    const cfg = this.config, tc = cfg.text_config;
    const H = tc.hidden_size;
    const { batch: B, seqLen: T, ids, past } = plan;
    const cache = args.pastKeyValues ?? null;
    const keep = plan.logitsToKeep;
    const { cos, sin } = textRopeTables(cfg, plan.mrope, B, T);
    const rowIdx = plan.placeholderRows;
    return tf.tidy(() => {
      let x = ids
        ? embeddingLookup(
          this.param("model.language_model.embed_tokens.weight") as tf.Tensor2D,
          ids,
        )
        : args.inputsEmbeds!.reshape([B * T, H]) as tf.Tensor2D;
      let deep: tf.Tensor2D[] = [];
      if (args.pixelValues && plan.visualFeatures > 0) {
        const vis = visionForward(
          cfg,
          (n) => this.param(n),
          args.pixelValues,
          plan.grids,
        );
        x = scatterRows(x, vis.embeds, rowIdx, "replace");
        deep = vis.deepstack;
      }
      const att = materializePlan(plan.attention);
      const rope = ropeTensors(cos, sin, B, T, tc.head_dim, !recording());
      const dw = this.derived();
      const newKV: { kT: tf.Tensor4D; v: tf.Tensor4D }[] = [];
      for (let l = 0; l < tc.num_hidden_layers; l++) {
        const { out: y, kT, v } = this.decoderLayer(
          l,
          dw.layers[l],
          x,
          B,
          T,
          rope,
          att,
          cache,
          past,
        );
        x = y;
        if (plan.useCache) newKV.push({ kT, v });
        if (l < deep.length) x = scatterRows(x, deep[l], rowIdx, "add");
      }
      return { logits: this.lmHead(x, dw, B, T, keep), newKV };
    });
  }

  /**
   * The fused per-layer weights the decoder multiplies with: q/k/v as one
   * [H, (nH + 2 nKV) hd] matrix, gate/up as one [H, 2I] matrix (each with
   * the preceding RMSNorm's scale folded into its rows), q_norm and k_norm
   * tiled per head [nH + nKV, hd] with the 1/sqrt(hd) attention scaling
   * folded into the q rows, and the LM head as [H, V] with the final norm's
   * scale folded in.
   *
   * Under a gradient tape they are rebuilt from the variables each forward
   * (so gradients flow to the HF-named parameters). Otherwise they are cached
   * and rebuilt only when a source variable was reassigned: the wasm matmul
   * re-packs its right operand whenever that tensor is new, which would
   * dominate single-token decode steps.
   */
  private derived(): DerivedWeights {
    if (fusedAvailable()) return { layers: [], head: null };
    const isRecording = recording();
    const sources = this.specs.map((s) => this.params.get(s.name)!.dataId);
    if (!isRecording) {
      const c = this.derivedCache;
      if (
        c && c.sources.length === sources.length &&
        c.sources.every((d, i) => d === sources[i])
      ) return c.weights;
    }
    const weights = this.buildDerived();
    if (!isRecording) {
      this.disposeDerived();
      tf.keep(weights.head!);
      for (const lw of weights.layers) {
        for (const t of Object.values(lw)) if (t) tf.keep(t);
      }
      this.derivedCache = { sources, weights };
    }
    return weights;
  }

  private disposeDerived(): void {
    const c = this.derivedCache;
    if (!c) return;
    c.weights.head?.dispose();
    for (const lw of c.weights.layers) {
      for (const t of Object.values(lw)) t?.dispose();
    }
    this.derivedCache = null;
  }

  private buildDerived(): DerivedWeights {
    const tc = this.config.text_config;
    const nH = tc.num_attention_heads,
      nKV = tc.num_key_value_heads,
      hd = tc.head_dim;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < tc.num_hidden_layers; l++) {
      const p = (n: string) =>
        this.param(`model.language_model.layers.${l}.${n}`);
      // RMSNorm scales folded into the following products:
      // (x̂ * w) @ W = x̂ @ (w[:, None] * W)
      const inNorm = tf.reshape(p("input_layernorm.weight"), [-1, 1]);
      const postNorm = tf.reshape(p("post_attention_layernorm.weight"), [
        -1,
        1,
      ]);
      layers.push({
        qkv: tf.mul(
          inNorm,
          tf.concat([
            p("self_attn.q_proj.weight"),
            p("self_attn.k_proj.weight"),
            p("self_attn.v_proj.weight"),
          ], 1),
        ) as tf.Tensor2D,
        qkvBias: tc.attention_bias
          ? tf.concat([
            p("self_attn.q_proj.bias"),
            p("self_attn.k_proj.bias"),
            p("self_attn.v_proj.bias"),
          ]) as tf.Tensor1D
          : null,
        qkNorm: tf.concat([
          tf.tile(
            tf.reshape(
              tf.mul(p("self_attn.q_norm.weight"), 1 / Math.sqrt(hd)),
              [1, hd],
            ),
            [nH, 1],
          ),
          tf.tile(tf.reshape(p("self_attn.k_norm.weight"), [1, hd]), [nKV, 1]),
        ]) as tf.Tensor2D,
        gateUp: tf.mul(
          postNorm,
          tf.concat([p("mlp.gate_proj.weight"), p("mlp.up_proj.weight")], 1),
        ) as tf.Tensor2D,
      });
    }
    const head = this.config.tie_word_embeddings
      ? tf.transpose(this.param("model.language_model.embed_tokens.weight"))
      : this.param("lm_head.weight");
    const finalNorm = tf.reshape(
      this.param("model.language_model.norm.weight"),
      [-1, 1],
    );
    return { layers, head: tf.mul(finalNorm, head) as tf.Tensor2D };
  }

  /** Final norm and LM head on x [B*T, H] -> logits [B, keep || T, V]. */
  private lmHead(
    x: tf.Tensor2D,
    dw: DerivedWeights,
    B: number,
    T: number,
    keep: number,
  ): tf.Tensor3D {
    const tc = this.config.text_config, H = tc.hidden_size;
    let h: tf.Tensor = x;
    let tOut = T;
    if (keep > 0 && keep < T) {
      // the norm is per row: slicing first skips the rows nobody reads
      h = tf.slice(tf.reshape(h, [B, T, H]), [0, T - keep, 0], [B, keep, H]);
      tOut = keep;
    }
    h = tf.reshape(h, [B * tOut, H]);
    let logits: tf.Tensor;
    if (dw.head) {
      // the final norm's scale is folded into the head (see derived())
      logits = mm(rmsNorm(h, null, tc.rms_norm_eps) as tf.Tensor2D, dw.head);
    } else {
      const hn = rmsNorm(
        h,
        this.param("model.language_model.norm.weight"),
        tc.rms_norm_eps,
      ) as tf.Tensor2D;
      logits = this.config.tie_word_embeddings
        ? tf.matMul(
          hn,
          this.param("model.language_model.embed_tokens.weight"),
          false,
          true,
        )
        : tf.matMul(hn, this.param("lm_head.weight"));
    }
    return tf.reshape(logits, [B, tOut, tc.vocab_size]);
  }

  /** One decoder layer on x [B*T, H]; returns the layer output and this layer's full K/V. */
  private decoderLayer(
    l: number,
    w: LayerWeights,
    x: tf.Tensor2D,
    B: number,
    T: number,
    rope: RopeTensors,
    att: MaterializedPlan,
    cache: KVCache | null,
    past: number,
  ): { out: tf.Tensor2D; kT: tf.Tensor4D; v: tf.Tensor4D } {
    if (att.kind === "fused") {
      return this.decoderLayerFused(l, x, B, T, rope, att.blocks, cache, past);
    }
    const tc = this.config.text_config;
    const p = (n: string) =>
      this.param(`model.language_model.layers.${l}.${n}`);
    const nH = tc.num_attention_heads,
      nKV = tc.num_key_value_heads,
      hd = tc.head_dim,
      rep = nH / nKV;
    const eps = tc.rms_norm_eps;
    const xn = rmsNorm(x, null, eps) as tf.Tensor2D; // scale folded into w.qkv
    let qkv: tf.Tensor = mm(xn, w.qkv); // [B*T, (nH + 2 nKV) hd]
    if (w.qkvBias) qkv = tf.add(qkv, w.qkvBias);
    const [qk0, v0] = tf.split(qkv, [(nH + nKV) * hd, nKV * hd], 1);
    // q_norm/k_norm and RoPE on all q and k heads at once: [B*T, nH + nKV, hd];
    // rotate_half(x) is x @ R with a fixed signed permutation R (exact)
    const qkn = rmsNorm(
      tf.reshape(qk0, [B * T, nH + nKV, hd]),
      w.qkNorm,
      eps,
    );
    let qk: tf.Tensor;
    if (rope.kind === "matrix") {
      // one token per row: RoPE is a per-row linear map, x @ (diag(cos) + R diag(sin))
      qk = tf.matMul(tf.reshape(qkn, [B, nH + nKV, hd]), rope.m);
    } else {
      const rot = tf.reshape(
        mmConstRight(
          tf.reshape(qkn, [-1, hd]) as tf.Tensor2D,
          this.rotateHalf,
          this.rotateHalfT,
        ),
        [B * T, nH + nKV, hd],
      );
      qk = tf.add(tf.mul(qkn, rope.cos), tf.mul(rot, rope.sin));
    }
    const [q, k] = tf.split(tf.reshape(qk, [B, T, nH + nKV, hd]), [nH, nKV], 2);
    let kT = tf.transpose(k, [0, 2, 3, 1]) as tf.Tensor4D; // [B, nKV, hd, T]
    let v = tf.transpose(tf.reshape(v0, [B, T, nKV, hd]), [
      0,
      2,
      1,
      3,
    ]) as tf.Tensor4D; // [B, nKV, T, hd]
    if (cache && past > 0) {
      kT = tf.concat([cache.layers[l].kT, kT], 3);
      v = tf.concat([cache.layers[l].v, v], 2);
    }
    const a2 = attention(q, kT, v, att, B, T, nKV, rep, hd); // [B*T, nH*hd]
    let o: tf.Tensor = mm(a2, p("self_attn.o_proj.weight") as tf.Tensor2D);
    if (tc.attention_bias) o = tf.add(o, p("self_attn.o_proj.bias"));
    const h = tf.add(x, o) as tf.Tensor2D;
    const hn = rmsNorm(h, null, eps) as tf.Tensor2D; // scale folded into w.gateUp
    const I = tc.intermediate_size;
    const [g, u] = tf.split(mm(hn, w.gateUp), [I, I], 1);
    const act = tf.mul(activation(tc.hidden_act, g), u) as tf.Tensor2D;
    const out = tf.add(
      h,
      mm(act, p("mlp.down_proj.weight") as tf.Tensor2D),
    ) as tf.Tensor2D;
    return { out, kT, v };
  }

  /**
   * The blas path's decoder layer: HF's order of operations on the HF-named
   * weights, with RMSNorm, q/k norm + rotary, attention and SwiGLU each one
   * fused kernel and every product a BLAS call.
   */
  private decoderLayerFused(
    l: number,
    x: tf.Tensor2D,
    B: number,
    T: number,
    rope: RopeTensors,
    blocks: AttentionBlock[],
    cache: KVCache | null,
    past: number,
  ): { out: tf.Tensor2D; kT: tf.Tensor4D; v: tf.Tensor4D } {
    const tc = this.config.text_config;
    const p = (n: string) =>
      this.param(`model.language_model.layers.${l}.${n}`) as tf.Tensor2D;
    const nH = tc.num_attention_heads,
      nKV = tc.num_key_value_heads,
      hd = tc.head_dim;
    const eps = tc.rms_norm_eps;
    if (rope.kind !== "elementwise") {
      throw new Error("internal: the blas path uses rotary tables");
    }
    const bias = tc.attention_bias;
    const biased = (y: tf.Tensor2D, name: string): tf.Tensor2D =>
      bias ? tf.add(y, p(`${name}.bias`)) as tf.Tensor2D : y;
    const xn = rmsNorm(x, p("input_layernorm.weight"), eps) as tf.Tensor2D;
    const [q, k, v0] = matMulShared(xn, [
      p("self_attn.q_proj.weight"),
      p("self_attn.k_proj.weight"),
      p("self_attn.v_proj.weight"),
    ]);
    const prep = qkPrep(
      biased(q, "self_attn.q_proj"),
      biased(k, "self_attn.k_proj"),
      biased(v0, "self_attn.v_proj"),
      tf.reshape(rope.cos, [B * T, hd]),
      tf.reshape(rope.sin, [B * T, hd]),
      {
        qw: p("self_attn.q_norm.weight") as unknown as tf.Tensor1D,
        kw: p("self_attn.k_norm.weight") as unknown as tf.Tensor1D,
      },
      { B, T, nH, nKV, hd, eps, scale: 1 / Math.sqrt(hd) },
    );
    let kT = prep.kT, v = prep.v;
    if (cache && past > 0) {
      kT = tf.concat([cache.layers[l].kT, kT], 3);
      v = tf.concat([cache.layers[l].v, v], 2);
    }
    const a2 = blockAttention(prep.q, kT, v, blocks, nH, T); // [B*T, nH*hd]
    const o = biased(
      tf.matMul(a2, p("self_attn.o_proj.weight")),
      "self_attn.o_proj",
    );
    // h = x + o and its norm in one pass
    const { h, y: hn } = addRmsNorm(
      x,
      o,
      p("post_attention_layernorm.weight"),
      eps,
    );
    const [g, u] = matMulShared(hn as tf.Tensor2D, [
      p("mlp.gate_proj.weight"),
      p("mlp.up_proj.weight"),
    ]);
    const act = gatedActivation(tc.hidden_act, g, u) as tf.Tensor2D;
    const out = addMatMul(
      h as tf.Tensor2D,
      act,
      p("mlp.down_proj.weight"),
    );
    return { out: out as tf.Tensor2D, kT, v };
  }
}
