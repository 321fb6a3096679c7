/**
 * The config schema: every key is declared once, here, with what it
 * accepts (a human description error messages quote as "must be
 * <description>") and its default. `DEFAULTS` is derived from it. Objects
 * are strict: unknown keys are errors.
 *
 * The defaults are sized for a tiny model on two CPU cores: 64x64
 * synthetic images (a multiple of 32, so Qwen3-VL's resize is the identity
 * inside [min_pixels, max_pixels]), micro-batches of 2 with 2 accumulation
 * steps, and a learning rate suited to a freshly initialised tiny model.
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
/** A group: strict, and filled with its keys' defaults when left out. */
const group = <S extends z.ZodRawShape>(shape: S) =>
  z.strictObject(shape).prefault({} as never);

export const stage2Schema = group({
  model: group({
    /** Checkpoint folder (config.json + model.safetensors + tokenizer.json); null = fresh tiny model. */
    checkpoint: pathOrNull().default(null),
    preset: oneOf(["tiny"] as const).default("tiny"),
    /** tokenizer.json; null = the checkpoint's, or one built from the training data. */
    tokenizer: pathOrNull().default(null),
    /** Stage-1 config trained first (and cached by its hash) when checkpoint is null. */
    warm_start_config: pathOrNull().default(null),
    /**
     * Where warm-start runs live, one `<variant>-<hash>/` folder each;
     * null = `<parent of training.output_dir>/warm_start`.
     */
    warm_start_dir: pathOrNull().default(null),
  }),
  data: group({
    /** JSONL files; null train_jsonl = the built-in synthetic dataset below. */
    train_jsonl: pathOrNull().default(null),
    val_jsonl: pathOrNull().default(null),
    synth: group({
      n_train: int(1).default(256),
      n_val: int(0).default(32),
      seed: int(0).default(17),
      image_size: z.number().int().min(32).refine((v) => v % 32 === 0)
        .describe("an integer >= 32 and a multiple of 32").default(64),
      max_objects: int(1).default(6),
      /**
       * true: every training draw is a new image (a pure function of seed
       * and draw index, rendered in memory; n_train is ignored). false: a
       * fixed set of n_train images written to disk.
       */
      fresh: bool().default(false),
    }),
    /** 256*256: images larger than this are downscaled by the vision preprocessing. */
    max_pixels: int(1).default(65536),
    /** 32*32: keeps 64x64 synthetic images at their own size. */
    min_pixels: int(1).default(1024),
  }),
  training: group({
    output_dir: z.string().min(1).describe("a non-empty path string")
      .default("runs/stage2"),
    seed: int(0).default(17),
    max_steps: int(1).default(100),
    micro_batch_size: int(1).default(2),
    gradient_accumulation_steps: int(1).default(2),
    learning_rate: posNum().default(1e-3),
    weight_decay: nonNeg().default(0.01),
    adam_beta1: z.number().min(0).lt(1).describe("a number in [0, 1)")
      .default(0.9),
    adam_beta2: z.number().min(0).lt(1).describe("a number in [0, 1)")
      .default(0.999),
    adam_epsilon: posNum().default(1e-8),
    lr_scheduler: oneOf(["cosine", "linear", "constant"] as const)
      .default("cosine"),
    warmup_steps: int(0).default(10),
    max_grad_norm: posNum().default(1.0),
    logging_steps: int(1).default(10),
    /** 0 disables periodic evaluation (a final evaluation still runs). */
    eval_steps: int(0).default(50),
    /** 0 disables periodic checkpoints (the final one is still written). */
    save_steps: int(0).default(50),
    save_total_limit: intOrNull(1).default(2),
    eval_max_samples: intOrNull(1).default(32),
    packing: group({
      enabled: bool().default(true),
      max_length: int(16).default(2048),
    }),
    trace: oneOf(["off", "summary", "full"] as const).default("summary"),
    resume: z.string().min(1).nullable().describe(
      `null, "auto" (latest checkpoint in output_dir) or a checkpoint folder path`,
    ).default(null),
    /**
     * Thread count of whichever compute path is active: the blas path's
     * worker threads (results do not depend on it), wasm threads where the
     * host supports them (under Deno wasm runs one). null = `STAGE2_THREADS`,
     * else every core.
     */
    threads: intOrNull(1).default(null),
  }),
  custom: group({
    trainer_variant: oneOf(["sft", "stage2_ab_training"] as const)
      .default("sft"),
    extra: group({
      stage2_ab: group({
        schedule: group({
          pattern: z.array(z.enum(["A", "B"])).min(1).describe(
            `a non-empty list whose entries are "A" or "B"`,
          ).default((): ("A" | "B")[] => ["A", "A", "B"]),
        }),
        n_softctx_iter: int(1).default(2),
        softctx_temperature: posNum().default(1.0),
        coord_decode_temperature: posNum().default(1.0),
        desc_ce_weight: nonNeg().default(1.0),
        bbox_l1_weight: nonNeg().default(1.0),
        bbox_giou_weight: nonNeg().default(1.0),
      }),
      rollout_matching: group({
        decode_mode: oneOf(["greedy", "sample"] as const).default("greedy"),
        temperature: nonNeg().default(1.0),
        top_p: z.number().gt(0).max(1).describe("a number in (0, 1]")
          .default(1.0),
        /** Capped by the model's context length (checked at start-up). */
        max_new_tokens: int(1).default(256),
        candidate_top_k: int(1).default(5),
        maskiou_gate: unit().default(0.3),
        fp_cost: nonNeg().default(1.0),
        fn_cost: nonNeg().default(1.0),
        packing_length: int(16).default(2048),
        rollout_buffer: group({
          enabled: bool().default(false),
          m_steps: int(1).default(1),
        }),
      }),
    }),
  }),
});

/** The validated run configuration; paths are absolute after loading. */
export type Stage2Config = z.output<typeof stage2Schema>;

/** A config as returned by `loadConfig`: validated, defaults filled, paths absolute. */
export type ResolvedConfig = Stage2Config;

/** Every default, derived from the schema (a fresh copy per import). */
export const DEFAULTS: Stage2Config = stage2Schema.parse({});

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
  let depth = 0;
  for (const seg of path) {
    const inner = unwrap(node);
    if (
      inner instanceof z.ZodObject && typeof seg === "string" &&
      seg in inner.shape
    ) {
      node = inner.shape[seg] as AnySchema;
      depth++;
    } else break;
  }
  const inner = unwrap(node);
  const keys = inner instanceof z.ZodObject
    ? Object.keys(inner.shape)
    : undefined;
  return { node, depth, description: descriptionOf(node), keys };
}

/** Allowed keys of the mapping at `path`, or undefined when it is a leaf. */
export function keysAt(path: string[]): string[] | undefined {
  const r = schemaAt(path);
  return r.depth === path.length ? r.keys : undefined;
}

/** The first description met while unwrapping defaults and nullables. */
function descriptionOf(node: AnySchema): string | undefined {
  let n: AnySchema = node;
  for (;;) {
    if (n.description) return n.description;
    const next = unwrapOnce(n);
    if (next === n) return undefined;
    n = next;
  }
}

function unwrapOnce(n: AnySchema): AnySchema {
  if (
    n instanceof z.ZodNullable || n instanceof z.ZodOptional ||
    n instanceof z.ZodDefault || n instanceof z.ZodPrefault
  ) {
    return n.unwrap() as AnySchema;
  }
  return n;
}

function unwrap(node: AnySchema): AnySchema {
  let n = node;
  for (let next = unwrapOnce(n); next !== n; next = unwrapOnce(n)) n = next;
  return n;
}
