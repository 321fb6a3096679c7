/**
 * Trainer-variant registry: `custom.trainer_variant` -> factory.
 */
import type { Stage2Config } from "../config/schema.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { createSftVariant } from "./sft.ts";
import type { TrainerVariant, VariantFactory } from "./variant.ts";

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

/** Module and export implementing `stage2_ab_training`. */
const STAGE2_MODULE = "../stage2/variant.ts";
const STAGE2_EXPORT = "createStage2AbVariant";

export async function createVariant(init: VariantInit): Promise<AnyVariant> {
  const name = init.config.custom.trainer_variant;
  if (name === "sft") return createSftVariant(init) as unknown as AnyVariant;
  if (name === "stage2_ab_training") {
    // A computed specifier: the Stage-2 module is optional for Stage-1 runs
    // and for type-checking the loop on its own.
    const spec = STAGE2_MODULE;
    let mod: Record<string, unknown>;
    try {
      mod = await import(spec);
    } catch (e) {
      throw new Error(
        `custom.trainer_variant "stage2_ab_training" is not available: cannot load trainer/stage2/variant.ts (${
          (e as Error).message
        })`,
      );
    }
    const factory = mod[STAGE2_EXPORT] as
      | VariantFactory<unknown, Qwen3VLForConditionalGeneration>
      | undefined;
    if (typeof factory !== "function") {
      throw new Error(
        `trainer/stage2/variant.ts does not export ${STAGE2_EXPORT}()`,
      );
    }
    return factory(init);
  }
  throw new Error(
    `custom.trainer_variant ${
      JSON.stringify(name)
    } is unknown; use "sft" or "stage2_ab_training"`,
  );
}
