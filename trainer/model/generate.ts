/**
 * KV-cached batched decoding. Prompts are left-padded to a common length
 * (pads masked out of attention and skipped by the mRoPE positions, as HF
 * does), one prefill forward fills the cache, then one forward per new token.
 * Greedy picks the lowest-index maximum (deterministic); sampling uses
 * temperature and top-p with one seeded stream per request, so the same seed
 * gives the same tokens.
 */
import { tf } from "../runtime.ts";
import { Rng } from "../common/rng.ts";
import type { Qwen3VLConfig } from "./config.ts";
import type { ForwardArgs, ForwardOutput } from "./forward_plan.ts";

/** What generation needs of the model (`Qwen3VLForConditionalGeneration`). */
export interface GenerateModel {
  readonly config: Qwen3VLConfig;
  forward(args: ForwardArgs): ForwardOutput;
}

export interface GenerateRequest {
  /** Prompt token ids per request (with `<|image_pad|>` runs for its images). */
  prompts: Int32Array[];
  /** [Npatch, C*tps*ps*ps] for all images of all prompts, in prompt order. */
  pixelValues?: tf.Tensor2D;
  imageGridThw?: number[][];
  maxNewTokens: number;
  mode: "greedy" | "sample";
  /** Sampling temperature (> 0); ignored by greedy. Default 1. */
  temperature?: number;
  /** Nucleus mass in (0, 1]; ignored by greedy. Default 1. */
  topP?: number;
  /** One seed per prompt (sampling); ignored by greedy. */
  seeds?: number[];
  /** Tokens that end a response; default `[text_config.eos_token_id]` (`<|im_end|>`). */
  stopTokenIds?: number[];
}

export interface GenerateResult {
  /** New tokens per prompt; the stop token is included when it was produced. */
  tokens: Int32Array[];
  /** Per prompt: true when it ended on a stop token (not by `maxNewTokens`). */
  stopped: boolean[];
  /**
   * Per prompt, aligned with `tokens`: log-probability of each chosen token
   * under the model's untempered distribution, `log softmax(logits)[token]`
   * (what eval uses to score boxes, whatever the decoding mode).
   */
  logprobs: Float32Array[];
}

/** Index of the largest value (first one on ties). */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** `log softmax(row)[index]`, accumulated in float64. */
export function logSoftmaxAt(row: Float32Array, index: number): number {
  let mx = -Infinity;
  for (const v of row) mx = Math.max(mx, v);
  let z = 0;
  for (const v of row) z += Math.exp(v - mx);
  return row[index] - mx - Math.log(z);
}

/** Draw from softmax(row / temperature) restricted to the top-p nucleus. */
export function sampleTopP(
  row: Float32Array,
  temperature: number,
  topP: number,
  rng: Rng,
): number {
  let mx = -Infinity;
  for (const v of row) mx = Math.max(mx, v);
  const p = new Float64Array(row.length);
  let z = 0;
  for (let i = 0; i < row.length; i++) {
    p[i] = Math.exp((row[i] - mx) / temperature);
    z += p[i];
  }
  const order = Array.from(row.keys()).sort((a, b) => p[b] - p[a] || a - b);
  let kept = 0, mass = 0;
  while (kept < order.length && (kept === 0 || mass < topP * z)) {
    mass += p[order[kept++]];
  }
  let u = rng.float() * mass;
  for (let k = 0; k < kept; k++) {
    u -= p[order[k]];
    if (u < 0) return order[k];
  }
  return order[kept - 1];
}

/**
 * Decode `req` with `model`. The work is synchronous (TF.js wasm kernels);
 * errors surface as a rejected promise.
 */
export function generate(
  model: GenerateModel,
  req: GenerateRequest,
): Promise<GenerateResult> {
  try {
    return Promise.resolve(generateSync(model, req));
  } catch (e) {
    return Promise.reject(e);
  }
}

function generateSync(
  model: GenerateModel,
  req: GenerateRequest,
): GenerateResult {
  const cfg = model.config;
  const B = req.prompts.length;
  if (B === 0) return { tokens: [], stopped: [], logprobs: [] };
  if (!(Number.isInteger(req.maxNewTokens) && req.maxNewTokens >= 0)) {
    throw new Error(
      `generate: maxNewTokens must be a non-negative integer, got ${req.maxNewTokens}`,
    );
  }
  const temperature = req.temperature ?? 1, topP = req.topP ?? 1;
  if (req.mode === "sample") {
    if (!(temperature > 0)) {
      throw new Error(`generate: temperature must be > 0, got ${temperature}`);
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new Error(`generate: topP must be in (0, 1], got ${topP}`);
    }
    if (!req.seeds || req.seeds.length !== B) {
      throw new Error(
        `generate: sampling needs one seed per prompt (${B}), got ${
          req.seeds?.length ?? 0
        }`,
      );
    }
  }
  const stops = new Set(req.stopTokenIds ?? [cfg.text_config.eos_token_id]);
  const rngs = req.mode === "sample"
    ? req.seeds!.map((s) => Rng.fromSeed(s))
    : [];
  const L = Math.max(...req.prompts.map((p) => p.length));
  if (L === 0) throw new Error("generate: empty prompt");
  const pad = cfg.text_config.pad_token_id ?? cfg.text_config.eos_token_id;
  const ids = new Int32Array(B * L).fill(pad);
  const mask = new Int32Array(B * L);
  req.prompts.forEach((p, b) => {
    ids.set(p, b * L + L - p.length);
    mask.fill(1, b * L + L - p.length, (b + 1) * L);
  });
  const tokens: number[][] = Array.from({ length: B }, () => []);
  const logprobs: number[][] = Array.from({ length: B }, () => []);
  const stopped = new Array(B).fill(false);
  const V = cfg.text_config.vocab_size;
  // Chosen tokens and their log-probabilities; -1 / NaN for finished rows.
  const pick = (logits: tf.Tensor3D): [number[], number[]] => {
    const data = logits.dataSync() as Float32Array; // [B, 1, V]
    const ids: number[] = [], lps: number[] = [];
    for (let b = 0; b < B; b++) {
      if (stopped[b]) { // finished: draws nothing from its stream
        ids.push(-1);
        lps.push(NaN);
        continue;
      }
      const row = data.subarray(b * V, (b + 1) * V);
      const id = req.mode === "greedy"
        ? argmax(row)
        : sampleTopP(row, temperature, topP, rngs[b]);
      ids.push(id);
      lps.push(logSoftmaxAt(row, id));
    }
    return [ids, lps];
  };
  const result = (): GenerateResult => ({
    tokens: tokens.map((t) => Int32Array.from(t)),
    stopped,
    logprobs: logprobs.map((l) => Float32Array.from(l)),
  });
  if (req.maxNewTokens === 0) return result();

  const idsT = tf.tensor2d(ids, [B, L], "int32"),
    maskT = tf.tensor2d(mask, [B, L], "int32");
  const first = model.forward({
    inputIds: idsT,
    attentionMask: maskT,
    pixelValues: req.pixelValues,
    imageGridThw: req.imageGridThw,
    useCache: true,
    logitsToKeep: 1,
  });
  idsT.dispose();
  maskT.dispose();
  const cache = first.pastKeyValues!;
  let [next, nextLp] = pick(first.logits);
  first.logits.dispose();
  try {
    for (let step = 0; step < req.maxNewTokens; step++) {
      for (let b = 0; b < B; b++) {
        if (stopped[b]) continue;
        tokens[b].push(next[b]);
        logprobs[b].push(nextLp[b]);
        if (stops.has(next[b])) stopped[b] = true;
      }
      if (step + 1 === req.maxNewTokens || stopped.every((s) => s)) break;
      // finished rows keep decoding a stop token; their outputs are ignored
      const feed = tf.tensor2d(
        next.map((t, b) => (stopped[b] ? [...stops][0] : t)),
        [B, 1],
        "int32",
      );
      const out = model.forward({
        inputIds: feed,
        pastKeyValues: cache,
        useCache: true,
      });
      feed.dispose();
      [next, nextLp] = pick(out.logits);
      out.logits.dispose();
    }
  } finally {
    cache.dispose();
  }
  return result();
}
