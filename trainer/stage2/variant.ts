/**
 * `custom.trainer_variant: stage2_ab_training` — the Stage-2 AB method on
 * the shared training loop (see `trainer/loop/variant.ts` for the contract).
 *
 * Per optimizer step the channel comes from the schedule (`schedule.ts`).
 * `prepare` (outside the tape) builds the micro-batch: Channel A runs the
 * soft-context passes 0..n-2 without gradients; Channel B rolls out, parses,
 * matches and builds the FN-appended sequences. `loss` (inside the tape) runs
 * the single gradient-recording forward and the hybrid loss on its logits.
 * The variant packs its own rows after rollouts (`datasetPacking: false`).
 */
import { tf } from "../runtime.ts";
import type { Stage2Config } from "../config/schema.ts";
import { stage2Knobs } from "../config/knobs.ts";
import type { Qwen3VLConfig } from "../model/config.ts";
import type { GenerateRequest, GenerateResult } from "../model/generate.ts";
import type { ForwardContext } from "../trace/schema.ts";
import { changedRowsByBatch } from "../trace/helpers.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { ropeFnFor } from "../loop/sft.ts";
import type { RopeFn } from "../loop/packing.ts";
import type {
  JsonValue,
  RawSample,
  StepPlan,
  TrainContext,
  TrainerVariant,
  VariantLoss,
} from "../loop/variant.ts";
import { deriveRequestSeed, deriveRolloutSeedBase } from "../rollout/seed.ts";
import { parseRolloutForMatching } from "../rollout/parse.ts";
import { hungarianMatch } from "../rollout/match.ts";
import { extractGtBboxOnly } from "./gt.ts";
import { loadBuffer, saveBuffer } from "./buffer.ts";
import { type Channel, planStep as planSchedule } from "./schedule.ts";
import {
  buildStage2Batch,
  type RolloutResult,
  type Stage2Batch,
} from "./batch.ts";
import { expectedCoordEmbeddings, softContextEmbeddings } from "./softctx.ts";
import { assertFullLogits, stage2Loss } from "./loss.ts";

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

const FORWARD_KEYS = new Set([
  "inputsEmbeds",
  "positionIds",
  "pixelValues",
  "imageGridThw",
  "useCache",
]);

/**
 * Runs one training forward after checking the contract: only model
 * arguments (no helper keys such as labels, weights, channel tags or logits
 * slicing), cache off, no past key/values returned, full-sequence logits.
 */
export function trainingForward(
  model: Pick<Stage2Model, "forward">,
  args: TrainingForwardArgs,
): tf.Tensor3D {
  const stray = Object.keys(args).filter((k) => !FORWARD_KEYS.has(k));
  if (stray.length > 0) {
    throw new Error(
      `helper key(s) ${
        stray.join(", ")
      } would reach the model's training forward; only ${
        [...FORWARD_KEYS].join(", ")
      } are model arguments`,
    );
  }
  if (args.useCache !== false) {
    throw new Error("a Stage-2 training forward must run with useCache: false");
  }
  const out = model.forward(args);
  if (out.pastKeyValues !== null && out.pastKeyValues !== undefined) {
    out.logits.dispose();
    throw new Error(
      "the training forward returned past key/values; training forwards run with the cache off and no cache may travel between soft-context passes",
    );
  }
  const [B, T] = args.inputsEmbeds.shape;
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
  nPasses: number;
}

interface BufferedWindow {
  sourceStep: number;
  /** Per micro-batch index: the samples and their rollouts. */
  micro: Map<number, { samples: RawSample[]; rollouts: RolloutResult[] }>;
}

/**
 * The model's 3-row mRoPE for one sequence, checked once at start-up when
 * packing is on: packed rows need it for their 4-row position ids.
 */
export function packingRope(
  model: { config: Qwen3VLConfig; getRopeIndex?: unknown },
  packing: boolean,
  probe: Int32Array,
): RopeFn {
  const how =
    "set training.packing.enabled: false (one sample per row) or use a model whose getRopeIndex yields 3 mRoPE rows per token";
  if (typeof model.getRopeIndex !== "function") {
    if (packing) {
      throw new Error(
        `packing is on but the model offers no getRopeIndex, so 4-row position ids [text; t; h; w] cannot be built; ${how}`,
      );
    }
  }
  const rope = ropeFnFor(model.config);
  if (packing) {
    let rows: Int32Array[];
    try {
      rows = rope(probe, []);
    } catch (e) {
      throw new Error(
        `packing is on but mRoPE positions cannot be computed (${
          (e as Error).message
        }); ${how}`,
      );
    }
    if (rows.length !== 3 || rows.some((r) => r.length !== probe.length)) {
      throw new Error(
        `packing is on but getRopeIndex gave ${rows.length} rows for a ${probe.length}-token probe; 4-row position ids need 3 mRoPE rows; ${how}`,
      );
    }
  }
  return rope;
}

function concatPixels(samples: RawSample[]): tf.Tensor2D | undefined {
  const rows = samples.reduce((n, s) => n + s.pixelShape[0], 0);
  if (rows === 0) return undefined;
  const dim = samples[0].pixelShape[1];
  const data = new Float32Array(rows * dim);
  let off = 0;
  for (const s of samples) {
    data.set(s.pixelValues, off);
    off += s.pixelValues.length;
  }
  return tf.tensor2d(data, [rows, dim]);
}

/** Per batch row: slot positions within the row, and their p-1 sources. */
function slotsByRow(batch: Stage2Batch): number[][] {
  const out: number[][] = Array.from({ length: batch.batch }, () => []);
  for (const f of batch.coordSlots) {
    out[Math.floor(f / batch.length)].push(f % batch.length);
  }
  return out;
}

/** Frees the tensors a prepared micro-batch holds. */
export function disposePrepared(p: Stage2Prepared): void {
  for (const t of [p.inputIds, p.positionIds, p.pixelValues, p.softRows]) {
    t?.dispose();
  }
}

/** Creates the Stage-2 AB variant (the loop's `VariantFactory`). */
export function createStage2AbVariant(
  init: {
    model: Stage2Model;
    tokenizer: Tokenizer;
    config: Stage2Config;
    trainingSeed: number;
  },
): TrainerVariant<Stage2Prepared, Stage2Model> {
  const knobs = stage2Knobs(init.config);
  const tok = init.tokenizer;
  const V = init.model.config.text_config.vocab_size;
  if (tok.vocabSize > V) {
    throw new Error(
      `tokenizer ${tok.source} has ${tok.vocabSize} ids but the model vocabulary is ${V}; they do not belong together`,
    );
  }
  const rope = packingRope(
    init.model as unknown as { config: Qwen3VLConfig; getRopeIndex?: unknown },
    knobs.packing.enabled,
    Int32Array.from(tok.encode("{}")),
  );
  const coordIds = tok.coordIds;
  const mbs = init.config.training.micro_batch_size;
  let buffer: BufferedWindow | null = null;
  /** Source step of a buffer restored from a checkpoint, not loaded yet. */
  let pending: number | null = null;

  function resultFor(s: RawSample, response: ArrayLike<number>): RolloutResult {
    const rollout = parseRolloutForMatching(tok, response);
    const match = hungarianMatch(
      rollout.predictions.map((p) => p.bbox),
      s.objects.map((o) => o.bbox_2d),
      knobs.match,
    );
    return { rollout, match };
  }

  const embed = (m: Stage2Model) => (ids: tf.Tensor2D) => m.embedTokens(ids);

  function tensors(batch: Stage2Batch) {
    const { batch: B, length: L } = batch;
    return {
      inputIds: tf.tensor2d(batch.inputIds, [B, L], "int32"),
      positionIds: batch.packed
        ? tf.tensor3d(batch.positionIds, [4, B, L], "int32")
        : tf.tensor3d(batch.positionIds.subarray(B * L), [3, B, L], "int32"),
      pixelValues: batch.pixelShape[0] > 0
        ? tf.tensor2d(batch.pixelValues, batch.pixelShape)
        : null,
    };
  }

  function forwardArgs(p: Stage2Prepared, embeds: tf.Tensor3D) {
    return {
      inputsEmbeds: embeds,
      positionIds: p.positionIds,
      ...(p.pixelValues
        ? { pixelValues: p.pixelValues, imageGridThw: p.batch.imageGridThw }
        : {}),
      useCache: false as const,
    };
  }

  /** Trace facts of one soft-context pass (null arrays when not tracing). */
  function softctxFacts(
    ctx: TrainContext<Stage2Model>,
    p: Stage2Prepared,
    embeds: tf.Tensor3D,
  ): ForwardContext["softctx"] {
    if (p.channel !== "A") return null;
    const nSlots = p.batch.coordSlots.length;
    if (!ctx.trace.enabled) {
      return {
        coordSlots: null,
        sourcePositions: null,
        changedRows: null,
        nSlots,
        baseFresh: true,
      };
    }
    const slots = slotsByRow(p.batch);
    const base = tf.tidy(() => ctx.model.embedTokens(p.inputIds));
    const changed = changedRowsByBatch(
      base.dataSync() as Float32Array,
      embeds.dataSync() as Float32Array,
      p.batch.length,
      base.shape[2],
    );
    base.dispose();
    return {
      coordSlots: slots,
      sourcePositions: slots.map((r) => r.map((q) => q - 1)),
      changedRows: changed,
      nSlots,
      baseFresh: true,
    };
  }

  function passContext(
    ctx: TrainContext<Stage2Model>,
    p: Stage2Prepared,
    pass: number,
    grad: boolean,
    embeds: tf.Tensor3D,
  ): void {
    ctx.setPass({
      purpose: "train",
      pass,
      nPasses: p.nPasses,
      gradRecorded: grad,
      packed: p.batch.packed,
      segmentLengths: p.batch.segmentLengths,
      softctx: softctxFacts(ctx, p, embeds),
    });
  }

  async function rollouts(
    ctx: TrainContext<Stage2Model>,
    samples: RawSample[],
    seedBase: number,
  ): Promise<RolloutResult[]> {
    const prompts = samples.map((s) => s.inputIds.slice(0, s.promptLength));
    const pixelValues = concatPixels(samples);
    const seeds = samples.map((_, i) =>
      deriveRequestSeed(seedBase, ctx.microBatch * mbs + i)
    );
    ctx.setPass({
      purpose: "rollout",
      pass: 0,
      nPasses: 1,
      gradRecorded: false,
      packed: false,
      segmentLengths: null,
      softctx: null,
    });
    let gen: GenerateResult;
    try {
      gen = await ctx.model.generate({
        prompts,
        pixelValues,
        imageGridThw: samples.flatMap((s) => s.imageGridThw),
        maxNewTokens: knobs.maxNewTokens,
        mode: knobs.decodeMode,
        temperature: knobs.temperature,
        topP: knobs.topP,
        seeds,
        stopTokenIds: [tok.specialIds.imEnd],
      });
    } finally {
      pixelValues?.dispose();
    }
    return samples.map((s, i) => resultFor(s, gen.tokens[i]));
  }

  function logRollouts(ctx: TrainContext<Stage2Model>, rs: RolloutResult[]) {
    const m = ctx.metrics;
    let matched = 0, fn = 0, fp = 0, gate = 0, iouSum = 0;
    for (const { rollout, match } of rs) {
      m.sum("stage2/invalid_rollout", rollout.invalid ? 1 : 0);
      m.sum("stage2/drop_poly", rollout.drops.poly);
      m.sum("stage2/drop_unknown", rollout.drops.unknown);
      m.sum("stage2/drop_bbox_invalid", rollout.drops.bbox_invalid);
      matched += match.pairs.length;
      fn += match.unmatchedGts.length;
      fp += match.unmatchedPreds.length;
      gate += match.gateRejections;
      iouSum += match.ious.reduce((a, b) => a + b, 0);
    }
    m.sum("match/matched", matched);
    m.sum("match/fn", fn);
    m.sum("match/fp", fp);
    m.sum("match/gate_rejections", gate);
    if (matched > 0) m.mean("match/mean_iou", iouSum / matched);
  }

  return {
    name: "stage2_ab_training",
    datasetPacking: false,

    planStep(globalStep, windowSize, isPartialWindow): StepPlan {
      const s = planSchedule({
        pattern: knobs.pattern,
        globalStep,
        windowSize,
        isPartialWindow,
        rolloutBuffer: knobs.buffer,
      });
      // The buffer is held in memory, or restored from a checkpoint (loaded
      // from its file on first use). A reuse step whose window is held by
      // neither (inconsistent state) falls back to the pattern, as on a
      // partial window.
      const held = s.bufferReuse &&
        (buffer?.sourceStep === s.bufferSourceStep ||
          pending === s.bufferSourceStep);
      const reuse = s.bufferReuse && held;
      const channel = s.bufferReuse && !held ? s.patternChannel : s.channel;
      const fresh = channel === "B" && !reuse;
      return {
        channel,
        nPasses: channel === "A" ? knobs.nSoftctxIter : 1,
        pattern: [...knobs.pattern],
        rolloutSeedBase: fresh
          ? deriveRolloutSeedBase(init.trainingSeed, globalStep)
          : null,
        freshRollouts: fresh,
        bufferReuse: reuse,
        extra: {
          patternChannel: s.patternChannel,
          bufferSourceStep: reuse ? s.bufferSourceStep : null,
        },
      };
    },

    async prepare(ctx, samples, plan): Promise<Stage2Prepared> {
      const channel = plan.channel as Channel;
      if (channel !== "A" && channel !== "B") {
        throw new Error(`Stage-2 plan has channel ${plan.channel}`);
      }
      const m = ctx.metrics;
      m.set("stage2/channel_a", channel === "A" ? 1 : 0);
      m.set("stage2/channel_b", channel === "B" ? 1 : 0);
      let rs: RolloutResult[] | undefined;
      let used = samples;
      if (channel === "B") {
        if (plan.bufferReuse) {
          const src = plan.extra?.bufferSourceStep as number;
          if (buffer?.sourceStep !== src && pending === src) {
            // Resumed inside a buffer window: replay the saved rollouts.
            const saved = await loadBuffer(ctx.runDir, src);
            buffer = { sourceStep: src, micro: new Map() };
            for (const [mb, w] of saved) {
              buffer.micro.set(mb, {
                samples: w.samples,
                rollouts: w.samples.map((x, i) => resultFor(x, w.responses[i])),
              });
            }
            pending = null;
          }
          const held = buffer?.micro.get(ctx.microBatch);
          if (!held) {
            throw new Error(
              `rollout buffer holds no micro-batch ${ctx.microBatch} of step ${buffer?.sourceStep}`,
            );
          }
          used = held.samples;
          rs = held.rollouts;
        } else {
          const base = plan.rolloutSeedBase ??
            deriveRolloutSeedBase(ctx.trainingSeed, ctx.globalStep);
          m.set("rollout/seed_base", base);
          m.set("rollout/greedy", knobs.decodeMode === "greedy" ? 1 : 0);
          m.set("rollout/temperature", knobs.temperature);
          m.set("rollout/top_p", knobs.topP);
          m.set("rollout/max_new_tokens", knobs.maxNewTokens);
          for (const s of used) {
            extractGtBboxOnly({ objects: s.objects, source: s.record.source });
          }
          rs = await rollouts(ctx, used, base);
          if (knobs.buffer.enabled && knobs.buffer.mSteps > 1) {
            if (!buffer || buffer.sourceStep !== ctx.globalStep) {
              buffer = { sourceStep: ctx.globalStep, micro: new Map() };
            }
            buffer.micro.set(ctx.microBatch, { samples: used, rollouts: rs });
            pending = null;
            await saveBuffer(
              ctx.runDir,
              buffer.sourceStep,
              new Map(
                [...buffer.micro].map(([mb, w]) => [mb, {
                  samples: w.samples,
                  responses: w.rollouts.map((r) => r.rollout.responseIds),
                }]),
              ),
            );
          }
        }
        logRollouts(ctx, rs);
      } else {
        for (const s of used) {
          extractGtBboxOnly({ objects: s.objects, source: s.record.source });
        }
      }
      const batch = buildStage2Batch({
        channel,
        tokenizer: tok,
        samples: used,
        rollouts: rs,
        rope,
        packing: knobs.packing,
        padId: tok.specialIds.pad,
        descCeWeight: knobs.descCeWeight,
      });
      const t = tensors(batch);
      const prepared: Stage2Prepared = {
        channel,
        batch,
        ...t,
        rollouts: rs ?? null,
        softRows: null,
        nPasses: channel === "A" ? knobs.nSoftctxIter : 1,
      };
      // Channel A passes 0..n-2: no gradient tape is open here.
      try {
        for (let k = 0; k + 1 < prepared.nPasses; k++) {
          const embeds = softContextEmbeddings({
            embedTokens: embed(ctx.model),
            inputIds: prepared.inputIds,
            coordSlots: batch.coordSlots,
            coordTokenIds: coordIds,
            softRows: prepared.softRows,
          });
          passContext(ctx, prepared, k, false, embeds);
          const logits = trainingForward(
            ctx.model,
            forwardArgs(prepared, embeds),
          );
          embeds.dispose();
          const next = expectedCoordEmbeddings(
            embed(ctx.model),
            logits,
            coordIds,
            knobs.softctxTemperature,
          );
          logits.dispose();
          prepared.softRows?.dispose();
          prepared.softRows = next;
        }
      } catch (e) {
        disposePrepared(prepared);
        throw e;
      }
      m.sum("stage2/supervised_boxes", batch.boxes.length);
      return prepared;
    },

    loss(ctx, p): VariantLoss {
      const embeds = softContextEmbeddings({
        embedTokens: embed(ctx.model),
        inputIds: p.inputIds,
        coordSlots: p.channel === "A" ? p.batch.coordSlots : [],
        coordTokenIds: coordIds,
        softRows: p.softRows,
      });
      passContext(ctx, p, p.nPasses - 1, true, embeds);
      const logits = trainingForward(ctx.model, forwardArgs(p, embeds));
      const terms = stage2Loss(logits, p.batch, {
        coordTokenIds: coordIds,
        coordDecodeTemperature: knobs.coordDecodeTemperature,
        bboxL1Weight: knobs.bboxL1Weight,
        bboxGiouWeight: knobs.bboxGiouWeight,
      });
      return {
        loss: terms.total,
        metrics: {
          "loss/ce": terms.ce,
          "loss/bbox_l1": terms.l1,
          "loss/bbox_giou": terms.giou,
        },
      };
    },

    dispose: disposePrepared,

    state(): JsonValue {
      // The buffered rollouts live in <run>/rollout_buffer/step-<s>.json;
      // the checkpoint only names the window's source step.
      return { bufferSourceStep: buffer?.sourceStep ?? pending };
    },

    restore(state: JsonValue): void {
      buffer = null;
      const s = (state as { bufferSourceStep?: unknown } | null)
        ?.bufferSourceStep;
      pending = typeof s === "number" ? s : null;
    },
  };
}
