/**
 * Test-only fault switch of the trainer, for `stage2 audit --selftest`.
 *
 * Each fault is a realistic bug, read with `faultActive(name)` at the one
 * place in the trainer where that bug would live (never in the trace
 * recorder or the audit), so the self-test can show that the audit catches
 * what the bug does to the tensors the model really consumed. Nothing
 * outside the self-test and its tests ever turns a fault on: there is no
 * config key or environment variable for it, only `withFault`.
 */

/** Every injectable fault, with the bug it plants. */
export const FAULTS = {
  "softctx-logits-at-p":
    "the soft embedding of coord slot p is built from the logits at p instead of p-1",
  "softctx-stale-base":
    "the last pass reuses pass 0's base embedding (built outside the gradient tape) instead of calling the embedding module again",
  "softctx-add":
    "soft rows are added to the coord rows instead of replacing them",
  "softctx-drop-object":
    "the first object's coord slots are left out of the soft-context slot list",
  "attention-ignores-segments":
    "the attention mask is built without the packed-segment ids (causal over the whole row)",
  "rollout-seed-mismatch":
    "generation gets seeds from a base computed for the next step, not the logged base",
  "skip-rollouts":
    "Channel B trains on empty responses without calling generation",
  "crash-after-first-forward":
    "the run dies right after its first training forward",
  "cache-on": "a training forward runs with useCache: true",
  "both-inputs": "a training forward receives inputIds and inputsEmbeds",
  "position-ids-3-rows": "packed rows get 3-row mRoPE position ids (no row 0)",
  "row0-no-restart":
    "row 0 of packed position ids keeps counting across packed samples",
  "early-passes-on-tape":
    "Channel-A passes 0..n-2 run inside the gradient tape",
  "sliced-logits":
    "a training forward asks for logits of the last T-1 positions",
  "schedule-off-by-one": "the channel of step s is pattern[(s + 1) % len]",
  "seed-formula-wrong": "the rollout seed base is training_seed + global_step",
  "n-softctx-off-by-one": "Channel A runs n_softctx_iter - 1 passes",
  "cache-positions-off-by-one":
    "a KV-cached decode step places its token one position too far",
} as const;

export type Fault = keyof typeof FAULTS;

let active: Fault | null = null;

/** True while `fault` is injected (always false outside `withFault`). */
export function faultActive(fault: Fault): boolean {
  return active === fault;
}

/** The fault injected right now, or null. */
export function activeFault(): Fault | null {
  return active;
}

/**
 * Runs `fn` with `fault` injected (null: none), restoring the previous
 * state when `fn` settles, also on error.
 *
 * @example
 * await withFault("softctx-add", () => train({ config }));
 */
export async function withFault<T>(
  fault: Fault | null,
  fn: () => Promise<T> | T,
): Promise<T> {
  if (fault !== null && !(fault in FAULTS)) {
    throw new Error(`unknown fault ${fault}`);
  }
  const saved = active;
  active = fault;
  try {
    return await fn();
  } finally {
    active = saved;
  }
}
