/**
 * Stage-2 training forwards: the checked forward call (design §2 forward
 * contract), the trace context of each pass, and Channel A's soft
 * self-context passes (passes 0..n-2 outside the gradient tape, the last
 * pass inside it). What the passes fed is observed by the trace recorder on
 * the model's side, not reported from here.
 */
import { tf } from "../runtime.ts";
import { faultActive } from "../common/faults.ts";
import type { Qwen3VLConfig } from "../model/config.ts";
import { FORWARD_KEYS, GENERATION_ONLY_KEYS } from "../model/forward_keys.ts";
import type { GenerateRequest, GenerateResult } from "../model/generate.ts";
import type { TrainContext } from "../variant/contract.ts";
import type { RolloutResult, Stage2Batch } from "./batch.ts";
import { assertFullLogits } from "./loss.ts";
import type { Channel } from "./schedule.ts";
import { expectedCoordEmbeddings, softContextEmbeddings } from "./softctx.ts";

/** The model surface the variant uses (`Qwen3VLForConditionalGeneration`). */
export interface Stage2Model {
  readonly config: Qwen3VLConfig;
  trainableVariables(): tf.Variable[];
  embedTokens(inputIds: tf.Tensor2D): tf.Tensor3D;
  forward(args: TrainingForwardArgs): {
    logits: tf.Tensor3D;
    pastKeyValues: unknown | null;
  };
  generate(req: GenerateRequest): Promise<GenerateResult>;
}

/** The only arguments a Stage-2 training forward may carry. */
export interface TrainingForwardArgs {
  inputsEmbeds: tf.Tensor3D;
  positionIds: tf.Tensor3D;
  pixelValues?: tf.Tensor2D;
  imageGridThw?: number[][];
  useCache: false;
}

/** Model arguments a training forward may carry: all but the generation-only ones. */
const FORWARD_KEY_SET: ReadonlySet<string> = new Set(FORWARD_KEYS);
const TRAINING_FORWARD_KEYS: ReadonlySet<string> = new Set(
  FORWARD_KEYS.filter((k) => !GENERATION_ONLY_KEYS.includes(k)),
);

/**
 * Test-only (`trainer/common/faults.ts`): the bugs of this call itself,
 * past the checks, where a wrong argument at the call would be.
 */
function withCallFault(
  args: TrainingForwardArgs,
  T: number,
): TrainingForwardArgs {
  if (faultActive("cache-on")) {
    return { ...args, useCache: true } as unknown as TrainingForwardArgs;
  }
  if (faultActive("sliced-logits")) {
    return { ...args, logitsToKeep: T - 1 } as TrainingForwardArgs;
  }
  return args;
}

/**
 * Runs one training forward after checking the contract: only model
 * arguments (no helper keys such as labels, weights, channel tags or logits
 * slicing), cache off, no past key/values returned, full-sequence logits.
 */
export function trainingForward(
  model: Pick<Stage2Model, "forward">,
  args: TrainingForwardArgs,
): tf.Tensor3D {
  const keys = Object.keys(args);
  const stray = keys.filter((k) => !FORWARD_KEY_SET.has(k));
  if (stray.length > 0) {
    throw new Error(
      `helper key(s) ${
        stray.join(", ")
      } would reach the model's training forward; only ${
        [...TRAINING_FORWARD_KEYS].join(", ")
      } are training-forward arguments`,
    );
  }
  const genOnly = keys.filter((k) => !TRAINING_FORWARD_KEYS.has(k));
  if (genOnly.length > 0) {
    throw new Error(
      `generation-only key(s) ${
        genOnly.join(", ")
      } would reach the model's training forward; training forwards start without a cache and need full-sequence logits`,
    );
  }
  if (args.useCache !== false) {
    throw new Error("a Stage-2 training forward must run with useCache: false");
  }
  const [B, T] = args.inputsEmbeds.shape;
  const out = model.forward(withCallFault(args, T));
  if (faultActive("crash-after-first-forward")) {
    out.logits.dispose();
    throw new Error("injected fault: the run dies after its first forward");
  }
  if (out.pastKeyValues !== null && out.pastKeyValues !== undefined) {
    out.logits.dispose();
    throw new Error(
      "the training forward returned past key/values; training forwards run with the cache off and no cache may travel between soft-context passes",
    );
  }
  try {
    assertFullLogits(out.logits, B, T);
  } catch (e) {
    out.logits.dispose();
    throw e;
  }
  return out.logits;
}

/** What `prepare` hands to `loss`. */
export interface Stage2Prepared {
  channel: Channel;
  batch: Stage2Batch;
  /** [B, L] int32. */
  inputIds: tf.Tensor2D;
  /** [4, B, L] when packed, [3, B, L] otherwise. */
  positionIds: tf.Tensor3D;
  pixelValues: tf.Tensor2D | null;
  /** Channel B: each sample's parsed rollout and matching; else null. */
  rollouts: RolloutResult[] | null;
  /** Expected coord embeddings from pass n-2 (Channel A, n >= 2). */
  softRows: tf.Tensor3D | null;
  /** Only under the `softctx-stale-base` fault: pass 0's base embedding. */
  staleBase?: tf.Tensor3D;
  /** Forward passes of this micro-batch (the step plan's `nPasses`). */
  nPasses: number;
}

/** The model inputs of a collated batch: ids [B, L], position ids, pixel values. */
export function batchTensors(batch: Stage2Batch) {
  const { batch: B, length: L } = batch;
  return {
    inputIds: tf.tensor2d(batch.inputIds, [B, L], "int32"),
    positionIds: batch.packed && !faultActive("position-ids-3-rows")
      ? tf.tensor3d(batch.positionIds, [4, B, L], "int32")
      : tf.tensor3d(batch.positionIds.subarray(B * L), [3, B, L], "int32"),
    pixelValues: batch.pixelShape[0] > 0
      ? tf.tensor2d(batch.pixelValues, batch.pixelShape)
      : null,
  };
}

/** Frees the tensors a prepared micro-batch holds. */
export function disposePrepared(p: Stage2Prepared): void {
  for (
    const t of [
      p.inputIds,
      p.positionIds,
      p.pixelValues,
      p.softRows,
      p.staleBase,
    ]
  ) {
    t?.dispose();
  }
}

function forwardArgs(
  p: Stage2Prepared,
  embeds: tf.Tensor3D,
): TrainingForwardArgs {
  return {
    inputsEmbeds: embeds,
    ...(faultActive("both-inputs") ? { inputIds: p.inputIds } : {}),
    positionIds: p.positionIds,
    ...(p.pixelValues
      ? { pixelValues: p.pixelValues, imageGridThw: p.batch.imageGridThw }
      : {}),
    useCache: false as const,
  };
}

/** Sets the trace context of the next forward: pass, gradient recording, packing. */
function passContext(
  ctx: TrainContext<Stage2Model>,
  p: Stage2Prepared,
  pass: number,
  grad: boolean,
): void {
  ctx.setPass({
    purpose: "train",
    pass,
    nPasses: p.nPasses,
    gradRecorded: grad,
    packed: p.batch.packed,
    segmentLengths: p.batch.segmentLengths,
  });
}

/**
 * The inputs_embeds of one pass: a fresh embedding of the teacher-forced ids
 * with Channel A's coord-slot rows replaced by the previous pass's soft rows.
 */
function passEmbeddings(
  ctx: TrainContext<Stage2Model>,
  p: Stage2Prepared,
  coordTokenIds: ArrayLike<number>,
  coordSlots: number[],
): tf.Tensor3D {
  const stale = faultActive("softctx-stale-base");
  return softContextEmbeddings({
    embedTokens: (ids) => {
      if (!stale) return ctx.model.embedTokens(ids);
      p.staleBase ??= tf.keep(ctx.model.embedTokens(ids));
      return p.staleBase.clone();
    },
    inputIds: p.inputIds,
    coordSlots,
    coordTokenIds,
    softRows: p.softRows,
  });
}

/**
 * Channel A passes 0..n-2, outside any gradient tape: each pass's logits
 * give the expected coord embeddings (`p.softRows`) the next pass feeds.
 */
export function softContextPasses(
  ctx: TrainContext<Stage2Model>,
  p: Stage2Prepared,
  coordTokenIds: ArrayLike<number>,
  softctxTemperature: number,
): void {
  for (let k = 0; k + 1 < p.nPasses; k++) {
    const embeds = passEmbeddings(ctx, p, coordTokenIds, p.batch.coordSlots);
    passContext(ctx, p, k, false);
    const logits = trainingForward(ctx.model, forwardArgs(p, embeds));
    embeds.dispose();
    const next = expectedCoordEmbeddings(
      (ids) => ctx.model.embedTokens(ids),
      logits,
      coordTokenIds,
      softctxTemperature,
    );
    logits.dispose();
    p.softRows?.dispose();
    p.softRows = next;
  }
}

/** The last pass, the only one under the gradient tape: its logits feed every loss. */
export function finalPass(
  ctx: TrainContext<Stage2Model>,
  p: Stage2Prepared,
  coordTokenIds: ArrayLike<number>,
): tf.Tensor3D {
  const slots = p.channel === "A" ? p.batch.coordSlots : [];
  const embeds = passEmbeddings(ctx, p, coordTokenIds, slots);
  passContext(ctx, p, p.nPasses - 1, true);
  return trainingForward(ctx.model, forwardArgs(p, embeds));
}
