/**
 * Learning-curve harness (a research tool, not a test): trains one config,
 * keeps a checkpoint every `--every` steps, then measures each on held-out
 * validation images: F1@0.5 / precision / recall / mean IoU / parse rate of
 * greedy rollouts, and the eval loss on real vs shuffled images.
 *
 *   deno task curves --config configs/stage1_sft.yaml --every 200 \
 *     --val 64 --out /work/exp/learn/e01 [--set key=value]...
 *
 * Writes `<out>/curve.jsonl` (one line per checkpoint) and prints a table.
 * Re-running with the same `--out` resumes training and re-measures only
 * checkpoints not yet in curve.jsonl.
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { join, resolve } from "node:path";
import { loadConfigDetailed } from "../trainer/config/mod.ts";
import { loadJsonl } from "../trainer/data/jsonl.ts";
import { train } from "../trainer/loop/train.ts";
import { listCheckpoints } from "../trainer/loop/run_dir.ts";
import {
  formatMeasurement,
  measureCheckpoint,
  type Measurement,
} from "../trainer/ablate/measure.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    config: { type: "string" },
    set: { type: "string", multiple: true, default: [] },
    every: { type: "string", default: "200" },
    val: { type: "string", default: "64" },
    rollouts: { type: "string", default: "32" },
    out: { type: "string" },
    "max-new-tokens": { type: "string", default: "160" },
    "measure-only": { type: "boolean", default: false },
  },
});
if (!values.config || !values.out) {
  console.error(
    "usage: deno task curves --config FILE --out DIR [--every N] [--val N] [--set k=v]...",
  );
  Deno.exit(2);
}
const out = resolve(values.out);
const every = Number(values.every);
const nVal = Number(values.val);
const nRollouts = Number(values.rollouts);
const loaded = await loadConfigDetailed(resolve(values.config), [
  ...values.set!,
  `training.output_dir=${out}`,
  `training.save_steps=${every}`,
  `training.eval_steps=0`,
  `training.eval_max_samples=8`,
]);
const cfg = loaded.config;
cfg.training.save_total_limit = null;
await Deno.mkdir(out, { recursive: true });
const log = (s: string) => console.error(s);

let trainWall: number | null = null;
let trainCpu: number | null = null;
if (!values["measure-only"]) {
  // CPU seconds are what a quiet machine would need (the wasm backend runs
  // on one thread); wall time here depends on how busy the shared box is.
  const cpu0 = process.cpuUsage();
  const r = await train({
    config: cfg,
    resume: "auto",
    skipRolloutEval: true,
    progressTty: false,
    log,
  });
  trainWall = r.wallSeconds;
  const cpu = process.cpuUsage(cpu0);
  trainCpu = (cpu.user + cpu.system) / 1e6;
  log(
    `trained ${r.globalStep} steps in ${r.wallSeconds.toFixed(0)} s wall, ${
      trainCpu.toFixed(0)
    } s CPU`,
  );
}

const valPath = cfg.data.val_jsonl ?? join(out, "data", "val.jsonl");
const val = await loadJsonl(valPath);
const curvePath = join(out, "curve.jsonl");
const done = new Set<number>();
try {
  for (const l of (await Deno.readTextFile(curvePath)).split("\n")) {
    if (l.trim()) done.add(JSON.parse(l).step);
  }
} catch { /* first run */ }
const rows: Measurement[] = [];
for (const c of await listCheckpoints(out)) {
  if (done.has(c.step)) continue;
  const m = await measureCheckpoint(c.dir, c.step, val, {
    samples: nVal,
    rolloutSamples: nRollouts,
    maxNewTokens: Number(values["max-new-tokens"]),
    minPixels: cfg.data.min_pixels,
    maxPixels: cfg.data.max_pixels,
  });
  rows.push(m);
  console.log(formatMeasurement(m));
  const { summary: _summary, ...flat } = m;
  await Deno.writeTextFile(
    curvePath,
    JSON.stringify({
      ...flat,
      train_wall_s: trainWall,
      train_cpu_s: trainCpu,
    }) + "\n",
    { append: true },
  );
}
