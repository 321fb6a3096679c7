/**
 * A small but complete Stage-2 run folder without training: config.yaml,
 * metrics.jsonl (train / rollout / eval lines), a clean synthetic trace, and
 * evaluation outputs computed from hand-made predictions on real synthetic
 * images. Shared by the report and browser tests.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { writeSynthDataset } from "../../../trainer/data/synth.ts";
import { loadJsonl } from "../../../trainer/data/jsonl.ts";
import type { Xyxy } from "../../../trainer/coord/pixels.ts";
import {
  type EvalSampleRecord,
  matchImage,
  summarize,
  writeEvalOutputs,
} from "../../../trainer/eval/mod.ts";
import {
  buildCleanTrace,
  PATTERN,
  SEED,
  toText,
  WINDOW,
} from "../../audit/trace/synthetic.ts";
import type { TraceLine } from "../../../trainer/trace/schema.ts";

export const STEPS = 6;

export interface FixtureOptions {
  /** Trace records to write (default: the clean synthetic trace); null = none. */
  trace?: TraceLine[] | null;
}

/** Writes the run folder into `dir`; returns the evaluation records. */
export async function makeRunFolder(
  dir: string,
  o: FixtureOptions = {},
): Promise<EvalSampleRecord[]> {
  await writeSynthDataset(join(dir, "data"), {
    nTrain: 0,
    nVal: 4,
    seed: 11,
    imageSize: 64,
    maxObjects: 3,
  });
  const val = await loadJsonl(join(dir, "data", "val.jsonl"));
  await Deno.writeTextFile(
    join(dir, "config.yaml"),
    stringify({
      model: { preset: "tiny" },
      training: {
        max_steps: STEPS,
        micro_batch_size: 2,
        gradient_accumulation_steps: WINDOW,
        learning_rate: 3e-5,
        seed: SEED,
      },
      custom: {
        trainer_variant: "stage2_ab_training",
        extra: {
          stage2_ab: { schedule: { pattern: PATTERN }, n_softctx_iter: 3 },
          rollout_matching: {
            max_new_tokens: 64,
            rollout_buffer: { enabled: false, m_steps: 1 },
          },
        },
      },
    }),
  );
  const lines: unknown[] = [{
    step: 0,
    kind: "eval",
    eval_loss: 2.5,
    "eval/f1": 0.1,
    "eval/ap": 0.02,
    "eval/ap50": 0.05,
    "eval/parse_rate": 0.5,
    timing: {},
  }];
  for (let s = 1; s <= STEPS; s++) {
    if (PATTERN[(s - 1) % PATTERN.length] === "B") {
      lines.push({
        step: s,
        kind: "rollout",
        global_step: s - 1,
        "rollout/seed_base": 1,
        timing: {},
      });
    }
    if (s % 3 === 0) {
      // the window s-3 .. s-1 holds one B step (pattern A A B)
      lines.push({
        step: s,
        kind: "train",
        loss: 2 - s / 10,
        "loss/ce": 1.5 - s / 10,
        "loss/bbox_l1": 0.2,
        "loss/bbox_giou": 0.3,
        "match/matched": s / 3,
        "match/fp": 2,
        "match/fn": 1,
        "match/gate_rejections": 4,
        "stage2/invalid_rollout": 1,
        "stage2/drop_poly": 0,
        "stage2/drop_unknown": 1,
        "stage2/drop_bbox_invalid": 0,
        "stage2/channel_a": 2 / 3,
        "stage2/channel_b": 1 / 3,
        timing: {},
      });
      lines.push({
        step: s,
        kind: "eval",
        eval_loss: 2.4 - s / 20,
        "eval/f1": 0.1 + s / 20,
        "eval/ap": 0.02 + s / 40,
        "eval/ap50": 0.05 + s / 30,
        "eval/parse_rate": 1,
        timing: {},
      });
    }
  }
  await Deno.writeTextFile(
    join(dir, "metrics.jsonl"),
    lines.map((l) => JSON.stringify(l) + "\n").join(""),
  );
  const trace = o.trace === undefined
    ? buildCleanTrace({ steps: STEPS })
    : o.trace;
  if (trace) await Deno.writeTextFile(join(dir, "trace.jsonl"), toText(trace));

  // predictions: image 0 exact, image 1 shifted (FP + missed), image 2 none,
  // image 3 exact plus a hallucinated box
  const records: EvalSampleRecord[] = val.map((r, i) => {
    const gts = r.objects.map((g) => ({ desc: g.desc, bbox_2d: g.bbox_2d }));
    const shift = (
      b: Xyxy,
    ): Xyxy => [
      b[0],
      Math.min(999, b[1] + 400),
      b[2],
      Math.min(999, b[3] + 400),
    ];
    const preds = i === 2 ? [] : [
      ...gts.map((g, j) => ({
        desc: g.desc,
        bbox_2d: i === 1 ? shift(g.bbox_2d) : g.bbox_2d,
        score: -0.1 * (j + 1),
      })),
      ...(i === 3
        ? [{ desc: "pink star", bbox_2d: [0, 0, 300, 300] as Xyxy, score: -3 }]
        : []),
    ];
    const matches = matchImage({
      gts: gts.map((g) => ({ desc: g.desc, bbox: g.bbox_2d })),
      preds: preds.map((p) => ({
        desc: p.desc,
        bbox: p.bbox_2d,
        score: p.score,
      })),
    }, 0.5);
    return {
      index: i,
      source: r.source,
      image: r.images[0],
      width: r.width,
      height: r.height,
      parsed: i !== 2,
      invalid: i === 2,
      stop: i === 2 ? "invalid" : "closed",
      truncated: false,
      drops: { poly: 0, unknown: 0, bbox_invalid: 0 },
      new_tokens: 20,
      gts,
      preds,
      matches,
      text: "",
    };
  });
  const summary = summarize(
    { records, generatedTokens: 80, generateSeconds: 0.5 },
    { globalStep: STEPS, maxNewTokens: 64, batchSize: 4, evalLoss: 2.1 },
  );
  await writeEvalOutputs(dir, { summary, records }, 0);
  await Deno.writeTextFile(
    join(dir, "run_complete.json"),
    JSON.stringify({
      global_step: STEPS,
      config_hash: "x",
      checkpoint: `checkpoint-${STEPS}`,
    }),
  );
  return records;
}
