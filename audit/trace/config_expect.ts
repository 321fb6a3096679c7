/**
 * Expectations from a run folder's resolved `config.yaml`, for traces whose
 * header carries none: the audit then still holds the steps to the schedule
 * pattern, `n_softctx_iter`, the accumulation window, the training seed and
 * the rollout buffer the run was configured with.
 *
 * The file is read with the trainer's own config loader (TF.js-free), so
 * the config's shape, defaults and knob names have one home
 * (`trainer/config/`); what the audit checks against it (e.g. that Channel
 * A ran `n_softctx_iter` passes) is its own.
 */
import {
  ConfigError,
  loadConfig,
  RESOLVED_CONFIG_FILE,
  type Stage2Config,
  stage2Knobs,
} from "../../trainer/config/mod.ts";
import type { RunExpect } from "../../trainer/trace/schema.ts";

/** Thrown when config.yaml exists but cannot be used; names file and key. */
export class ConfigExpectError extends Error {}

/**
 * Builds expectations from a resolved config (the Stage-2 knobs under the
 * trainer's own names, `stage2Knobs`).
 */
export function expectFromConfig(cfg: Stage2Config): RunExpect {
  const base = {
    gradientAccumulationSteps: cfg.training.gradient_accumulation_steps,
    trainingSeed: cfg.training.seed,
    maxSteps: cfg.training.max_steps,
  };
  if (cfg.custom.trainer_variant !== "stage2_ab_training") {
    return { pattern: null, nSoftctxIter: null, ...base };
  }
  const k = stage2Knobs(cfg);
  return {
    pattern: [...k.pattern],
    nSoftctxIter: k.nSoftctxIter,
    ...base,
    rolloutBuffer: { enabled: k.buffer.enabled, mSteps: k.buffer.mSteps },
  };
}

/**
 * Reads `<runDir>/config.yaml`; null when the run has none. A file that is
 * there but unusable throws `ConfigExpectError` naming file and key.
 */
export async function readConfigExpect(
  runDir: string,
): Promise<RunExpect | null> {
  const file = `${runDir.replace(/\/$/, "")}/${RESOLVED_CONFIG_FILE}`;
  try {
    await Deno.stat(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new ConfigExpectError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    // The run's checkpoint may be gone; its config still says what it ran.
    return expectFromConfig(await loadConfig(file, [], { checkPaths: false }));
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigExpectError(e.message);
    throw new ConfigExpectError(`cannot read ${file}: ${(e as Error).message}`);
  }
}
