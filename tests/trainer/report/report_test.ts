import assert from "node:assert/strict";
import { join } from "node:path";
import {
  channelsFromConfig,
  parseMetrics,
  type StepChannel,
  trainRolloutTotals,
} from "../../../trainer/report/run_data.ts";
import { buildRunReport, writeRunReport } from "../../../trainer/report/mod.ts";
import { auditRun } from "../../../audit/trace/mod.ts";
import { buildCleanTrace } from "../../audit/trace/synthetic.ts";
import { makeRunFolder, STEPS } from "./fixture.ts";

Deno.test("metrics.jsonl parsing keeps numeric values and skips torn lines", () => {
  const m = parseMetrics(
    '{"step":3,"kind":"train","loss":1.5,"timing":{"elapsed_s":2}}\n{"step":4,"ki\n\n{"kind":"x"}\n',
  );
  assert.deepEqual(m, [{ step: 3, kind: "train", values: { loss: 1.5 } }]);
});

Deno.test("Channel-B totals: per-window means times the window's B steps", () => {
  // pattern B, A; logging every 4 steps. Line at 4 covers steps 0..3 (B at 0
  // and 2): means 2.5 matched, 1 invalid -> totals 5 and 2. Line at 8 covers
  // 4..7 (B at 4 and 6): mean 1 matched -> 2. Totals: 7 matched, 2 invalid.
  const channels: StepChannel[] = Array.from({ length: 8 }, (_, s) => ({
    step: s,
    channel: s % 2 === 0 ? "B" : "A",
    fresh: s % 2 === 0,
    reuse: false,
  }));
  const t = trainRolloutTotals(
    [
      {
        step: 4,
        kind: "train",
        values: { "match/matched": 2.5, "stage2/invalid_rollout": 1 },
      },
      { step: 4, kind: "eval", values: { "match/matched": 100 } },
      { step: 8, kind: "train", values: { "match/matched": 1 } },
    ],
    channels,
    3,
  );
  assert.deepEqual(t, {
    bSteps: 4,
    rollouts: 12,
    invalid: 2,
    drops: { poly: 0, unknown: 0, bbox_invalid: 0 },
    matched: 7,
    fp: 0,
    fn: 0,
    gateRejections: 0,
  });
  // a Stage-1 run has no Channel-B rollouts
  assert.equal(
    trainRolloutTotals([{ step: 2, kind: "train", values: { loss: 1 } }], [
      { step: 0, channel: "sft", fresh: false, reuse: false },
    ], 4),
    null,
  );
});

Deno.test("channels from the config follow the schedule, buffer reuse included", () => {
  const cfg = (buffer: unknown) => ({
    custom: {
      trainer_variant: "stage2_ab_training",
      extra: {
        stage2_ab: { schedule: { pattern: ["A", "B"] } },
        rollout_matching: { rollout_buffer: buffer },
      },
    },
  });
  assert.deepEqual(
    channelsFromConfig(cfg({ enabled: false, m_steps: 1 }), 4).map((c) =>
      c.channel
    ),
    ["A", "B", "A", "B"],
  );
  // m_steps 2: B at 1 is fresh, 2 replays it, 3 is fresh again
  const reuse = channelsFromConfig(cfg({ enabled: true, m_steps: 2 }), 4);
  assert.deepEqual(
    reuse.map((c) => `${c.channel}${c.fresh ? "f" : ""}${c.reuse ? "r" : ""}`),
    ["A", "Bf", "Br", "Bf"],
  );
  assert.deepEqual(
    channelsFromConfig({ custom: { trainer_variant: "sft" } }, 4),
    [],
  );
});

Deno.test("run report: self-contained page with config, curves, channel mix, rollout totals, eval table, overlays and a PASS audit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-report-" });
  try {
    const records = await makeRunFolder(dir);
    const path = await writeRunReport(dir, {
      audit: { report: await auditRun(dir) },
    });
    assert.equal(path, join(dir, "report.html"));
    const html = await Deno.readTextFile(path);
    // nothing outside the file: no scripts, no links or sources but data URIs
    assert.doesNotMatch(html, /<script/i);
    const refs = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]);
    assert.ok(refs.length > 0);
    for (const r of refs) assert.match(r, /^(data:|#)/, r);
    // 3 curves + the channel strip + one overlay per evaluated image
    const imgs = [
      ...html.matchAll(/<img [^>]*src="data:(image\/[a-z+]+);base64,/g),
    ]
      .map((m) => m[1]);
    assert.deepEqual(imgs.filter((t) => t === "image/svg+xml").length, 4);
    assert.deepEqual(
      imgs.filter((t) => t === "image/png").length,
      records.length,
    );
    for (
      const id of [
        "summary",
        "config",
        "curves",
        "channels",
        "rollouts",
        "eval",
        "overlays",
        "audit",
      ]
    ) assert.match(html, new RegExp(`<section id="${id}">`));
    assert.match(html, /PASS: every invariant holds/);
    assert.match(html, new RegExp(`finished after ${STEPS} steps`));
    // channel mix from the trace: steps 2 and 5 are B of 6
    assert.match(html, /B, fresh rollouts<\/td><td>2 \(33\.3%\)/);
    // totals: matched 1 + 2, FP 2 + 2, FN 1 + 1, gate 4 + 4, invalid 1 + 1 of
    // 2 B steps x 2 micro-batch x 2 accumulation = 8 rollouts
    assert.match(html, /3 \/ 4 \/ 2<\/td>/);
    assert.match(html, /gate rejections[^<]*<\/td><td>8</);
    assert.match(html, /2 \(25\.0%\)/);
    // per-desc table holds the hallucinated desc with no AP
    assert.match(html, /<td>pink star<\/td><td>0<\/td><td>1<\/td><td>0<\/td>/);
    assert.match(html, /mean log-probability of the box&#39;s 4 coord tokens/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run report: an unfinished run is INCOMPLETE, not PASS or FAIL, naming the completeness invariants", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-report-" });
  try {
    await makeRunFolder(dir);
    await Deno.remove(join(dir, "run_complete.json"));
    const report = await auditRun(dir);
    assert.equal(report.verdict, "INCOMPLETE");
    const html = await buildRunReport(dir, { audit: { report } });
    assert.match(
      html,
      /class="verdict warn">INCOMPLETE: the run or its trace is not complete \(run-finished\); nothing else failed/,
    );
    assert.doesNotMatch(html, /PASS: every|FAIL: \d/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run report: the caller's audit decides the verdict (FAIL, error, not audited); no trace says so, channels then come from the config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-report-" });
  try {
    const trace = buildCleanTrace({ steps: STEPS });
    const i = trace.findIndex((r) => r.kind === "step" && r.globalStep === 2);
    trace[i] = { ...trace[i], rolloutSeedBase: 12345 } as typeof trace[number];
    await makeRunFolder(dir, { trace });
    const bad = await buildRunReport(dir, {
      audit: { report: await auditRun(dir) },
    });
    assert.match(bad, /FAIL: \d+ violation\(s\)/);
    assert.match(bad, /seed-formula/);
    const failed = await buildRunReport(dir, {
      audit: { error: "trace.jsonl line 3: not JSON" },
    });
    assert.match(
      failed,
      /The audit could not run: trace\.jsonl line 3: not JSON/,
    );
    const unaudited = await buildRunReport(dir);
    assert.match(unaudited, /The trace was not audited for this page/);
    assert.doesNotMatch(unaudited, /PASS|FAIL/);

    await Deno.remove(join(dir, "trace.jsonl"));
    const none = await buildRunReport(dir);
    assert.match(none, /No trace\.jsonl in the run folder/);
    assert.match(none, /Source: the schedule in config\.yaml/);
    assert.match(none, /B, fresh rollouts<\/td><td>2 \(33\.3%\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
