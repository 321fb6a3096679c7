/**
 * Expectations from a run folder's resolved `config.yaml`, for traces whose
 * header carries none: the audit then still holds the steps to the schedule
 * pattern, `n_softctx_iter`, the accumulation window, the training seed and
 * the rollout buffer the run was configured with.
 */
import { parse } from "yaml";
import type { RunExpect } from "../../trainer/trace/schema.ts";

/** Thrown when config.yaml exists but cannot be used; names the key. */
export class ConfigExpectError extends Error {}

function at(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Builds expectations from a parsed resolved config (see trainer/config). */
export function expectFromConfig(
  cfg: unknown,
  file = "config.yaml",
): RunExpect {
  const need = <T>(path: string[], ok: (v: unknown) => v is T): T => {
    const v = at(cfg, path);
    if (!ok(v)) {
      throw new ConfigExpectError(
        `${file}: ${path.join(".")} is ${
          JSON.stringify(v)
        }; expected a resolved config`,
      );
    }
    return v;
  };
  const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
  const isPos = (v: unknown): v is number => isInt(v) && v >= 1;
  const variant = need(
    ["custom", "trainer_variant"],
    (v): v is string => typeof v === "string",
  );
  const stage2 = variant === "stage2_ab_training";
  const pattern = stage2
    ? need(
      ["custom", "extra", "stage2_ab", "schedule", "pattern"],
      (v): v is ("A" | "B")[] =>
        Array.isArray(v) && v.length > 0 &&
        v.every((x) => x === "A" || x === "B"),
    )
    : null;
  const buffer = at(cfg, [
    "custom",
    "extra",
    "rollout_matching",
    "rollout_buffer",
  ]);
  return {
    pattern,
    nSoftctxIter: stage2
      ? need(["custom", "extra", "stage2_ab", "n_softctx_iter"], isPos)
      : null,
    gradientAccumulationSteps: need(
      ["training", "gradient_accumulation_steps"],
      isPos,
    ),
    trainingSeed: need(["training", "seed"], isInt),
    ...(stage2 && buffer !== undefined
      ? {
        rolloutBuffer: {
          enabled: need(
            [
              "custom",
              "extra",
              "rollout_matching",
              "rollout_buffer",
              "enabled",
            ],
            (v): v is boolean => typeof v === "boolean",
          ),
          mSteps: need(
            [
              "custom",
              "extra",
              "rollout_matching",
              "rollout_buffer",
              "m_steps",
            ],
            isPos,
          ),
        },
      }
      : {}),
  };
}

/**
 * Reads `<runDir>/config.yaml`; null when the run has none. A file that is
 * there but unusable throws `ConfigExpectError` naming file and key.
 */
export async function readConfigExpect(
  runDir: string,
): Promise<RunExpect | null> {
  const file = `${runDir.replace(/\/$/, "")}/config.yaml`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new ConfigExpectError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let cfg: unknown;
  try {
    cfg = parse(text);
  } catch (e) {
    throw new ConfigExpectError(
      `${file}: not valid YAML (${(e as Error).message.split("\n")[0]})`,
    );
  }
  return expectFromConfig(cfg, file);
}
