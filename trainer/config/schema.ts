/**
 * The strict config schema. Every leaf carries a human description (via
 * zod's `.describe`) that error messages quote as "must be <description>".
 * Objects are strict: unknown keys are errors.
 */
import { z } from "zod";

const int = (min: number) =>
  z.number().int().min(min).describe(`an integer >= ${min}`);
const posNum = () => z.number().gt(0).describe("a number > 0");
const nonNeg = () => z.number().min(0).describe("a number >= 0");
const unit = () => z.number().min(0).max(1).describe("a number in [0, 1]");
const oneOf = <T extends readonly [string, ...string[]]>(vals: T) =>
  z.enum(vals).describe(
    `one of ${vals.map((v) => JSON.stringify(v)).join(", ")}`,
  );
const bool = () => z.boolean().describe("true or false");
const pathOrNull = () =>
  z.string().min(1).nullable().describe("a path (string) or null");
const intOrNull = (min: number) =>
  z.number().int().min(min).nullable().describe(`an integer >= ${min} or null`);

export const stage2Schema = z.strictObject({
  model: z.strictObject({
    checkpoint: pathOrNull(),
    preset: oneOf(["tiny"] as const),
    tokenizer: pathOrNull(),
    warm_start_config: pathOrNull(),
  }),
  data: z.strictObject({
    train_jsonl: pathOrNull(),
    val_jsonl: pathOrNull(),
    synth: z.strictObject({
      n_train: int(1),
      n_val: int(0),
      seed: int(0),
      image_size: z.number().int().min(32).refine((v) => v % 32 === 0).describe(
        "an integer >= 32 and a multiple of 32",
      ),
      max_objects: int(1),
      fresh: bool(),
    }),
    max_pixels: int(1),
    min_pixels: int(1),
  }),
  training: z.strictObject({
    output_dir: z.string().min(1).describe("a non-empty path string"),
    seed: int(0),
    max_steps: int(1),
    micro_batch_size: int(1),
    gradient_accumulation_steps: int(1),
    learning_rate: posNum(),
    weight_decay: nonNeg(),
    adam_beta1: z.number().min(0).lt(1).describe("a number in [0, 1)"),
    adam_beta2: z.number().min(0).lt(1).describe("a number in [0, 1)"),
    adam_epsilon: posNum(),
    lr_scheduler: oneOf(["cosine", "linear", "constant"] as const),
    warmup_steps: int(0),
    max_grad_norm: posNum(),
    logging_steps: int(1),
    eval_steps: int(0),
    save_steps: int(0),
    save_total_limit: intOrNull(1),
    eval_max_samples: intOrNull(1),
    packing: z.strictObject({
      enabled: bool(),
      max_length: int(16),
    }),
    trace: oneOf(["off", "summary", "full"] as const),
    resume: z.string().min(1).nullable().describe(
      `null, "auto" (latest checkpoint in output_dir) or a checkpoint folder path`,
    ),
    threads: intOrNull(1),
  }),
  custom: z.strictObject({
    trainer_variant: oneOf(["sft", "stage2_ab_training"] as const),
    extra: z.strictObject({
      stage2_ab: z.strictObject({
        schedule: z.strictObject({
          pattern: z.array(z.enum(["A", "B"])).min(1).describe(
            `a non-empty list whose entries are "A" or "B"`,
          ),
        }),
        n_softctx_iter: int(1),
        softctx_temperature: posNum(),
        coord_decode_temperature: posNum(),
        desc_ce_weight: nonNeg(),
        bbox_l1_weight: nonNeg(),
        bbox_giou_weight: nonNeg(),
      }),
      rollout_matching: z.strictObject({
        decode_mode: oneOf(["greedy", "sample"] as const),
        temperature: nonNeg(),
        top_p: z.number().gt(0).max(1).describe("a number in (0, 1]"),
        max_new_tokens: int(1),
        candidate_top_k: int(1),
        maskiou_gate: unit(),
        fp_cost: nonNeg(),
        fn_cost: nonNeg(),
        packing_length: int(16),
        rollout_buffer: z.strictObject({
          enabled: bool(),
          m_steps: int(1),
        }),
      }),
    }),
  }),
});

/** The validated run configuration; paths are absolute after loading. */
export type Stage2Config = z.infer<typeof stage2Schema>;

/** A config as returned by `loadConfig`: validated, defaults filled, paths absolute. */
export type ResolvedConfig = Stage2Config;

type AnySchema = z.ZodType;

/**
 * Walk the schema along `path`. Returns the deepest schema node reached, the
 * number of path segments it consumed, and the nearest description.
 */
export function schemaAt(path: (string | number)[]): {
  node: AnySchema;
  depth: number;
  description?: string;
  keys?: string[];
} {
  let node: AnySchema = stage2Schema;
  let description: string | undefined;
  let depth = 0;
  for (const seg of path) {
    const inner = unwrap(node);
    if (
      inner instanceof z.ZodObject && typeof seg === "string" &&
      seg in inner.shape
    ) {
      node = inner.shape[seg] as AnySchema;
      description = node.description;
      depth++;
    } else break;
  }
  const inner = unwrap(node);
  const keys = inner instanceof z.ZodObject
    ? Object.keys(inner.shape)
    : undefined;
  return { node, depth, description: description ?? node.description, keys };
}

/** Allowed keys of the mapping at `path`, or undefined when it is a leaf. */
export function keysAt(path: string[]): string[] | undefined {
  const r = schemaAt(path);
  return r.depth === path.length ? r.keys : undefined;
}

function unwrap(node: AnySchema): AnySchema {
  let n = node;
  while (
    n instanceof z.ZodNullable || n instanceof z.ZodOptional ||
    n instanceof z.ZodDefault
  ) {
    n = n.unwrap() as AnySchema;
  }
  return n;
}
