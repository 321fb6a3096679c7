/**
 * `eval_summary.json`: the split-level numbers computed from the per-image
 * records, their one-paragraph human form, and the files an evaluation
 * writes (`eval_summary.json`, `eval_samples.jsonl`, `overlays/*.png`).
 */
import { join } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import type { DropCounts } from "../rollout/parse.ts";
import {
  type DetectionCounts,
  type DetectionMetrics,
  detectionMetrics,
} from "./metrics.ts";
import {
  BOX_SCORE_RULE,
  EVAL_IOU,
  type EvalSampleRecord,
  type RolloutRun,
} from "./record.ts";

export const EVAL_SUMMARY_FILE = "eval_summary.json";
export const EVAL_SAMPLES_FILE = "eval_samples.jsonl";
export const OVERLAYS_DIR = "overlays";
/** Where `stage2 eval --checkpoint DIR` writes by default: `DIR/eval/`. */
export const CHECKPOINT_EVAL_DIR = "eval";

/** How `ap` / `ap50` are defined (written into every summary). */
export const AP_CONVENTION =
  "COCO 101-point interpolated AP (pycocotools COCOeval rules for boxes, maxDets 100 per image and desc): ap averages IoU 0.50:0.05:0.95, ap50 is IoU 0.50; categories are the distinct ground-truth desc strings (exact match), AP is averaged over the categories that have ground truth; predictions whose desc has no ground truth lower precision but not AP";

export interface EvalSummary extends DetectionMetrics {
  /** Completed optimizer updates of the evaluated weights. */
  global_step: number;
  samples: number;
  /** Rollouts that parsed as one complete, closed JSON object. */
  parse_rate: number;
  /** Rollouts with no top-level `{` at all. */
  invalid_rate: number;
  /** Rollouts cut by `max_new_tokens` before the end-of-turn token. */
  truncated_rate: number;
  /** Predicted objects dropped by the strict parser, by kind. */
  drops: DropCounts;
  ap_convention: string;
  box_score: string;
  max_new_tokens: number;
  rollout: {
    decoding: "greedy";
    kv_cache: true;
    batch_size: number;
    generated_tokens: number;
    seconds: number;
    tokens_per_s: number;
  };
  /** Teacher-forced validation loss of the same weights, when known. */
  eval_loss: number | null;
  /** What was evaluated, when known (`stage2 eval`). */
  checkpoint: string | null;
  data: string | null;
}

export interface SummaryMeta {
  globalStep: number;
  maxNewTokens: number;
  batchSize: number;
  evalLoss?: number | null;
  checkpoint?: string | null;
  data?: string | null;
}

/** The split's summary from its per-image records. */
export function summarize(run: RolloutRun, meta: SummaryMeta): EvalSummary {
  const r = run.records;
  const n = r.length;
  const frac = (f: (x: EvalSampleRecord) => boolean) =>
    n ? r.filter(f).length / n : 0;
  const drops: DropCounts = { poly: 0, unknown: 0, bbox_invalid: 0 };
  for (const x of r) {
    drops.poly += x.drops.poly;
    drops.unknown += x.drops.unknown;
    drops.bbox_invalid += x.drops.bbox_invalid;
  }
  const images = r.map((x) => ({
    gts: x.gts.map((g) => ({ desc: g.desc, bbox: g.bbox_2d })),
    preds: x.preds.map((p) => ({
      desc: p.desc,
      bbox: p.bbox_2d,
      score: p.score,
    })),
  }));
  const m = detectionMetrics(images, EVAL_IOU, r.map((x) => x.matches));
  return {
    global_step: meta.globalStep,
    samples: n,
    parse_rate: frac((x) => x.parsed),
    invalid_rate: frac((x) => x.invalid),
    truncated_rate: frac((x) => x.truncated),
    drops,
    ...m,
    ap_convention: AP_CONVENTION,
    box_score: BOX_SCORE_RULE,
    max_new_tokens: meta.maxNewTokens,
    rollout: {
      decoding: "greedy",
      kv_cache: true,
      batch_size: meta.batchSize,
      generated_tokens: run.generatedTokens,
      seconds: run.generateSeconds,
      tokens_per_s: run.generateSeconds > 0
        ? run.generatedTokens / run.generateSeconds
        : 0,
    },
    eval_loss: meta.evalLoss ?? null,
    checkpoint: meta.checkpoint ?? null,
    data: meta.data ?? null,
  };
}

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? "n/a" : `${(100 * v).toFixed(1)}%`;

/**
 * One-paragraph human summary. Tolerates summaries written before AP
 * existed (a reused warm-start run): missing numbers print as n/a.
 */
export function formatSummary(
  s: Partial<EvalSummary> & DetectionCounts & { global_step: number },
  label = "eval",
): string {
  const parts = [
    `parse ${pct(s.parse_rate)}${
      s.invalid_rate ? ` (${pct(s.invalid_rate)} invalid)` : ""
    }`,
    `P/R/F1@${s.iou_threshold ?? EVAL_IOU} ${pct(s.precision)}/${
      pct(s.recall)
    }/${pct(s.f1)}${
      s.class_agnostic ? ` (F1 ignoring desc ${pct(s.class_agnostic.f1)})` : ""
    }`,
    `AP ${pct(s.ap)}, AP50 ${
      pct(s.ap50)
    } (boxes scored by mean coord-token log-prob)`,
    `mean IoU ${
      s.mean_iou === null || s.mean_iou === undefined
        ? "n/a"
        : s.mean_iou.toFixed(3)
    }`,
    `${s.true_positives}/${s.ground_truth} GT matched, ${s.predictions} predicted`,
  ];
  if (s.rollout) parts.push(`${s.rollout.tokens_per_s.toFixed(0)} tok/s`);
  if (s.eval_loss !== null && s.eval_loss !== undefined) {
    parts.push(`eval loss ${s.eval_loss.toFixed(4)}`);
  }
  return `${label} @ step ${s.global_step} on ${s.samples} images: ${
    parts.join(", ")
  }`;
}

/** The per-desc table as aligned text (for `stage2 eval`). */
export function formatPerDesc(s: EvalSummary, limit = 20): string {
  const head = ["desc", "GT", "pred", "TP", "P", "R", "F1", "AP", "AP50"];
  const rows = s.per_desc.slice(0, limit).map((r) => [
    r.desc,
    String(r.ground_truth),
    String(r.predictions),
    String(r.true_positives),
    pct(r.precision),
    pct(r.recall),
    pct(r.f1),
    pct(r.ap),
    pct(r.ap50),
  ]);
  const w = head.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
  );
  const line = (r: string[]) =>
    r.map((c, i) => i === 0 ? c.padEnd(w[i]) : c.padStart(w[i])).join("  ");
  const more = s.per_desc.length > limit
    ? `\n(${s.per_desc.length - limit} more descs in eval_summary.json)`
    : "";
  return [line(head), ...rows.map(line)].join("\n") + more;
}

/** The one `metrics.jsonl` value set of an evaluation (F1/AP curves). */
export function summaryMetrics(s: EvalSummary): Record<string, number> {
  const out: Record<string, number> = {
    "eval/parse_rate": s.parse_rate,
    "eval/invalid_rate": s.invalid_rate,
    "eval/samples": s.samples,
  };
  const put = (k: string, v: number | null) => {
    if (v !== null) out[k] = v;
  };
  put("eval/precision", s.precision);
  put("eval/recall", s.recall);
  put("eval/f1", s.f1);
  put("eval/f1_any_desc", s.class_agnostic.f1);
  put("eval/mean_iou", s.mean_iou);
  put("eval/ap", s.ap);
  put("eval/ap50", s.ap50);
  return out;
}

/**
 * Writes `eval_summary.json` and `eval_samples.jsonl` into `dir`
 * (atomically); returns the summary's path.
 */
export async function writeEvalFiles(
  dir: string,
  summary: EvalSummary,
  records: readonly EvalSampleRecord[],
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(
    join(dir, EVAL_SAMPLES_FILE),
    records.map((r) => JSON.stringify(r) + "\n").join(""),
  );
  const path = join(dir, EVAL_SUMMARY_FILE);
  await writeFileAtomic(path, JSON.stringify(summary, null, 2) + "\n");
  return path;
}
