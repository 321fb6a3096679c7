/**
 * `custom.trainer_variant: stage2_ab_training` — the Stage-2 AB method on
 * the shared training loop (see `trainer/variant/contract.ts` for the
 * contract).
 *
 * Per optimizer step the channel comes from the schedule (`schedule.ts`).
 * `prepare` (outside the tape) builds the micro-batch: Channel B rolls out,
 * parses and matches (`rollouts.ts`, or replays the rollout buffer,
 * `buffer.ts`) and builds the FN-appended sequences (`batch.ts`); Channel A
 * runs the soft-context passes 0..n-2 without gradients (`forward.ts`).
 * `loss` (inside the tape) runs the single gradient-recording forward and
 * the hybrid loss on its logits (`loss.ts`). The variant packs its own rows
 * after rollouts (`datasetPacking: false`).
 */
import type { Stage2Config } from "../config/schema.ts";
import { faultActive } from "../common/faults.ts";
import { deriveRolloutSeedBase } from "../rollout/seed.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type {
  JsonValue,
  RawSample,
  StepPlan,
  TrainContext,
  TrainerVariant,
  VariantLoss,
} from "../variant/contract.ts";
import { packingRope, type RopeFn, ropeProbe } from "../variant/packing.ts";
import { buildStage2Batch, type RolloutResult } from "./batch.ts";
import { RolloutBuffer } from "./buffer.ts";
import {
  batchTensors,
  disposePrepared,
  finalPass,
  softContextPasses,
  type Stage2Model,
  type Stage2Prepared,
} from "./forward.ts";
import { extractGtBboxOnly } from "./gt.ts";
import { type Stage2Knobs, stage2Knobs } from "../config/knobs.ts";
import { stage2Loss } from "./loss.ts";
import {
  generateRollouts,
  logRolloutFacts,
  logRollouts,
  matchRollout,
} from "./rollouts.ts";
import { type Channel, planStep as planSchedule } from "./schedule.ts";

/** What the variant holds for the whole run. */
interface Stage2State {
  knobs: Stage2Knobs;
  tok: Tokenizer;
  trainingSeed: number;
  microBatchSize: number;
  /** The model's mRoPE per sample (probed at start-up when packing is on). */
  rope: RopeFn;
  buffer: RolloutBuffer;
}

/**
 * The step plan. The schedule decides the channel; a reuse step whose
 * buffered window is held by nobody (inconsistent state) falls back to the
 * pattern. Channel A runs `n_softctx_iter` passes, everything else one:
 * `nPasses` is the one place that count is decided.
 */
function planStage2Step(
  st: Stage2State,
  globalStep: number,
  windowSize: number,
): StepPlan {
  const { knobs } = st;
  const s = planSchedule({
    pattern: knobs.pattern,
    globalStep,
    windowSize,
    rolloutBuffer: knobs.buffer,
  });
  const held = s.bufferReuse && s.bufferSourceStep !== null &&
    st.buffer.holds(s.bufferSourceStep);
  const reuse = s.bufferReuse && held;
  const channel = s.bufferReuse && !held ? s.patternChannel : s.channel;
  const fresh = channel === "B" && !reuse;
  return {
    channel,
    nPasses: channel === "A"
      ? knobs.nSoftctxIter - (faultActive("n-softctx-off-by-one") ? 1 : 0)
      : 1,
    pattern: [...knobs.pattern],
    rolloutSeedBase: fresh
      ? deriveRolloutSeedBase(st.trainingSeed, globalStep)
      : null,
    freshRollouts: fresh,
    bufferReuse: reuse,
    extra: {
      patternChannel: s.patternChannel,
      bufferSourceStep: reuse ? s.bufferSourceStep : null,
    },
  };
}

/**
 * Channel B's samples and rollouts for one micro-batch: replayed from the
 * buffer on a reuse step, else generated fresh (and buffered when the
 * buffer is on).
 */
async function channelBRollouts(
  st: Stage2State,
  ctx: TrainContext<Stage2Model>,
  samples: RawSample[],
  plan: StepPlan,
): Promise<{ used: RawSample[]; rollouts: RolloutResult[] }> {
  const { knobs, tok } = st;
  const reparse = (s: RawSample, response: number[]) =>
    matchRollout(tok, knobs.match, s, response);
  if (plan.bufferReuse) {
    const held = await st.buffer.replay(
      ctx.runDir,
      plan.extra?.bufferSourceStep as number,
      ctx.microBatch,
      reparse,
    );
    return { used: held.samples, rollouts: held.rollouts };
  }
  const base = plan.rolloutSeedBase ??
    deriveRolloutSeedBase(ctx.trainingSeed, ctx.globalStep);
  logRolloutFacts(ctx.metrics, base, knobs);
  const genBase = faultActive("rollout-seed-mismatch")
    ? deriveRolloutSeedBase(ctx.trainingSeed, ctx.globalStep + 1)
    : base;
  for (const s of samples) {
    extractGtBboxOnly({ objects: s.objects, source: s.record.source });
  }
  const rollouts = await generateRollouts(ctx, samples, genBase, st);
  if (knobs.buffer.enabled && knobs.buffer.mSteps > 1) {
    await st.buffer.store(ctx.runDir, ctx.globalStep, ctx.microBatch, {
      samples,
      rollouts,
    });
  }
  return { used: samples, rollouts };
}

/** `prepare`: rollouts (B), the collated batch, and Channel A's no-grad passes. */
async function prepareStage2(
  st: Stage2State,
  ctx: TrainContext<Stage2Model>,
  samples: RawSample[],
  plan: StepPlan,
): Promise<Stage2Prepared> {
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
    ({ used, rollouts: rs } = await channelBRollouts(st, ctx, samples, plan));
    logRollouts(m, rs);
  } else {
    for (const s of used) {
      extractGtBboxOnly({ objects: s.objects, source: s.record.source });
    }
  }
  const { knobs, tok } = st;
  const batch = buildStage2Batch({
    channel,
    tokenizer: tok,
    samples: used,
    rollouts: rs,
    rope: st.rope,
    packing: knobs.packing,
    padId: tok.specialIds.pad,
    descCeWeight: knobs.descCeWeight,
  });
  const prepared: Stage2Prepared = {
    channel,
    batch,
    ...batchTensors(batch),
    rollouts: rs ?? null,
    softRows: null,
    nPasses: plan.nPasses,
  };
  try {
    if (!faultActive("early-passes-on-tape")) {
      softContextPasses(ctx, prepared, tok.coordIds, knobs.softctxTemperature);
    }
  } catch (e) {
    disposePrepared(prepared);
    throw e;
  }
  m.sum("stage2/supervised_boxes", batch.boxes.length);
  return prepared;
}

/** `loss`: the gradient-recording last pass and the hybrid loss on its logits. */
function stage2LossStep(
  st: Stage2State,
  ctx: TrainContext<Stage2Model>,
  p: Stage2Prepared,
): VariantLoss {
  if (faultActive("early-passes-on-tape")) {
    softContextPasses(ctx, p, st.tok.coordIds, st.knobs.softctxTemperature);
  }
  const logits = finalPass(ctx, p, st.tok.coordIds);
  const terms = stage2Loss(logits, p.batch, {
    coordTokenIds: st.tok.coordIds,
    coordDecodeTemperature: st.knobs.coordDecodeTemperature,
    bboxL1Weight: st.knobs.bboxL1Weight,
    bboxGiouWeight: st.knobs.bboxGiouWeight,
  });
  return {
    loss: terms.total,
    metrics: {
      "loss/ce": terms.ce,
      "loss/bbox_l1": terms.l1,
      "loss/bbox_giou": terms.giou,
    },
  };
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
  const st: Stage2State = {
    knobs,
    tok,
    trainingSeed: init.trainingSeed,
    microBatchSize: init.config.training.micro_batch_size,
    rope: packingRope(
      init.model,
      knobs.packing.enabled,
      ropeProbe(init.model.config, tok.encode("{}")),
    ),
    buffer: new RolloutBuffer(),
  };
  return {
    name: "stage2_ab_training",
    datasetPacking: false,
    planStep: (globalStep, windowSize) =>
      planStage2Step(st, globalStep, windowSize),
    prepare: (ctx, samples, plan) => prepareStage2(st, ctx, samples, plan),
    loss: (ctx, p) => stage2LossStep(st, ctx, p),
    dispose: disposePrepared,
    // The buffered rollouts live in <run>/rollout_buffer/step-<s>.json;
    // the checkpoint only names the window's source step.
    state: (): JsonValue => st.buffer.state(),
    restore: (state: JsonValue) => st.buffer.restore(state),
  };
}
