/**
 * The Stage-2 knobs under the names the method's code uses: one mapping
 * from `custom.extra.{stage2_ab,rollout_matching}` (and the packing switch)
 * to `Stage2Knobs`, so each config key is renamed in exactly one place.
 */
import { ConfigError, crossKeyProblems } from "./load.ts";
import type { Stage2Config } from "./schema.ts";

/** Resolved knobs of `custom.extra.{stage2_ab,rollout_matching}`. */
export interface Stage2Knobs {
  pattern: ("A" | "B")[];
  nSoftctxIter: number;
  softctxTemperature: number;
  coordDecodeTemperature: number;
  descCeWeight: number;
  bboxL1Weight: number;
  bboxGiouWeight: number;
  decodeMode: "greedy" | "sample";
  temperature: number;
  topP: number;
  maxNewTokens: number;
  match: {
    candidateTopK: number;
    iouGate: number;
    fpCost: number;
    fnCost: number;
  };
  packing: { enabled: boolean; maxLength: number };
  buffer: { enabled: boolean; mSteps: number };
}

/**
 * Reads the Stage-2 knobs; a config built in code (not by the loader) is
 * re-checked against the loader's cross-key rules first.
 *
 * @example
 * stage2Knobs(cfg).nSoftctxIter; // custom.extra.stage2_ab.n_softctx_iter
 */
export function stage2Knobs(config: Stage2Config): Stage2Knobs {
  if (config.custom.trainer_variant !== "stage2_ab_training") {
    throw new Error(
      `custom.trainer_variant is ${
        JSON.stringify(config.custom.trainer_variant)
      }; the Stage-2 AB variant needs "stage2_ab_training"`,
    );
  }
  const ab = config.custom.extra.stage2_ab;
  const rm = config.custom.extra.rollout_matching;
  const problems = crossKeyProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    pattern: ab.schedule.pattern,
    nSoftctxIter: ab.n_softctx_iter,
    softctxTemperature: ab.softctx_temperature,
    coordDecodeTemperature: ab.coord_decode_temperature,
    descCeWeight: ab.desc_ce_weight,
    bboxL1Weight: ab.bbox_l1_weight,
    bboxGiouWeight: ab.bbox_giou_weight,
    decodeMode: rm.decode_mode,
    temperature: rm.temperature,
    topP: rm.top_p,
    maxNewTokens: rm.max_new_tokens,
    match: {
      candidateTopK: rm.candidate_top_k,
      iouGate: rm.maskiou_gate,
      fpCost: rm.fp_cost,
      fnCost: rm.fn_cost,
    },
    packing: {
      enabled: config.training.packing.enabled,
      maxLength: rm.packing_length,
    },
    buffer: {
      enabled: rm.rollout_buffer.enabled,
      mSteps: rm.rollout_buffer.m_steps,
    },
  };
}
