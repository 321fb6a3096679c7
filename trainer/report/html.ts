/**
 * The run report as one self-contained HTML page: every picture is an
 * `<img>` with a data: URI (SVG curves, PNG overlays), there is no script
 * and no external reference, so it opens from disk with no network.
 */
import { Buffer } from "node:buffer";
import type { EvalSummary } from "../eval/summary.ts";
import type { EvalSampleRecord } from "../eval/record.ts";
import { OVERLAY_COLOURS } from "../eval/overlay.ts";
import { CHANNEL_COLOURS } from "./charts.ts";
import { at, type RunData, type TrainRolloutTotals } from "./run_data.ts";

/** A rendered overlay (or why it could not be drawn). */
export interface OverlayPicture {
  record: EvalSampleRecord;
  png: Uint8Array | null;
  error?: string;
}

export interface ReportParts {
  data: RunData;
  /** SVG documents, in display order, with a caption each. */
  charts: { svg: string; caption: string }[];
  channelStrip: string | null;
  trainRollouts: TrainRolloutTotals | null;
  overlays: OverlayPicture[];
  /** How many sample rows the per-sample table shows. */
  sampleRows: number;
}

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[
        c
      ]!,
  );

const pct = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "n/a"
    : `${(100 * v).toFixed(1)}%`;

const num = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "n/a"
    : v.toFixed(digits);

function dataUri(mime: string, bytes: Uint8Array | string): string {
  const b = typeof bytes === "string"
    ? Buffer.from(bytes, "utf8")
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return `data:${mime};base64,${b.toString("base64")}`;
}

function table(head: string[], rows: string[][], cls = ""): string {
  return `<table${cls ? ` class="${cls}"` : ""}><thead><tr>${
    head.map((h) => `<th>${esc(h)}</th>`).join("")
  }</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`)
      .join("")
  }</tbody></table>`;
}

const CONFIG_KEYS: [string, string[]][] = [
  ["trainer variant", ["custom", "trainer_variant"]],
  ["model preset", ["model", "preset"]],
  ["model checkpoint", ["model", "checkpoint"]],
  ["warm start config", ["model", "warm_start_config"]],
  ["train JSONL", ["data", "train_jsonl"]],
  ["val JSONL", ["data", "val_jsonl"]],
  ["synthetic data", ["data", "synth"]],
  ["max steps", ["training", "max_steps"]],
  ["micro-batch size", ["training", "micro_batch_size"]],
  ["gradient accumulation", ["training", "gradient_accumulation_steps"]],
  ["learning rate", ["training", "learning_rate"]],
  ["lr schedule", ["training", "lr_scheduler"]],
  ["warmup steps", ["training", "warmup_steps"]],
  ["seed", ["training", "seed"]],
  ["eval every", ["training", "eval_steps"]],
  ["eval samples", ["training", "eval_max_samples"]],
  ["packing", ["training", "packing"]],
  ["channel pattern", ["custom", "extra", "stage2_ab", "schedule", "pattern"]],
  ["n_softctx_iter", ["custom", "extra", "stage2_ab", "n_softctx_iter"]],
  ["desc_ce_weight", ["custom", "extra", "stage2_ab", "desc_ce_weight"]],
  ["bbox_l1_weight", ["custom", "extra", "stage2_ab", "bbox_l1_weight"]],
  ["bbox_giou_weight", ["custom", "extra", "stage2_ab", "bbox_giou_weight"]],
  ["rollout decoding", ["custom", "extra", "rollout_matching", "decode_mode"]],
  ["rollout max_new_tokens", [
    "custom",
    "extra",
    "rollout_matching",
    "max_new_tokens",
  ]],
  ["matching IoU gate", [
    "custom",
    "extra",
    "rollout_matching",
    "maskiou_gate",
  ]],
  ["candidate_top_k", [
    "custom",
    "extra",
    "rollout_matching",
    "candidate_top_k",
  ]],
  ["rollout buffer", ["custom", "extra", "rollout_matching", "rollout_buffer"]],
];

function configSection(d: RunData): string {
  if (d.config === null) {
    return `<p class="note">No readable config.yaml in the run folder.</p>`;
  }
  const variant = at(d.config, "custom", "trainer_variant");
  // Stage-2 knobs are resolved defaults in a Stage-1 config: not shown there.
  const isStage2Knob = (p: string[]) => p[0] === "custom" && p[1] === "extra";
  const rows = CONFIG_KEYS
    .filter(([, p]) => variant === "stage2_ab_training" || !isStage2Knob(p))
    .map(([name, p]) => [name, at(d.config, ...p)] as const)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([name, v]) => [
      esc(name),
      `<code>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</code>`,
    ]);
  return table(["setting", "value"], rows, "kv") +
    `<details><summary>resolved config.yaml</summary><pre>${
      esc(d.configText ?? "")
    }</pre></details>`;
}

function summaryCards(s: EvalSummary | null): string {
  if (s === null) {
    return `<p class="note">No evaluation summary (eval_summary.json) in this run.</p>`;
  }
  const card = (label: string, value: string, hint = "") =>
    `<div class="card"><div class="v">${esc(value)}</div><div class="l">${
      esc(label)
    }</div>${hint ? `<div class="h">${esc(hint)}</div>` : ""}</div>`;
  return `<div class="cards">${
    [
      card("parse rate", pct(s.parse_rate), `invalid ${pct(s.invalid_rate)}`),
      card(
        `F1 @ IoU ${s.iou_threshold}`,
        pct(s.f1),
        `P ${pct(s.precision)} / R ${pct(s.recall)}`,
      ),
      card("AP (0.50:0.95)", pct(s.ap), `AP50 ${pct(s.ap50)}`),
      card("mean IoU of matches", num(s.mean_iou)),
      card(
        "GT matched",
        `${s.true_positives}/${s.ground_truth}`,
        `${s.predictions} predicted`,
      ),
      card(
        "rollout speed",
        s.rollout ? `${s.rollout.tokens_per_s.toFixed(0)} tok/s` : "n/a",
        s.rollout ? `batch ${s.rollout.batch_size}, KV cache, greedy` : "",
      ),
    ].join("")
  }</div><p class="note">Evaluated at step ${s.global_step} on ${s.samples} images${
    s.eval_loss === null || s.eval_loss === undefined
      ? ""
      : `; eval loss ${num(s.eval_loss, 4)}`
  }. A true positive needs the same desc and IoU &ge; ${s.iou_threshold}. AP: ${
    esc(s.ap_convention ?? "n/a")
  }. Box score: ${esc(s.box_score ?? "n/a")}.</p>`;
}

function channelSection(p: ReportParts): string {
  const c = p.data.channels;
  if (c.length === 0) {
    return `<p class="note">No per-step channel information (no trace step records and no Stage-2 schedule in the config).</p>`;
  }
  const count = (f: (x: (typeof c)[number]) => boolean) => c.filter(f).length;
  const rows = [
    ["A (soft self-context on GT)", count((x) => x.channel === "A")],
    ["B, fresh rollouts", count((x) => x.channel === "B" && x.fresh)],
    ["B, buffer reuse", count((x) => x.channel === "B" && x.reuse)],
    ["sft (Stage 1)", count((x) => x.channel === "sft")],
  ].filter(([, n]) => (n as number) > 0).map(([k, n]) => [
    esc(k),
    `${n} (${pct((n as number) / c.length)})`,
  ]);
  return (p.channelStrip
    ? `<img class="chart" alt="channel per step" src="${
      dataUri("image/svg+xml", p.channelStrip)
    }">`
    : "") +
    table(["channel", "steps"], rows, "kv") +
    `<p class="note">Source: ${
      p.data.channelSource === "trace"
        ? "the step records of trace.jsonl"
        : "the schedule in config.yaml (no trace step records)"
    }.</p>`;
}

function rolloutSection(p: ReportParts): string {
  const parts: string[] = [];
  const t = p.trainRollouts;
  if (t) {
    parts.push(
      `<h3>Training rollouts (Channel B)</h3>` +
        table(["", "total over the run"], [
          ["Channel-B steps", String(t.bSteps)],
          ["rollouts", t.rollouts === null ? "n/a" : String(t.rollouts)],
          [
            "invalid rollouts (no top-level {)",
            `${fmtCount(t.invalid)}${
              t.rollouts ? ` (${pct(t.invalid / t.rollouts)})` : ""
            }`,
          ],
          [
            "dropped predictions: poly / unknown / bbox_invalid",
            `${fmtCount(t.drops.poly)} / ${fmtCount(t.drops.unknown)} / ${
              fmtCount(t.drops.bbox_invalid)
            }`,
          ],
          [
            "matched / false positive / false negative (FN-appended)",
            `${fmtCount(t.matched)} / ${fmtCount(t.fp)} / ${fmtCount(t.fn)}`,
          ],
          [
            "gate rejections (top-k candidates under the IoU gate)",
            fmtCount(t.gateRejections),
          ],
        ], "kv") +
        `<p class="note">Totals are rebuilt from metrics.jsonl: each train line holds, per counter, the mean over the Channel-B steps of its logging window.</p>`,
    );
  }
  const s = p.data.summary;
  if (s) {
    parts.push(
      `<h3>Evaluation rollouts</h3>` +
        table(["", "at the final evaluation"], [
          ["images", String(s.samples)],
          ["parsed (one closed JSON object)", pct(s.parse_rate)],
          ["invalid (no top-level {)", pct(s.invalid_rate)],
          ["cut by max_new_tokens", pct(s.truncated_rate)],
          [
            "dropped predictions: poly / unknown / bbox_invalid",
            s.drops
              ? `${s.drops.poly} / ${s.drops.unknown} / ${s.drops.bbox_invalid}`
              : "n/a",
          ],
          [
            "class-agnostic F1 (any desc) / desc accuracy of those matches",
            s.class_agnostic
              ? `${pct(s.class_agnostic.f1)} / ${
                pct(s.class_agnostic.desc_accuracy)
              }`
              : "n/a",
          ],
          [
            "generated tokens / seconds",
            s.rollout
              ? `${s.rollout.generated_tokens} / ${
                s.rollout.seconds.toFixed(1)
              }`
              : "n/a",
          ],
        ], "kv"),
    );
  }
  const rows = p.data.samples.slice(0, p.sampleRows).map((r) => {
    const fp = r.preds.length - r.matches.length;
    const fn = r.gts.length - r.matches.length;
    return [
      esc(r.index),
      `<code>${esc(r.source.split("/").at(-1))}</code>`,
      r.parsed ? "yes" : r.invalid ? "invalid" : esc(r.stop),
      esc(r.gts.length),
      esc(r.preds.length),
      esc(r.matches.length),
      esc(fp),
      esc(fn),
      r.truncated ? "yes" : "",
    ];
  });
  if (rows.length) {
    parts.push(
      `<h3>Per image (matched / FP / FN at IoU 0.5)</h3>` +
        table(
          ["#", "record", "parsed", "GT", "pred", "matched", "FP", "FN", "cut"],
          rows,
          "num",
        ) +
        (p.data.samples.length > rows.length
          ? `<p class="note">${
            p.data.samples.length - rows.length
          } more images in eval_samples.jsonl.</p>`
          : ""),
    );
  }
  return parts.join("") ||
    `<p class="note">No rollout statistics in this run.</p>`;
}

function fmtCount(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function evalTable(s: EvalSummary | null): string {
  if (!s?.per_desc?.length) {
    return `<p class="note">No per-desc results.</p>`;
  }
  return table(
    [
      "desc",
      "GT",
      "pred",
      "TP",
      "precision",
      "recall",
      "F1",
      "mean IoU",
      "AP",
      "AP50",
    ],
    s.per_desc.map((r) => [
      esc(r.desc),
      esc(r.ground_truth),
      esc(r.predictions),
      esc(r.true_positives),
      pct(r.precision),
      pct(r.recall),
      pct(r.f1),
      num(r.mean_iou),
      pct(r.ap),
      pct(r.ap50),
    ]),
    "num",
  ) + (s.ap_by_iou
    ? `<p class="note">AP by IoU threshold: ${
      Object.entries(s.ap_by_iou).map(([t, v]) =>
        `${t}: ${pct(v)}`
      ).join(
        ", ",
      )
    }.</p>`
    : "");
}

function overlaySection(p: ReportParts): string {
  if (p.overlays.length === 0) {
    return `<p class="note">No evaluated images to draw.</p>`;
  }
  const legend = `<p class="legend">${
    [
      ["matched prediction (thin: its ground truth)", OVERLAY_COLOURS.matched],
      ["false positive", OVERLAY_COLOURS.falsePositive],
      ["missed ground truth", OVERLAY_COLOURS.missed],
    ].map(([t, c]) => `<span><i style="background:${c}"></i>${esc(t)}</span>`)
      .join("")
  }</p>`;
  return legend +
    `<div class="overlays">${
      p.overlays.map((o) =>
        `<figure>${
          o.png
            ? `<img class="overlay" alt="overlay of record ${o.record.index}" src="${
              dataUri("image/png", o.png)
            }">`
            : `<div class="note">cannot draw: ${esc(o.error ?? "")}</div>`
        }<figcaption><code>${
          esc(o.record.source.split("/").at(-1))
        }</code></figcaption></figure>`
      ).join("")
    }</div>`;
}

function auditSection(d: RunData): string {
  if (d.audit === null) {
    return d.hasTrace
      ? `<p class="note">The trace was not audited for this page: <code>stage2 report --run</code> and <code>stage2 train</code> embed the verdict; <code>stage2 audit --run ${
        esc(d.runDir)
      }</code> prints it.</p>`
      : `<p class="note">No trace.jsonl in the run folder (training.trace: off): nothing to audit.</p>`;
  }
  if ("error" in d.audit) {
    return `<p class="verdict bad">The audit could not run: ${
      esc(d.audit.error)
    }</p>`;
  }
  const r = d.audit.report;
  const failed = [
    ...new Set(r.violations.map((v) => v.invariant)),
  ].join(", ");
  const verdict = {
    PASS: { css: "ok", text: "PASS: every invariant holds" },
    INCOMPLETE: {
      css: "warn",
      text:
        `INCOMPLETE: the run or its trace is not complete (${failed}); nothing else failed`,
    },
    FAIL: { css: "bad", text: `FAIL: ${r.violations.length} violation(s)` },
  }[r.verdict];
  return `<p class="verdict ${verdict.css}">${
    esc(verdict.text)
  } (${r.records.forwards} forwards, ${r.records.steps} steps, ${r.records.resumes} resumes; trace level ${
    esc(r.level)
  })</p>` +
    table(
      ["invariant", "checked", "violations"],
      r.invariants.map((i) => [
        `${esc(i.name)}<div class="h">${esc(i.description)}</div>`,
        esc(i.checked),
        i.violations ? `<b class="bad">${i.violations}</b>` : "0",
      ]),
      "num",
    ) +
    (r.violations.length
      ? `<details open><summary>violations</summary><pre>${
        esc(
          r.violations.slice(0, 50).map((v) => JSON.stringify(v)).join("\n"),
        )
      }</pre></details>`
      : "");
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#111827;background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta,.note{color:#4b5563;font-size:13px}nav a{margin-right:12px;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:10px 14px;min-width:140px}
.card .v{font-size:22px;font-weight:600}.card .l{font-size:12px;color:#374151}.h{font-size:11px;color:#6b7280}
table{border-collapse:collapse;background:#fff;font-size:13px;margin:6px 0}th,td{border:1px solid #e5e7eb;padding:3px 8px;text-align:left;vertical-align:top}
table.num td:not(:first-child){text-align:right}th{background:#f3f4f6}
img.chart{display:block;max-width:100%;margin:8px 0;border:1px solid #e5e7eb;background:#fff}
.overlays{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}img.overlay{display:block;image-rendering:pixelated;border:1px solid #d1d5db}figcaption{font-size:12px;color:#4b5563}
.legend span{margin-right:16px;font-size:13px}.legend i{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px}
.verdict{font-weight:600;padding:6px 10px;border-radius:4px;display:inline-block}.verdict.ok{background:#dcfce7;color:#166534}.verdict.bad,.bad{background:#fee2e2;color:#991b1b}.verdict.warn{background:#fef3c7;color:#92400e}
pre{background:#fff;border:1px solid #e5e7eb;padding:8px;font-size:12px;overflow:auto;max-height:420px}
`;

/** The whole page. */
export function reportHtml(p: ReportParts): string {
  const d = p.data;
  const variant = at(d.config, "custom", "trainer_variant") ?? "unknown";
  const lastStep = Math.max(0, ...d.metrics.map((m) => m.step));
  const status = d.completedSteps !== null
    ? `finished after ${d.completedSteps} steps`
    : `not finished (last metrics at step ${lastStep})`;
  const sections: [string, string, string][] = [
    ["summary", "Evaluation summary", summaryCards(d.summary)],
    ["config", "Config", configSection(d)],
    [
      "curves",
      "Curves",
      p.charts.length
        ? p.charts.map((c) =>
          `<img class="chart" alt="${esc(c.caption)}" src="${
            dataUri("image/svg+xml", c.svg)
          }">`
        ).join("")
        : `<p class="note">metrics.jsonl has no curves yet.</p>`,
    ],
    ["channels", "Channel mix", channelSection(p)],
    ["rollouts", "Rollout statistics", rolloutSection(p)],
    ["eval", "Per-desc evaluation", evalTable(d.summary)],
    ["overlays", "Ground truth vs predictions", overlaySection(p)],
    ["audit", "Trace audit", auditSection(d)],
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>stage2 run report: ${esc(d.runDir)}</title>
<style>${STYLE}</style></head>
<body><main>
<h1>stage2 run report</h1>
<p class="meta"><code>${esc(d.runDir)}</code> &middot; ${
    esc(variant)
  } &middot; ${esc(status)} &middot; written by <code>stage2 report</code></p>
<nav>${
    sections.map(([id, t]) => `<a href="#${id}">${esc(t)}</a>`).join("")
  }</nav>
${
    sections.map(([id, t, body]) =>
      `<section id="${id}"><h2>${esc(t)}</h2>${body}</section>`
    ).join("\n")
  }
<p class="meta" style="margin-top:32px">Channel colours: <span style="color:${CHANNEL_COLOURS.A}">A</span>, <span style="color:${CHANNEL_COLOURS.B}">B</span>. Every picture is embedded in this file.</p>
</main></body></html>
`;
}
