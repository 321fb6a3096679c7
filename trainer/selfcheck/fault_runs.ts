/**
 * Tiny Stage-2 AB runs for `stage2 audit --selftest`: one shared fixture (a
 * handful of 32x32 synthetic images, their tokenizer and a micro Qwen3-VL
 * checkpoint), then a 2-step run (pattern A, B: a Channel-A step with two
 * soft-context passes and a Channel-B step with real rollouts) per fault,
 * in this process, with the fault injected through the trainer's fault
 * switch (`trainer/common/faults.ts`). Every run evaluates at every step
 * with greedy validation rollouts, as real runs do at their eval steps, so
 * the matrix also shows that untraced eval generation neither masks nor
 * adds a finding. The audit of each run folder is the caller's business
 * (`audit/selftest.ts`).
 */
import { join } from "node:path";
import { type Fault, withFault } from "../common/faults.ts";
import { resolveConfigObject } from "../config/mod.ts";
import { writeSynthDataset } from "../data/synth.ts";
import { loadJsonl } from "../data/jsonl.ts";
import { type Qwen3VLConfig, tinyConfig } from "../model/config.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { buildTokenizerFromRecords } from "../loop/setup.ts";
import { train } from "../loop/train.ts";
import { initRuntime } from "../runtime.ts";

/** The shared inputs of every self-test run. */
export interface SelftestFixture {
  /** Folder holding the data, the checkpoint and the runs. */
  dir: string;
  trainJsonl: string;
  valJsonl: string;
  /** The micro model's checkpoint folder (with tokenizer.json). */
  checkpoint: string;
}

/**
 * A micro Qwen3-VL sized to a tokenizer: 1 decoder layer of width 32, a
 * 1-block vision tower (8x8 patches, 2x2 merge), tied embeddings.
 */
export function microModelConfig(tok: Tokenizer): Qwen3VLConfig {
  const sp = tok.specialIds;
  const cfg = tinyConfig(tok.vocabSize, {
    imageTokenId: sp.imagePad,
    visionStartTokenId: sp.visionStart,
    visionEndTokenId: sp.visionEnd,
    imEndTokenId: sp.imEnd,
    padTokenId: sp.pad,
  });
  Object.assign(cfg.text_config, {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 16,
  });
  cfg.text_config.rope_scaling = {
    ...cfg.text_config.rope_scaling!,
    mrope_section: [3, 3, 2],
  };
  Object.assign(cfg.vision_config, {
    depth: 1,
    hidden_size: 16,
    intermediate_size: 32,
    num_heads: 1,
    out_hidden_size: 32,
    num_position_embeddings: 16,
  });
  return cfg;
}

/**
 * Steps per run: step 0 is Channel A (2 passes), step 1 Channel B; an
 * evaluation (eval loss and greedy rollouts on 2 validation images) at the
 * start and after each step.
 */
export const SELFTEST_STEPS = 2;

/**
 * Writes the fixture into `dir`: 4 training and 2 validation images, a
 * tokenizer built from the training records and a freshly initialised
 * micro model (1 decoder layer, width 32, a 1-block vision tower), sized
 * so one run takes about a second.
 */
export async function buildSelftestFixture(
  dir: string,
): Promise<SelftestFixture> {
  // the start-up line says which compute path the self-test exercises
  await initRuntime({ threads: 1 });
  const data = join(dir, "data");
  await writeSynthDataset(data, {
    nTrain: 4,
    nVal: 2,
    seed: 11,
    imageSize: 32,
    maxObjects: 2,
  });
  const trainJsonl = join(data, "train.jsonl");
  const valJsonl = join(data, "val.jsonl");
  const rtok = buildTokenizerFromRecords(await loadJsonl(trainJsonl));
  const cfg = microModelConfig(rtok.tokenizer);
  const checkpoint = join(dir, "micro-model");
  const model = Qwen3VLForConditionalGeneration.create(cfg, 5);
  try {
    await model.save(checkpoint);
  } finally {
    model.dispose();
  }
  await Deno.writeTextFile(join(checkpoint, "tokenizer.json"), rtok.json);
  return { dir, trainJsonl, valJsonl, checkpoint };
}

/** The resolved config of one self-test run into `runDir`. */
export async function selftestConfig(fx: SelftestFixture, runDir: string) {
  return await resolveConfigObject({
    model: { checkpoint: fx.checkpoint },
    data: {
      train_jsonl: fx.trainJsonl,
      val_jsonl: fx.valJsonl,
      min_pixels: 1024,
    },
    training: {
      output_dir: runDir,
      seed: 3,
      max_steps: SELFTEST_STEPS,
      micro_batch_size: 2,
      gradient_accumulation_steps: 1,
      learning_rate: 1e-3,
      warmup_steps: 0,
      logging_steps: 1,
      eval_steps: 1,
      eval_max_samples: 2,
      save_steps: 0,
      trace: "summary",
      threads: 1,
      packing: { enabled: true, max_length: 1024 },
    },
    custom: {
      trainer_variant: "stage2_ab_training",
      extra: {
        stage2_ab: { schedule: { pattern: ["A", "B"] }, n_softctx_iter: 2 },
        rollout_matching: {
          decode_mode: "greedy",
          max_new_tokens: 6,
          packing_length: 1024,
        },
      },
    },
  }, "the self-test config");
}

/**
 * Trains one self-test run into `runDir` with `fault` injected (null:
 * clean). A run the fault crashes is a result, not an error: its message
 * is returned and its folder keeps what the trainer wrote.
 */
export async function runWithFault(
  fx: SelftestFixture,
  fault: Fault | null,
  runDir: string,
): Promise<{ crashed: string | null }> {
  const config = await selftestConfig(fx, runDir);
  try {
    await withFault(fault, () =>
      train({
        config,
        resume: null,
        log: () => {},
        progressTty: false,
      }));
    return { crashed: null };
  } catch (e) {
    return { crashed: (e as Error).message.split("\n")[0] };
  }
}
