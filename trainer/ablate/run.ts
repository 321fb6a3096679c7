/**
 * `deno task ablate`: from ONE Stage-1 checkpoint and at ONE optimizer-step
 * budget, train every arm (continued SFT, A-only with 1 and 2 soft-context
 * passes, B-only, mixed A/A/B) with each seed, evaluate all on the same
 * held-out images, and write one markdown table into the ablation folder.
 *
 * Every arm is an ordinary training run (`<out>/<arm>-s<seed>/`) built from
 * `configs/ablate/stage2_base.yaml` plus the arm's and the budget's
 * overrides. They all name the same Stage-1 config as warm start, which the
 * loop trains once into `<out>/warm_start/` and reuses by config hash. The
 * validation split is a function of `data.synth` alone (seed and n_val),
 * which no arm changes, so every `eval_summary.json` is measured on the
 * same images.
 *
 * Resumable: a finished arm is skipped (its run folder says so), an
 * interrupted one resumes from its latest checkpoint, so killing and
 * re-running the command continues with the runs not yet done.
 */
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import { loadConfigDetailed } from "../config/mod.ts";
import { EVAL_SUMMARY_FILE } from "../eval/mod.ts";
import { METRICS_FILE } from "../loop/metrics.ts";
import { RUN_COMPLETE_FILE, train } from "../loop/train.ts";
import { evaluateCheckpoint } from "../loop/eval_checkpoint.ts";
import type { Stage2Config } from "../config/schema.ts";
import { ablationMarkdown, type RunRow } from "./table.ts";

export const ABLATION_BASE_CONFIG = new URL(
  "../../configs/ablate/stage2_base.yaml",
  import.meta.url,
);

/** One arm: a name (its run folder prefix), a label and its config overrides. */
export interface Arm {
  name: string;
  label: string;
  overrides: string[];
}

const PATTERN = "custom.extra.stage2_ab.schedule.pattern";
const NSOFT = "custom.extra.stage2_ab.n_softctx_iter";

export const ARMS: readonly Arm[] = [
  {
    name: "sft",
    label: "Stage-1 SFT continued",
    overrides: ["custom.trainer_variant=sft"],
  },
  {
    name: "a1",
    label: "A only, n_softctx_iter 1",
    overrides: [`${PATTERN}=[A]`, `${NSOFT}=1`],
  },
  {
    name: "a2",
    label: "A only, n_softctx_iter 2",
    overrides: [`${PATTERN}=[A]`, `${NSOFT}=2`],
  },
  { name: "b", label: "B only", overrides: [`${PATTERN}=[B]`, `${NSOFT}=2`] },
  {
    name: "ab",
    label: "mixed A, A, B",
    overrides: [`${PATTERN}=[A, A, B]`, `${NSOFT}=2`],
  },
];

export type Budget = "small" | "full";

/**
 * Optimizer steps per run. small: ~25 min for all 10 runs on two cores with
 * OpenBLAS (the B-only arms cost the most); full: four times that.
 */
export const BUDGET_STEPS: Record<Budget, number> = { small: 300, full: 1200 };

export const SEEDS = [1, 2] as const;

export interface AblationOptions {
  budget: Budget;
  /** The ablation folder (arms, warm start, table). */
  outDir: string;
  /** Base config (default: configs/ablate/stage2_base.yaml). */
  baseConfig?: string;
  /** Extra `key=value` overrides applied to every arm (after the arm's). */
  overrides?: string[];
  /**
   * A finished Stage-1 checkpoint folder to start every arm from, instead of
   * training the base config's `model.warm_start_config` into
   * `<outDir>/warm_start/` (e.g. the quickstart's Stage 1).
   */
  stage1Checkpoint?: string;
  /** Arm names to run (default: all). */
  arms?: string[];
  seeds?: readonly number[];
  log?: (s: string) => void;
}

export interface AblationResult {
  rows: RunRow[];
  markdown: string;
  tablePath: string;
}

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return null;
  }
}

/** Training wall time of a run: the last `elapsed_s` in its metrics.jsonl. */
export async function runWallSeconds(runDir: string): Promise<number | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(runDir, METRICS_FILE));
  } catch {
    return null;
  }
  let last: number | null = null;
  for (const l of text.split("\n")) {
    try {
      const e = JSON.parse(l)?.timing?.elapsed_s;
      if (typeof e === "number") last = e;
    } catch {
      // blank or torn line
    }
  }
  return last;
}

/** Reads a finished arm run: its eval summary plus wall time, or null. */
export async function readRunRow(
  runDir: string,
  arm: string,
  seed: number,
): Promise<RunRow | null> {
  if (!await readJson(join(runDir, RUN_COMPLETE_FILE))) return null;
  const summary = await readJson(join(runDir, EVAL_SUMMARY_FILE));
  if (!summary) return null;
  return {
    arm,
    seed,
    metrics: { ...summary, wall_s: await runWallSeconds(runDir) },
  };
}

/** The arms and their order in the table, Stage 1 first. */
function armOrder(arms: readonly Arm[]) {
  return [{ name: "stage1", label: "Stage 1 (start point)" }, ...arms];
}

/**
 * Runs (or resumes) the ablation and writes `ablation.md` + `ablation.json`.
 *
 * @example
 * const { markdown } = await runAblation({ budget: "small",
 *   outDir: "runs/ablate-small", stage1Checkpoint: "runs/s1/checkpoint-2000" });
 * console.log(markdown);
 */
export async function runAblation(o: AblationOptions): Promise<AblationResult> {
  const log = o.log ?? ((s: string) => console.error(s));
  const out = resolve(o.outDir);
  const base = o.baseConfig ??
    decodeURIComponent(ABLATION_BASE_CONFIG.pathname);
  const steps = BUDGET_STEPS[o.budget];
  const unknown = (o.arms ?? []).filter((a) => !ARMS.some((x) => x.name === a));
  if (unknown.length) {
    throw new Error(
      `unknown arm(s) ${unknown.join(", ")}; arms are ${
        ARMS.map((a) => a.name).join(", ")
      }`,
    );
  }
  const arms = ARMS.filter((a) => !o.arms || o.arms.includes(a.name));
  const seeds = o.seeds ?? SEEDS;
  await Deno.mkdir(out, { recursive: true });

  const rows: RunRow[] = [];
  // the shared start point, and how the arms are evaluated (from any arm's
  // resolved config: they share the data and eval blocks)
  let start: string | null = o.stage1Checkpoint
    ? resolve(o.stage1Checkpoint)
    : null;
  let evalSetup: StartEval | null = null;
  for (const arm of arms) {
    for (const seed of seeds) {
      const runDir = join(out, `${arm.name}-s${seed}`);
      const loaded = await loadConfigDetailed(base, [
        ...arm.overrides,
        `training.max_steps=${steps}`,
        `training.seed=${seed}`,
        ...(o.overrides ?? []),
        ...(o.stage1Checkpoint
          ? [`model.checkpoint=${o.stage1Checkpoint}`]
          : []),
        `training.output_dir=${runDir}`,
      ]);
      evalSetup ??= startEvalSetup(loaded.config, runDir);
      const done = await readRunRow(runDir, arm.name, seed);
      if (done) {
        log(`ablate: ${arm.name} seed ${seed} already done (${runDir})`);
        rows.push(done);
        continue;
      }
      log(`ablate: ${arm.label}, seed ${seed} -> ${runDir}`);
      const r = await train({
        config: loaded.config,
        resume: "auto",
        progressTty: false,
        log,
      });
      start ??= r.warmStart?.checkpoint ?? null;
      const row = await readRunRow(runDir, arm.name, seed);
      if (!row) {
        throw new Error(
          `${runDir}: the run finished without an eval_summary.json (is there validation data?)`,
        );
      }
      rows.push(row);
    }
  }
  start ??= await finishedWarmStart(join(out, "warm_start"));
  const stage1 = start && evalSetup
    ? await evaluateStart(start, join(out, "stage1"), evalSetup, log)
    : null;
  const all = stage1 ? [stage1, ...rows] : rows;
  const markdown =
    `# Stage-2 ablation (${o.budget} budget: ${steps} optimizer steps per run, seeds ${
      seeds.join(", ")
    })\n\nAll runs start from the same Stage-1 checkpoint and are evaluated on the same ${
      String(all[0]?.metrics.samples ?? "?")
    } held-out validation images (greedy rollouts). Cells: mean ± half the range over seeds.\n\n${
      ablationMarkdown(all, armOrder(arms))
    }`;
  const tablePath = join(out, "ablation.md");
  await writeFileAtomic(tablePath, markdown);
  await writeFileAtomic(
    join(out, "ablation.json"),
    JSON.stringify(
      { budget: o.budget, steps, rows: all },
      null,
      2,
    ) +
      "\n",
  );
  return { rows: all, markdown, tablePath };
}

/** How every arm is evaluated at its end, so the start point is measured alike. */
interface StartEval {
  valJsonl: string;
  maxSamples: number | null;
  maxNewTokens: number;
  batchSize: number;
}

function startEvalSetup(cfg: Stage2Config, runDir: string): StartEval {
  return {
    // the synthetic split is written into each run folder, the same for all
    valJsonl: cfg.data.val_jsonl ?? join(runDir, "data", "val.jsonl"),
    maxSamples: cfg.training.eval_max_samples,
    maxNewTokens: cfg.custom.extra.rollout_matching.max_new_tokens,
    // the loop's end-of-run eval batch (trainer/loop/step.ts)
    batchSize: Math.max(1, cfg.training.micro_batch_size * 4),
  };
}

/** The final checkpoint of the one finished run under `dir`, if any. */
async function finishedWarmStart(dir: string): Promise<string | null> {
  try {
    for await (const e of Deno.readDir(dir)) {
      const done = await readJson(join(dir, e.name, RUN_COMPLETE_FILE));
      if (e.isDirectory && typeof done?.checkpoint === "string") {
        return join(dir, e.name, done.checkpoint);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return null;
}

/**
 * The Stage-1 row: the start checkpoint evaluated on the arms' held-out
 * images with the arms' eval settings (its own run may have used another
 * validation set). Reused when `dir` already holds this checkpoint's result.
 */
async function evaluateStart(
  checkpoint: string,
  dir: string,
  e: StartEval,
  log: (s: string) => void,
): Promise<RunRow> {
  const path = join(dir, EVAL_SUMMARY_FILE);
  let summary = await readJson(path);
  if (summary?.checkpoint !== checkpoint || summary?.data !== e.valJsonl) {
    log(`ablate: evaluating the start point ${checkpoint}`);
    summary = (await evaluateCheckpoint({
      checkpoint,
      data: e.valJsonl,
      out: dir,
      ...e,
      log,
    })).summary as unknown as Record<string, unknown>;
  }
  return { arm: "stage1", seed: 0, metrics: { ...summary, wall_s: null } };
}
