/**
 * Channel B's rollouts: generation from the prompts with per-request seeds
 * derived from the step's seed base, strict token-aligned parsing, Hungarian
 * matching against the ground truth, and the per-step metrics they report.
 */
import { tf } from "../runtime.ts";
import type { GenerateResult } from "../model/generate.ts";
import { faultActive } from "../common/faults.ts";
import { hungarianMatch } from "../rollout/match.ts";
import { parseRolloutForMatching } from "../rollout/parse.ts";
import { deriveRequestSeed } from "../rollout/seed.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type {
  MetricsSink,
  RawSample,
  TrainContext,
} from "../variant/contract.ts";
import { concatPixels } from "../variant/packing.ts";
import type { RolloutResult } from "./batch.ts";
import type { Stage2Model } from "./forward.ts";
import type { Stage2Knobs } from "../config/knobs.ts";

/** Parses one response and matches its predictions to the sample's GT boxes. */
export function matchRollout(
  tok: Tokenizer,
  match: Stage2Knobs["match"],
  s: RawSample,
  response: ArrayLike<number>,
): RolloutResult {
  const rollout = parseRolloutForMatching(tok, response);
  return {
    rollout,
    match: hungarianMatch(
      rollout.predictions.map((p) => p.bbox),
      s.objects.map((o) => o.bbox_2d),
      match,
    ),
  };
}

/**
 * Generates one response per sample from its prompt (request `i` of
 * micro-batch `mb` gets seed `deriveRequestSeed(seedBase, mb * mbs + i)`),
 * then parses and matches each.
 */
export async function generateRollouts(
  ctx: TrainContext<Stage2Model>,
  samples: RawSample[],
  seedBase: number,
  opts: { tok: Tokenizer; knobs: Stage2Knobs; microBatchSize: number },
): Promise<RolloutResult[]> {
  const { tok, knobs, microBatchSize: mbs } = opts;
  const prompts = samples.map((s) => s.inputIds.slice(0, s.promptLength));
  const px = concatPixels(samples);
  const pixelValues = px.shape[0] > 0
    ? tf.tensor2d(px.data, px.shape)
    : undefined;
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
  });
  let gen: GenerateResult;
  try {
    gen = faultActive("skip-rollouts")
      ? {
        tokens: samples.map(() => new Int32Array(0)),
        stopped: samples.map(() => false),
        logprobs: samples.map(() => new Float32Array(0)),
      }
      : await ctx.model.generate({
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
  return samples.map((s, i) =>
    matchRollout(tok, knobs.match, s, gen.tokens[i])
  );
}

/** This step's rollout facts: the seed base and the decode settings it was used with. */
export function logRolloutFacts(
  m: MetricsSink,
  seedBase: number,
  knobs: Stage2Knobs,
): void {
  m.fact("rollout", "rollout/seed_base", seedBase);
  m.fact("rollout", "rollout/greedy", knobs.decodeMode === "greedy" ? 1 : 0);
  m.fact("rollout", "rollout/temperature", knobs.temperature);
  m.fact("rollout", "rollout/top_p", knobs.topP);
  m.fact("rollout", "rollout/max_new_tokens", knobs.maxNewTokens);
}

/** Parse and match counters of a micro-batch's rollouts. */
export function logRollouts(m: MetricsSink, rs: RolloutResult[]): void {
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
