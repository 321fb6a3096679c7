/**
 * `stage2 report --run DIR`: one self-contained `report.html` in the run
 * folder with the config, curves, channel mix, rollout statistics, the
 * evaluation table, overlays and the trace audit's verdict. A layer above
 * the loop: it reads what a run left behind, and the caller (the CLI's
 * `report` and `train`) passes in the audit it ran.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import { DEFAULT_OVERLAYS, overlayOf } from "../eval/overlay.ts";
import { REPORT_FILE } from "../loop/run_dir.ts";
import { channelStrip, lineChart, pointsOf } from "./charts.ts";
import { type OverlayPicture, reportHtml } from "./html.ts";
import {
  type AuditOutcome,
  readRunData,
  type RunData,
  trainRolloutTotals,
} from "./run_data.ts";

export { REPORT_FILE };
export type { AuditOutcome, AuditVerdict } from "./run_data.ts";

export interface ReportOptions {
  /** Overlays to embed (first n evaluated images; default 8). */
  overlays?: number;
  /**
   * The audit of the run's `trace.jsonl` (e.g. `{ report: await
   * auditRun(dir) }`); without it the page says the trace was not audited.
   */
  audit?: AuditOutcome;
  log?: (line: string) => void;
}

function charts(d: RunData): { svg: string; caption: string }[] {
  const out: { svg: string; caption: string }[] = [];
  const m = d.metrics;
  const loss = [
    { name: "loss", points: pointsOf(m, "train", "loss") },
    { name: "CE", points: pointsOf(m, "train", "loss/ce") },
    { name: "bbox L1", points: pointsOf(m, "train", "loss/bbox_l1") },
    { name: "1 - GIoU", points: pointsOf(m, "train", "loss/bbox_giou") },
    {
      name: "eval loss",
      points: pointsOf(m, "eval", "eval_loss"),
      markers: true,
    },
  ];
  if (loss.some((s) => s.points.length)) {
    out.push({
      caption: "training loss terms and eval loss",
      svg: lineChart("Loss (train terms, eval CE)", loss, {
        channels: d.channels,
      }),
    });
  }
  const ev = [
    ["F1@0.5", "eval/f1"],
    ["F1 ignoring desc", "eval/f1_any_desc"],
    ["AP", "eval/ap"],
    ["AP50", "eval/ap50"],
    ["precision", "eval/precision"],
    ["recall", "eval/recall"],
    ["parse rate", "eval/parse_rate"],
  ].map(([name, k]) => ({
    name,
    points: pointsOf(m, "eval", k),
    markers: true,
  }));
  if (ev.some((s) => s.points.length)) {
    out.push({
      caption: "detection metrics on the validation split",
      svg: lineChart("Validation detection (greedy rollouts)", ev, {
        channels: d.channels,
        yMax: 1,
      }),
    });
  }
  const ro = [
    ["matched", "match/matched"],
    ["false positive", "match/fp"],
    ["false negative", "match/fn"],
    ["gate rejections", "match/gate_rejections"],
    ["invalid rollouts", "stage2/invalid_rollout"],
  ].map(([name, k]) => ({ name, points: pointsOf(m, "train", k) }));
  if (ro.some((s) => s.points.length)) {
    out.push({
      caption: "Channel-B rollout counters",
      svg: lineChart(
        "Channel-B rollouts (per B step, mean over the logging window)",
        ro,
        {
          channels: d.channels,
        },
      ),
    });
  }
  return out;
}

async function overlays(d: RunData, n: number): Promise<OverlayPicture[]> {
  const out: OverlayPicture[] = [];
  for (const record of d.samples.slice(0, n)) {
    try {
      out.push({ record, png: await overlayOf(record) });
    } catch (e) {
      out.push({ record, png: null, error: (e as Error).message });
    }
  }
  return out;
}

/** The report page of a run folder, as HTML text. */
export async function buildRunReport(
  runDir: string,
  o: ReportOptions = {},
): Promise<string> {
  const d = await readRunData(runDir, o.audit ?? null);
  const training = d.config?.training as Record<string, unknown> | undefined;
  const perStep = Number(training?.micro_batch_size) *
    Number(training?.gradient_accumulation_steps);
  return reportHtml({
    data: d,
    charts: charts(d),
    channelStrip: d.channels.length ? channelStrip(d.channels) : null,
    trainRollouts: trainRolloutTotals(
      d.metrics,
      d.channels,
      Number.isFinite(perStep) ? perStep : null,
    ),
    overlays: await overlays(d, o.overlays ?? DEFAULT_OVERLAYS),
    sampleRows: 100,
  });
}

/**
 * Writes `<runDir>/report.html` (atomically) and returns its path.
 *
 * @example
 * const path = await writeRunReport("runs/quickstart", {
 *   audit: { report: await auditRun("runs/quickstart") },
 * });
 */
export async function writeRunReport(
  runDir: string,
  o: ReportOptions = {},
): Promise<string> {
  const path = join(runDir, REPORT_FILE);
  await writeFileAtomic(path, await buildRunReport(runDir, o));
  o.log?.(`report: ${path}`);
  return path;
}
