import assert from "node:assert/strict";
import {
  ablationMarkdown,
  meanSpread,
  type RunRow,
} from "../../../trainer/ablate/table.ts";

Deno.test("meanSpread: mean and half-range of the finite numbers only", () => {
  assert.deepEqual(meanSpread([0.5, 0.75]), {
    mean: 0.625,
    spread: 0.125,
    n: 2,
  });
  assert.deepEqual(meanSpread([0.5, null, "x", NaN]), {
    mean: 0.5,
    spread: 0,
    n: 1,
  });
  assert.equal(meanSpread([undefined, null]), null);
});

Deno.test("ablation table: mean ± spread per arm, n/a for metrics the summaries lack, pending arms listed", () => {
  const rows: RunRow[] = [
    {
      arm: "sft",
      seed: 1,
      metrics: {
        f1: 0.6,
        class_agnostic: { f1: 0.8 },
        mean_iou: 0.7,
        wall_s: 100,
      },
    },
    {
      arm: "sft",
      seed: 2,
      metrics: {
        f1: 0.64,
        class_agnostic: { f1: 0.9 },
        mean_iou: 0.72,
        wall_s: 110,
      },
    },
    // AP present for one seed only: shown, flagged as partial
    { arm: "ab", seed: 1, metrics: { f1: 0.5, ap: 0.3, wall_s: 200 } },
    { arm: "ab", seed: 2, metrics: { f1: 0.52, wall_s: 220 } },
  ];
  const md = ablationMarkdown(rows, [
    { name: "sft", label: "SFT" },
    { name: "ab", label: "AB" },
    { name: "b", label: "B only" },
  ]);
  const lines = md.trim().split("\n");
  assert.equal(
    lines[0],
    "| arm | seeds | F1@0.5 | F1@0.5 ignoring desc | AP | AP50 | mean IoU | parse rate | invalid rollouts | wall (s) |",
  );
  assert.equal(
    lines[2],
    "| SFT | 1, 2 | 0.620 ± 0.020 | 0.850 ± 0.050 | n/a | n/a | 0.710 ± 0.010 | n/a | n/a | 105 ± 5 |",
  );
  assert.equal(
    lines[3],
    "| AB | 1, 2 | 0.510 ± 0.010 | n/a | 0.300 (1/2) | n/a | n/a | n/a | n/a | 210 ± 10 |",
  );
  assert.match(lines[4], /^\| B only \| 0 \| pending \| pending/);
});
