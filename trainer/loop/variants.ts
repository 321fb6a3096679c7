/**
 * Trainer-variant registry: `custom.trainer_variant` -> factory.
 */
import type { Stage2Config } from "../config/schema.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { createSftVariant } from "../sft/variant.ts";
import type { TrainerVariant } from "../variant/contract.ts";

export type AnyVariant = TrainerVariant<
  unknown,
  Qwen3VLForConditionalGeneration
>;

export interface VariantInit {
  model: Qwen3VLForConditionalGeneration;
  tokenizer: Tokenizer;
  config: Stage2Config;
  trainingSeed: number;
}

export async function createVariant(init: VariantInit): Promise<AnyVariant> {
  const name = init.config.custom.trainer_variant;
  if (name === "sft") return createSftVariant(init) as unknown as AnyVariant;
  if (name === "stage2_ab_training") {
    // Loaded on demand: Stage-1 runs never pay for the Stage-2 modules.
    const { createStage2AbVariant } = await import("../stage2/variant.ts");
    return createStage2AbVariant(init) as unknown as AnyVariant;
  }
  throw new Error(
    `custom.trainer_variant ${
      JSON.stringify(name)
    } is unknown; use "sft" or "stage2_ab_training"`,
  );
}
