/**
 * The host side of `Qwen3VLForConditionalGeneration.forward`: argument
 * validation (design §2 forward contract) and a planning step that turns
 * the arguments into ONE plain record, the `ForwardPlan`: placeholder rows,
 * visual feature count, mRoPE positions, row 0 and its packed segments, key
 * validity, the attention plan and logits slicing. The compute (the
 * decoder) and the trace (`forwardTraceInfo`) both read that record, so
 * every fact the trace reports is the one the kernels used.
 *
 * A contract violation the audit must see (both or neither input, a
 * placeholder count that does not match the visual features) throws a
 * `ForwardContractError` carrying the trace of the rejected call.
 */
import type { tf } from "../runtime.ts";
import { segmentsFromRow0 } from "../common/segments.ts";
import { faultActive } from "../common/faults.ts";
import { rowsEqualTo } from "../common/rows.ts";
import { splitPositionIds } from "../trace/helpers.ts";
import type { ForwardTraceInfo } from "../trace/schema.ts";
import { type AttentionPlan, attentionPlan } from "./attention.ts";
import type { Qwen3VLConfig } from "./config.ts";
import { FORWARD_KEYS } from "./forward_keys.ts";
import type { KVCache } from "./kv_cache.ts";
import { maskSegments } from "./mask_facts.ts";
import { getRopeIndex } from "./rope.ts";

export interface ForwardArgs {
  /** [B, T] int32 token ids. */
  inputIds?: tf.Tensor2D;
  /** [B, T, H] input embeddings (e.g. from `embedTokens`, coord rows replaced). */
  inputsEmbeds?: tf.Tensor3D;
  /** [Npatch, C*tps*ps*ps] for all images of the batch, in row order. */
  pixelValues?: tf.Tensor2D;
  /** [[t, h, w] per image] in patches. */
  imageGridThw?: number[][];
  /** [3, B, T] mRoPE or [4, B, T] `[text; t; h; w]` (packed rows), int32. */
  positionIds?: tf.Tensor3D;
  /** [B, T] 1 = token, 0 = padding. With a cache: [B, Tpast + T]. */
  attentionMask?: tf.Tensor2D;
  /** Return a KV cache (generation only). */
  useCache?: boolean;
  /** Cache from a previous forward of the same sequences; updated in place. */
  pastKeyValues?: KVCache;
  /** Inference only: return logits for the last N positions (0 = all). */
  logitsToKeep?: number;
}

export interface ForwardOutput {
  /** [B, T, V], or [B, logitsToKeep, V]. */
  logits: tf.Tensor3D;
  pastKeyValues: KVCache | null;
}

// `ForwardArgs` and `FORWARD_KEYS` name the same arguments (checked by tsc).
type ForwardKey = typeof FORWARD_KEYS[number];
const _sameKeys: [keyof ForwardArgs] extends [ForwardKey]
  ? [ForwardKey] extends [keyof ForwardArgs] ? true : never
  : never = true;
const FORWARD_KEY_SET: ReadonlySet<string> = new Set(FORWARD_KEYS);

/** Everything `forward` decides on the host before any kernel runs. */
export interface ForwardPlan {
  inputKind: "input_ids" | "inputs_embeds";
  /** Keys of the arguments whose value was not `undefined`. */
  argKeys: string[];
  /** B and T of the input. */
  batch: number;
  seqLen: number;
  /** Token ids [B*T] on the `inputIds` path; null with `inputsEmbeds`. */
  ids: Int32Array | null;
  /**
   * Flat rows `b*T + t` of the image placeholders: by id, or (with
   * `inputsEmbeds`) by bitwise equality with the placeholder's embedding.
   */
  placeholderRows: Int32Array;
  /** The image grids the vision tower runs on ([] without pixel values). */
  grids: number[][];
  /** Visual feature rows the vision tower produces for `grids`. */
  visualFeatures: number;
  /** With `inputsEmbeds` and images: the placeholder rows found match the visual features; else null. */
  placeholderBitwiseEqual: boolean | null;
  /** Rows of the `positionIds` received (null: derived here). */
  positionIdsRows: 3 | 4 | null;
  /** Row 0 (text positions) of 4-row position ids, per batch row; null otherwise. */
  row0: Int32Array[] | null;
  /** mRoPE positions [3, B, T] (t, h, w rows), row-major. */
  mrope: Int32Array;
  /** Packed-segment id per position, per batch row (from row 0); null = unpacked. */
  segmentIds: Int32Array[] | null;
  /** The cache flag in force, whether a cache came in, and its length. */
  useCache: boolean;
  cacheIn: boolean;
  past: number;
  /** Per batch row, 1 for keys that may be attended, over past + T keys; null = all. */
  keyValid: Uint8Array[] | null;
  /**
   * How attention runs: its blocks with their causal / key-padding /
   * block-diagonal pairs, as the kernels execute them.
   */
  attention: AttentionPlan;
  /** Logits for the last N positions only (0 = all; generation only). */
  logitsToKeep: number;
}

/** A forward-contract violation, with the trace of the call it rejected. */
export class ForwardContractError extends Error {
  constructor(message: string, readonly trace: ForwardTraceInfo) {
    super(message);
  }
}

/** What the planner needs from the model besides the arguments. */
export interface PlanContext {
  /** The placeholder token's embedding row [H] (read only on the `inputsEmbeds` path). */
  placeholderEmbedding(): Float32Array;
  /** True while a gradient tape records (training forwards). */
  recording: boolean;
}

function maskRows(mask: tf.Tensor2D, B: number, w: number): Int32Array[] {
  if (mask.rank !== 2 || mask.shape[0] !== B) {
    throw new Error(
      `forward: attentionMask must be [${B}, T], got [${mask.shape}]`,
    );
  }
  const d = mask.dataSync();
  return Array.from(
    { length: B },
    (_, b) => Int32Array.from(d.subarray(b * w, (b + 1) * w)),
  );
}

function byRow(flat: Int32Array, B: number, T: number): Int32Array[] {
  return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
}

/** Keys, cache and input exclusivity: the checks before anything is read. */
function checkArgs(
  args: ForwardArgs,
  cfg: Qwen3VLConfig,
  ctx: PlanContext,
): { argKeys: string[]; useCache: boolean; B: number; T: number } {
  const unknown = Object.keys(args).filter((k) => !FORWARD_KEY_SET.has(k));
  if (unknown.length) {
    throw new Error(
      `forward: unknown argument(s) ${unknown.join(", ")}; accepted: ${
        FORWARD_KEYS.join(", ")
      }`,
    );
  }
  const argKeys = Object.keys(args).filter((k) =>
    (args as Record<string, unknown>)[k] !== undefined
  );
  const H = cfg.text_config.hidden_size;
  const hasIds = args.inputIds !== undefined,
    hasEmb = args.inputsEmbeds !== undefined;
  const cache = args.pastKeyValues ?? null;
  const useCache = args.useCache ?? (cache !== null);
  if (cache && args.useCache === false) {
    throw new Error("forward: pastKeyValues was passed with useCache: false");
  }
  if (useCache && ctx.recording) {
    throw new Error(
      "forward: useCache/pastKeyValues are for generation only; training forwards (under a gradient tape) run without a cache",
    );
  }
  if (hasIds === hasEmb) {
    throw new ForwardContractError(
      "forward: pass exactly one of inputIds or inputsEmbeds",
      {
        inputKind: hasIds ? "both" : "none",
        argKeys,
        useCache,
        cacheIn: cache !== null,
        returnedPast: false,
        // shapes of whatever was passed (schema needs positive sizes)
        batch: args.inputIds?.shape[0] || 1,
        seqLen: args.inputIds?.shape[1] || 1,
        logitsLen: 0,
        positionIdsRows: null,
        row0: null,
        mrope: null,
        attentionSegments: null,
        attentionMaskProblem: null,
        placeholderRows: 0,
        visualFeatures: 0,
        placeholderBitwiseEqual: null,
      },
    );
  }
  const [B, T] = hasIds ? args.inputIds!.shape : args.inputsEmbeds!.shape;
  if (hasIds && args.inputIds!.rank !== 2) {
    throw new Error(
      `forward: inputIds must be [B, T], got [${args.inputIds!.shape}]`,
    );
  }
  if (
    hasEmb &&
    (args.inputsEmbeds!.rank !== 3 || args.inputsEmbeds!.shape[2] !== H)
  ) {
    throw new Error(
      `forward: inputsEmbeds must be [B, T, ${H}], got [${
        args.inputsEmbeds!.shape
      }]`,
    );
  }
  if (cache && cache.batch !== B) {
    throw new Error(
      `forward: cache holds ${cache.batch} rows, input has ${B}`,
    );
  }
  return { argKeys, useCache, B, T };
}

/**
 * Image placeholder rows and the visual features they must receive; a
 * count mismatch is a contract violation (the trace records it).
 */
function placeholders(
  args: ForwardArgs,
  cfg: Qwen3VLConfig,
  ctx: PlanContext,
  base: { argKeys: string[]; useCache: boolean; B: number; T: number },
): Pick<
  ForwardPlan,
  | "ids"
  | "placeholderRows"
  | "grids"
  | "visualFeatures"
  | "placeholderBitwiseEqual"
> {
  const ids = args.inputIds ? Int32Array.from(args.inputIds.dataSync()) : null;
  let rows: number[];
  if (ids) {
    rows = [];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === cfg.image_token_id) rows.push(i);
    }
  } else {
    rows = rowsEqualTo(
      args.inputsEmbeds!.dataSync() as Float32Array,
      ctx.placeholderEmbedding(),
    );
  }
  const grids = args.imageGridThw ?? [];
  if (args.pixelValues && !args.imageGridThw) {
    throw new Error("forward: pixelValues needs imageGridThw");
  }
  const m2 = cfg.vision_config.spatial_merge_size ** 2;
  const nVisual = args.pixelValues
    ? grids.reduce((n, [t, h, w]) => n + (t * h * w) / m2, 0)
    : 0;
  const bitwiseEqual = !ids && args.pixelValues
    ? rows.length === nVisual
    : null;
  if (rows.length !== nVisual) {
    throw new ForwardContractError(
      `forward: ${rows.length} image placeholder row(s) (<|image_pad|> id ${cfg.image_token_id}${
        ids ? "" : ", found by bitwise equality with its embedding"
      }) but ${nVisual} visual feature(s) from imageGridThw ${
        JSON.stringify(args.pixelValues ? grids : [])
      }`,
      {
        inputKind: ids ? "input_ids" : "inputs_embeds",
        argKeys: base.argKeys,
        useCache: base.useCache,
        cacheIn: (args.pastKeyValues ?? null) !== null,
        returnedPast: false,
        batch: base.B,
        seqLen: base.T,
        logitsLen: 0,
        positionIdsRows: args.positionIds
          ? (args.positionIds.shape[0] === 4 ? 4 : 3)
          : null,
        row0: null,
        mrope: null,
        attentionSegments: null,
        attentionMaskProblem: null,
        placeholderRows: rows.length,
        visualFeatures: nVisual,
        placeholderBitwiseEqual: bitwiseEqual,
      },
    );
  }
  return {
    ids,
    placeholderRows: Int32Array.from(rows),
    grids: args.pixelValues ? grids : [],
    visualFeatures: nVisual,
    placeholderBitwiseEqual: bitwiseEqual,
  };
}

/**
 * mRoPE positions: the 4-row ids' rows 1..3 (row 0 kept apart), 3-row ids
 * as given, continuing positions after a cache, or HF `get_rope_index` on
 * the ids (or on a synthetic id row marking the placeholders found by
 * equality).
 */
function positions(
  args: ForwardArgs,
  cfg: Qwen3VLConfig,
  B: number,
  T: number,
  p: Pick<ForwardPlan, "ids" | "placeholderRows" | "grids">,
): Pick<ForwardPlan, "positionIdsRows" | "row0" | "mrope"> {
  const cache = args.pastKeyValues ?? null;
  if (args.positionIds) {
    const ps = args.positionIds.shape;
    if (
      args.positionIds.rank !== 3 || (ps[0] !== 3 && ps[0] !== 4) ||
      ps[1] !== B || ps[2] !== T
    ) {
      throw new Error(
        `forward: positionIds must be [3|4, ${B}, ${T}], got [${ps}]`,
      );
    }
    const all = Int32Array.from(args.positionIds.dataSync());
    if (ps[0] === 3) return { positionIdsRows: 3, row0: null, mrope: all };
    if (cache) {
      throw new Error(
        "forward: 4-row (packed) positionIds cannot be combined with pastKeyValues",
      );
    }
    return {
      positionIdsRows: 4,
      row0: byRow(all, B, T),
      mrope: all.slice(B * T),
    };
  }
  if (cache && cache.length > 0) {
    const mrope = new Int32Array(3 * B * T);
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          mrope[(a * B + b) * T + t] = cache.nextPosition[b] + t +
            (faultActive("cache-positions-off-by-one") ? 1 : 0);
        }
      }
    }
    return { positionIdsRows: null, row0: null, mrope };
  }
  let idRows: Int32Array[];
  if (p.ids) idRows = byRow(p.ids, B, T);
  else {
    const synth = new Int32Array(B * T).fill(cfg.image_token_id === 0 ? 1 : 0);
    for (const r of p.placeholderRows) synth[r] = cfg.image_token_id;
    idRows = byRow(synth, B, T);
  }
  const am = args.attentionMask
    ? maskRows(args.attentionMask, B, T)
    : undefined;
  return {
    positionIdsRows: null,
    row0: null,
    mrope: getRopeIndex(cfg, idRows, p.grids, am).positionIds,
  };
}

/** Per batch row, which of the past + T keys may be attended (null = all). */
function keyValidity(
  args: ForwardArgs,
  B: number,
  T: number,
): Uint8Array[] | null {
  const cache = args.pastKeyValues ?? null;
  const past = cache ? cache.length : 0;
  const Tk = past + T;
  if (args.attentionMask) {
    const w = args.attentionMask.shape[1];
    const am = maskRows(args.attentionMask, B, w);
    if (w !== T && w !== Tk) {
      throw new Error(
        `forward: attentionMask is [${B}, ${w}], expected [${B}, ${T}] or [${B}, ${Tk}]`,
      );
    }
    return am.map((r, b) => {
      const full = new Uint8Array(Tk);
      if (w === Tk) full.set(r.map((v) => (v ? 1 : 0)));
      else {
        if (cache) full.set(cache.keyValid[b]);
        full.set(r.map((v) => (v ? 1 : 0)), past);
      }
      return full;
    });
  }
  if (!cache) return null;
  return cache.keyValid.map((kv) => {
    const full = new Uint8Array(Tk).fill(1);
    full.set(kv);
    return full;
  });
}

function checkLogitsToKeep(keep: number, T: number, recording: boolean): void {
  if (!Number.isInteger(keep) || keep < 0 || keep > T) {
    throw new Error(
      `forward: logitsToKeep must be an integer in [0, ${T}], got ${keep}`,
    );
  }
  if (keep > 0 && keep < T && recording) {
    throw new Error(
      "forward: logitsToKeep is for inference only; training forwards (under a gradient tape) need logits for every position",
    );
  }
}

/**
 * Validates the arguments and plans the forward on the host. Throws a
 * plain error for malformed arguments and a `ForwardContractError` (with
 * the trace of the call) for contract violations the audit reports.
 */
export function planForward(
  cfg: Qwen3VLConfig,
  args: ForwardArgs,
  ctx: PlanContext,
): ForwardPlan {
  const base = checkArgs(args, cfg, ctx);
  const { B, T } = base;
  const ph = placeholders(args, cfg, ctx, base);
  const pos = positions(args, cfg, B, T, ph);
  const keyValid = keyValidity(args, B, T);
  const segmentIds = pos.row0 ? pos.row0.map(segmentsFromRow0) : null;
  const past = args.pastKeyValues ? args.pastKeyValues.length : 0;
  const keep = args.logitsToKeep ?? 0;
  checkLogitsToKeep(keep, T, ctx.recording);
  return {
    inputKind: ph.ids ? "input_ids" : "inputs_embeds",
    argKeys: base.argKeys,
    batch: B,
    seqLen: T,
    ...ph,
    ...pos,
    segmentIds,
    useCache: base.useCache,
    cacheIn: (args.pastKeyValues ?? null) !== null,
    past,
    keyValid,
    // the segment ids are attention's one source of packed boundaries
    // (block partition and pairs alike): the fault drops them there
    attention: attentionPlan(
      B,
      T,
      past,
      keyValid,
      faultActive("attention-ignores-segments") ? null : segmentIds,
    ),
    logitsToKeep: keep,
  };
}

/**
 * What the trace records about a forward: read off its plan, the attention
 * segments off the attention blocks the kernels execute.
 */
export function forwardTraceInfo(
  plan: ForwardPlan,
  logitsLen: number,
  returnedPast: boolean,
): ForwardTraceInfo {
  const { batch: B, seqLen: T } = plan;
  const mask = maskSegments(plan.attention);
  return {
    inputKind: plan.inputKind,
    argKeys: plan.argKeys,
    useCache: plan.useCache,
    cacheIn: plan.cacheIn,
    returnedPast,
    batch: B,
    seqLen: T,
    logitsLen,
    positionIdsRows: plan.positionIdsRows,
    row0: plan.row0 ? plan.row0.map((r) => Array.from(r)) : null,
    mrope: splitPositionIds(plan.mrope, 3, B, T).mrope,
    attentionSegments: mask.segments,
    attentionMaskProblem: mask.problem,
    placeholderRows: plan.placeholderRows.length,
    visualFeatures: plan.visualFeatures,
    placeholderBitwiseEqual: plan.placeholderBitwiseEqual,
  };
}

/** The cache a `useCache` forward returns: this forward's keys/values, key validity, next positions. */
export function updateCache(
  plan: ForwardPlan,
  cache: KVCache,
  layers: KVCache["layers"],
): KVCache {
  const { batch: B, seqLen: T } = plan;
  for (const l of cache.layers) {
    l.kT.dispose();
    l.v.dispose();
  }
  cache.layers = layers;
  cache.keyValid = plan.keyValid ??
    Array.from({ length: B }, () => new Uint8Array(plan.past + T).fill(1));
  for (let b = 0; b < B; b++) {
    let mx = -Infinity;
    for (let a = 0; a < 3; a++) {
      for (let t = 0; t < T; t++) {
        mx = Math.max(mx, plan.mrope[(a * B + b) * T + t]);
      }
    }
    cache.nextPosition[b] = mx + 1;
  }
  return cache;
}
