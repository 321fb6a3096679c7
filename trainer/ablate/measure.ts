/**
 * Held-out measurements of one checkpoint, used by the learning-curve and
 * ablation harnesses: greedy-rollout detection metrics (the loop's
 * `rolloutSummary`), the teacher-forced eval loss, and the same loss with
 * every answer paired with ANOTHER validation image ("shuffled").
 *
 * The shuffled loss is the image-dependence probe: a model that reads the
 * image has a clearly lower loss on its own image than on a wrong one; a
 * model whose answers ignore the image scores the same on both.
 */
import { visionPreprocessFor } from "../model/config.ts";
import { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import type { DetectionRecord } from "../data/types.ts";
import { tf } from "../runtime.ts";
import { type EvalSummary, rolloutEvaluation } from "../eval/mod.ts";
import { buildSftBatch, disposeSftBatch, positionNll } from "../sft/batch.ts";
import { TokenRole } from "../tokenizer/answer.ts";
import { SampleStore, type SampleVision } from "../loop/samples.ts";
import type { RawSample } from "../variant/contract.ts";
import { tokenizerFromFile } from "../loop/setup.ts";
import { join } from "node:path";

/**
 * A validation store whose sample `i` carries the answer of record `i` and
 * the image of record `(i + 1) mod n`: a derangement, so no answer keeps its
 * own image. All images must share one size (true for the synthetic data).
 */
export class ShuffledImageStore extends SampleStore {
  override async get(i: number): Promise<RawSample> {
    if (this.size < 2) {
      throw new Error("the shuffled-image probe needs at least 2 samples");
    }
    const own = await super.get(i);
    const other = await super.get((i + 1) % this.size);
    if (other.pixelValues.length !== own.pixelValues.length) {
      throw new Error(
        `${own.record.source}: shuffled-image probe needs equal image sizes`,
      );
    }
    return {
      ...own,
      pixelValues: other.pixelValues,
      pixelShape: other.pixelShape,
      imageGridThw: other.imageGridThw,
    };
  }
}

/** Mean next-token NLL over answer tokens, overall and by token role. */
export interface RoleLoss {
  all: number;
  structure: number;
  desc: number;
  coord: number;
  eot: number;
}

const ROLE_NAMES: Record<number, keyof RoleLoss> = {
  [TokenRole.structure]: "structure",
  [TokenRole.desc]: "desc",
  [TokenRole.coord]: "coord",
  [TokenRole.eot]: "eot",
};

/**
 * Teacher-forced NLL of every answer token of `store`'s samples (Stage-1
 * CE, coord tokens included), averaged per token overall and per role. The
 * overall value equals the loop's `evalLoss`.
 */
export async function roleLosses(
  model: Qwen3VLForConditionalGeneration,
  store: SampleStore,
  padId: number,
  batchSize = 8,
): Promise<RoleLoss> {
  const sum = { all: 0, structure: 0, desc: 0, coord: 0, eot: 0 };
  const cnt = { all: 0, structure: 0, desc: 0, coord: 0, eot: 0 };
  for (let i = 0; i < store.size; i += batchSize) {
    const idx = Array.from(
      { length: Math.min(batchSize, store.size - i) },
      (_, k) => i + k,
    );
    const batch = buildSftBatch(await store.getMany(idx), {
      modelConfig: model.config,
      packing: { enabled: true, max_length: 1 << 20 },
      padId,
    });
    try {
      // nll per position [B*L]: row p-1 predicts token p
      const nllT = tf.tidy(() => positionNll(model, batch));
      const nll = nllT.dataSync();
      nllT.dispose();
      const c = batch.collated;
      for (let b = 0; b < c.batch; b++) {
        c.samples[b].forEach((s, k) => {
          const start = c.segmentStarts[b][k];
          for (let p = 1; p < s.inputIds.length; p++) {
            const role = ROLE_NAMES[s.roles[p]];
            if (!role) continue;
            const v = nll[b * c.length + start + p - 1];
            sum[role] += v, cnt[role]++;
            sum.all += v, cnt.all++;
          }
        });
      }
    } finally {
      disposeSftBatch(batch);
    }
  }
  const mean = (k: keyof RoleLoss) => cnt[k] ? sum[k] / cnt[k] : NaN;
  return {
    all: mean("all"),
    structure: mean("structure"),
    desc: mean("desc"),
    coord: mean("coord"),
    eot: mean("eot"),
  };
}

export interface MeasureOptions {
  /** Validation images used (the first n). */
  samples: number;
  /** Greedy rollouts on the first n of those (default: all). */
  rolloutSamples?: number;
  maxNewTokens: number;
  minPixels: number;
  maxPixels: number;
  /** Rollout batch size. */
  batchSize?: number;
  /** Skip the two teacher-forced losses (rollout metrics only). */
  skipLoss?: boolean;
}

/** One row of a learning curve. */
export interface Measurement {
  step: number;
  eval_loss: number | null;
  eval_loss_shuffled: number | null;
  /** (shuffled - real) / real: > 0 when the answers depend on the image. */
  image_gain: number | null;
  /** Per-role losses on real and shuffled images. */
  roles: RoleLoss | null;
  roles_shuffled: RoleLoss | null;
  /** Desc-aware matching at IoU 0.5 (null without predictions or GT). */
  f1: number | null;
  precision: number | null;
  recall: number | null;
  /** Class-agnostic matching: F1 and how often matched pairs agree on desc. */
  f1_agnostic: number | null;
  mean_iou: number | null;
  parse_rate: number;
  invalid_rate: number;
  desc_accuracy: number | null;
  /** The full rollout summary (for eval_summary.json-style consumers). */
  summary: EvalSummary;
  /** The first three rollouts' text, to eyeball. */
  examples: string[];
  measure_s: number;
}

/** Measures `checkpointDir` (a `checkpoint-<step>` folder) on `val`. */
export async function measureCheckpoint(
  checkpointDir: string,
  step: number,
  val: DetectionRecord[],
  o: MeasureOptions,
): Promise<Measurement> {
  const t0 = performance.now();
  const model = await Qwen3VLForConditionalGeneration.load(checkpointDir);
  try {
    const { tokenizer: tok } = await tokenizerFromFile(
      join(checkpointDir, "tokenizer.json"),
    );
    const vision: SampleVision = {
      ...visionPreprocessFor(model.config),
      minPixels: o.minPixels,
      maxPixels: o.maxPixels,
    };
    const records = val.slice(0, o.samples);
    const store = new SampleStore(records, tok, vision);
    let roles: RoleLoss | null = null, rolesShuf: RoleLoss | null = null;
    if (!o.skipLoss) {
      const pad = tok.specialIds.pad;
      roles = await roleLosses(model, store, pad);
      rolesShuf = await roleLosses(
        model,
        new ShuffledImageStore(records, tok, vision),
        pad,
      );
    }
    const real = roles?.all ?? null, shuffled = rolesShuf?.all ?? null;
    const { summary, records: rolled } = await rolloutEvaluation(
      model,
      tok,
      store,
      {
        maxSamples: Math.min(
          records.length,
          o.rolloutSamples ?? records.length,
        ),
        maxNewTokens: o.maxNewTokens,
        batchSize: o.batchSize ?? 16,
        globalStep: step,
        evalLoss: real,
      },
    );
    return {
      step,
      eval_loss: real,
      eval_loss_shuffled: shuffled,
      image_gain: real !== null && shuffled !== null
        ? (shuffled - real) / real
        : null,
      roles,
      roles_shuffled: rolesShuf,
      f1: summary.f1,
      precision: summary.precision,
      recall: summary.recall,
      mean_iou: summary.mean_iou,
      parse_rate: summary.parse_rate,
      invalid_rate: summary.invalid_rate,
      f1_agnostic: summary.class_agnostic.f1,
      desc_accuracy: summary.class_agnostic.desc_accuracy,
      summary,
      examples: rolled.slice(0, 3).map((r) => r.text),
      measure_s: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}

/** A fixed-width table row of the headline numbers. */
export function formatMeasurement(m: Measurement): string {
  const f = (v: number | null, d = 3) => v === null ? "n/a" : v.toFixed(d);
  return [
    `step ${String(m.step).padStart(5)}`,
    `F1 ${f(m.f1)}`,
    `F1(any desc) ${f(m.f1_agnostic)}`,
    `P ${f(m.precision)}`,
    `R ${f(m.recall)}`,
    `mIoU ${f(m.mean_iou)}`,
    `parse ${f(m.parse_rate, 2)}`,
    `desc ${f(m.desc_accuracy, 2)}`,
    `loss ${f(m.eval_loss, 4)}`,
    `shuf ${f(m.eval_loss_shuffled, 4)}`,
    `gain ${m.image_gain === null ? "n/a" : (100 * m.image_gain).toFixed(1)}%`,
    m.roles && m.roles_shuffled
      ? `coord ${f(m.roles.coord)}/${f(m.roles_shuffled.coord)} desc ${
        f(m.roles.desc)
      }/${f(m.roles_shuffled.desc)} eot ${f(m.roles.eot)}/${
        f(m.roles_shuffled.eot)
      }`
      : "",
  ].join("  ");
}
