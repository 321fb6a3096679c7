/**
 * The end of a run that was not stopped early: the final checkpoint (when
 * the last step did not write one), the final evaluation (reusing a periodic
 * one of the same step), its rollout summary and samples
 * (`eval_summary.json`, `eval_samples.jsonl`, `overlays/`) and the
 * completion marker `run_complete.json`.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import {
  type EvalSummary,
  formatSummary,
  writeEvalOutputs,
} from "../eval/mod.ts";
import { formatDuration } from "./progress.ts";
import { RUN_COMPLETE_FILE } from "./run_dir.ts";
import type { RunComplete, Session } from "./session.ts";
import { evaluate, saveCheckpoint } from "./step.ts";

/** Final evaluation and completion marker; logs how the run ended. */
export async function finishRun(
  s: Session,
  opts: { stopped: boolean },
): Promise<{
  evalLossEnd: number | null;
  summary: EvalSummary | null;
  wallSeconds: number;
}> {
  let summary: EvalSummary | null = null;
  let evalLossEnd: number | null = null;
  const T = s.T;
  if (!opts.stopped) {
    if (
      s.checkpoint === null ||
      !s.checkpoint.endsWith(`checkpoint-${s.globalStep}`)
    ) {
      await saveCheckpoint(s);
    }
    evalLossEnd = T.eval_steps > 0 && s.globalStep % T.eval_steps === 0 &&
        s.lastEval !== null
      ? s.lastEval
      : await evaluate(s);
    const final = s.lastRollouts?.step === s.globalStep
      ? s.lastRollouts.result
      : null;
    if (final) {
      summary = final.summary;
      await writeEvalOutputs(s.runDir, final);
      s.log(formatSummary(summary, s.variant.name));
    }
    s.rec.end(s.globalStep);
    await writeFileAtomic(
      join(s.runDir, RUN_COMPLETE_FILE),
      JSON.stringify(
        {
          global_step: s.globalStep,
          config_hash: s.hash,
          checkpoint: `checkpoint-${s.globalStep}`,
        } satisfies RunComplete,
        null,
        2,
      ) + "\n",
    );
  }
  const wallSeconds = (performance.now() - s.tStart) / 1000;
  s.log(
    `${opts.stopped ? "stopped" : "finished"} at step ${s.globalStep} in ${
      formatDuration(wallSeconds)
    }; run folder: ${s.runDir}`,
  );
  return { evalLossEnd, summary, wallSeconds };
}
