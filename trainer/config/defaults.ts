/**
 * Every config default, in one place. Sized for a tiny model on two CPU
 * cores: 64x64 synthetic images (a multiple of 32, so Qwen3-VL's resize is
 * the identity inside [min_pixels, max_pixels]), micro-batches of 2 with 2
 * accumulation steps, and a learning rate suited to a freshly initialised
 * tiny model.
 */
export const DEFAULTS = {
  model: {
    /** Checkpoint folder (config.json + model.safetensors + tokenizer.json); null = fresh tiny model. */
    checkpoint: null as string | null,
    preset: "tiny" as const,
    /** tokenizer.json; null = the checkpoint's, or one built from the training data. */
    tokenizer: null as string | null,
    /** Stage-1 config trained first (and cached by its hash) when checkpoint is null. */
    warm_start_config: null as string | null,
  },
  data: {
    /** JSONL files; null train_jsonl = the built-in synthetic dataset below. */
    train_jsonl: null as string | null,
    val_jsonl: null as string | null,
    synth: {
      n_train: 256,
      n_val: 32,
      seed: 17,
      image_size: 64,
      max_objects: 6,
      /**
       * true: every training draw is a new image (a pure function of seed
       * and draw index, rendered in memory; n_train is ignored). false: a
       * fixed set of n_train images written to disk.
       */
      fresh: false,
    },
    /** 256*256: images larger than this are downscaled by the vision preprocessing. */
    max_pixels: 65536,
    /** 32*32: keeps 64x64 synthetic images at their own size. */
    min_pixels: 1024,
  },
  training: {
    output_dir: "runs/stage2",
    seed: 17,
    max_steps: 100,
    micro_batch_size: 2,
    gradient_accumulation_steps: 2,
    learning_rate: 1e-3,
    weight_decay: 0.01,
    adam_beta1: 0.9,
    adam_beta2: 0.999,
    adam_epsilon: 1e-8,
    lr_scheduler: "cosine" as "cosine" | "linear" | "constant",
    warmup_steps: 10,
    max_grad_norm: 1.0,
    logging_steps: 10,
    /** 0 disables periodic evaluation (a final evaluation still runs). */
    eval_steps: 50,
    /** 0 disables periodic checkpoints (the final one is still written). */
    save_steps: 50,
    save_total_limit: 2 as number | null,
    eval_max_samples: 32 as number | null,
    packing: { enabled: true, max_length: 2048 },
    trace: "summary" as "off" | "summary" | "full",
    resume: null as string | null,
    /** wasm backend threads; null = the runtime's choice. */
    threads: null as number | null,
  },
  custom: {
    trainer_variant: "sft" as "sft" | "stage2_ab_training",
    extra: {
      stage2_ab: {
        schedule: { pattern: ["A", "A", "B"] as ("A" | "B")[] },
        n_softctx_iter: 2,
        softctx_temperature: 1.0,
        coord_decode_temperature: 1.0,
        desc_ce_weight: 1.0,
        bbox_l1_weight: 1.0,
        bbox_giou_weight: 1.0,
      },
      rollout_matching: {
        decode_mode: "greedy" as "greedy" | "sample",
        temperature: 1.0,
        top_p: 1.0,
        max_new_tokens: 256,
        candidate_top_k: 5,
        maskiou_gate: 0.3,
        fp_cost: 1.0,
        fn_cost: 1.0,
        packing_length: 2048,
        rollout_buffer: { enabled: false, m_steps: 1 },
      },
    },
  },
};
