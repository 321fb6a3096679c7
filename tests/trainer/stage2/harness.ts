/**
 * Test harness for the Stage-2 variant: a micro Qwen3-VL model, a resolved
 * config and a minimal stand-in for the training loop's context that records
 * the trace through the real `TraceRecorder`.
 */
import { tf } from "../../../trainer/runtime.ts";
import {
  resolveConfigObject,
  type Stage2Config,
} from "../../../trainer/config/mod.ts";
import { microModelConfig } from "../../../trainer/selfcheck/fault_runs.ts";
import { Qwen3VLForConditionalGeneration } from "../../../trainer/model/qwen3vl.ts";
import { TraceRecorder } from "../../../trainer/trace/recorder.ts";
import type { ForwardRecord } from "../../../trainer/trace/schema.ts";
import type {
  MetricsSink,
  RawSample,
  TrainContext,
  TrainerVariant,
} from "../../../trainer/variant/contract.ts";
import type { Tokenizer } from "../../../trainer/tokenizer/tokenizer.ts";
import { Rng } from "../../../trainer/common/rng.ts";
import { tinyTokenizer } from "../rollout/helpers.ts";
import type { Stage2Model } from "../../../trainer/stage2/forward.ts";

/** A 1-layer, 32-wide model with a 2x2-patch vision tower. */
export function microModel(
  tok: Tokenizer,
  seed = 5,
): Qwen3VLForConditionalGeneration {
  const cfg = microModelConfig(tok);
  // 2x2 patches: the tests' tiny images are 4x4 pixels per merged token
  Object.assign(cfg.vision_config, { patch_size: 2 });
  return Qwen3VLForConditionalGeneration.create(cfg, seed);
}

export async function stage2Config(
  over: Record<string, unknown> = {},
): Promise<Stage2Config> {
  const base = {
    training: {
      seed: 3,
      micro_batch_size: 2,
      gradient_accumulation_steps: 1,
      trace: "full",
    },
    custom: {
      trainer_variant: "stage2_ab_training",
      extra: {
        stage2_ab: {
          schedule: { pattern: ["A"] },
          n_softctx_iter: 2,
          desc_ce_weight: 0.5,
        },
        rollout_matching: { max_new_tokens: 12, packing_length: 512 },
      },
    },
  };
  return await resolveConfigObject(merge(base, over));
}

function merge(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && prev &&
        typeof prev === "object"
      ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

export class CollectMetrics implements MetricsSink {
  values = new Map<string, number[]>();
  mean(name: string, v: number) {
    this.push(`mean:${name}`, v);
  }
  sum(name: string, v: number) {
    this.push(`sum:${name}`, v);
  }
  set(name: string, v: number) {
    this.push(`set:${name}`, v);
  }
  fact(line: string, name: string, v: number) {
    this.push(`fact:${line}:${name}`, v);
  }
  private push(k: string, v: number) {
    this.values.set(k, [...(this.values.get(k) ?? []), v]);
  }
  get(name: string): number[] {
    return this.values.get(name) ?? [];
  }
}

export interface Harness {
  ctx: TrainContext<Stage2Model>;
  metrics: CollectMetrics;
  recorder: TraceRecorder;
  runDir: string;
  forwards(): ForwardRecord[];
}

export function harness(
  model: Qwen3VLForConditionalGeneration,
  config: Stage2Config,
  tok: Tokenizer = tinyTokenizer(),
): Harness {
  const runDir = Deno.makeTempDirSync({ prefix: "stage2-variant-" });
  const recorder = TraceRecorder.open(runDir, {
    level: config.training.trace,
    variant: "stage2_ab_training",
    tapeProbe: () =>
      (tf.engine().state as unknown as { gradientDepth: number })
        .gradientDepth > 0,
    observe: {
      coordTokenIds: tok.coordIds,
      softctxTemperature: config.custom.extra.stage2_ab.softctx_temperature,
    },
  });
  model.setTracer(recorder.modelTracer);
  const metrics = new CollectMetrics();
  const ctx: TrainContext<Stage2Model> = {
    model: model as unknown as Stage2Model,
    tokenizer: tok,
    config,
    globalStep: 0,
    microBatch: 0,
    windowSize: 1,
    trainingSeed: config.training.seed,
    setPass: (info) => recorder.updateContext(info),
    trace: recorder,
    metrics,
    rng: (name) => Rng.fromSeed(name.length),
    runDir,
  };
  return {
    ctx,
    metrics,
    recorder,
    runDir,
    forwards: () =>
      Deno.readTextFileSync(`${runDir}/trace.jsonl`).trim().split("\n").map((
        l,
      ) => JSON.parse(l))
        .filter((l) => l.kind === "forward"),
  };
}

/**
 * One optimizer step the way the loop runs it: plan, prepare outside the
 * tape, loss inside `tf.variableGrads`, then plain SGD on the gradients.
 * Returns the loss value and the metric scalars.
 */
export async function runStep(
  h: Harness,
  variant: TrainerVariant<unknown, Stage2Model>,
  samples: RawSample[],
  step: number,
  lr = 0.05,
): Promise<{ loss: number; metrics: Record<string, number> }> {
  const plan = variant.planStep(step, 1);
  h.ctx.globalStep = step;
  h.ctx.microBatch = 0;
  h.recorder.setContext({
    globalStep: step,
    channel: plan.channel as "A" | "B",
    purpose: "train",
    microBatch: 0,
    pass: 0,
    nPasses: plan.nPasses,
    gradRecorded: false,
    training: true,
    packed: true,
    segmentLengths: null,
  });
  const prepared = await variant.prepare(h.ctx, samples, plan);
  const vars = h.ctx.model.trainableVariables();
  let metricTensors: Record<string, number | tf.Scalar> = {};
  const { value, grads } = tf.variableGrads(() => {
    const r = variant.loss(h.ctx, prepared);
    // As the loop does: metric tensors must outlive the tape's tidy.
    for (const v of Object.values(r.metrics)) {
      if (v instanceof tf.Tensor) tf.keep(v);
    }
    metricTensors = r.metrics;
    return r.loss;
  }, vars);
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(metricTensors)) {
    metrics[k] = typeof v === "number" ? v : v.dataSync()[0];
  }
  tf.tidy(() => {
    for (const v of vars) {
      if (grads[v.name]) v.assign(tf.sub(v, tf.mul(grads[v.name], lr)));
    }
  });
  tf.dispose(Object.values(grads));
  tf.dispose(
    Object.values(metricTensors).filter((v) =>
      typeof v !== "number"
    ) as tf.Tensor[],
  );
  const loss = value.dataSync()[0];
  value.dispose();
  variant.dispose?.(prepared);
  h.recorder.setContext(null);
  return { loss, metrics };
}
