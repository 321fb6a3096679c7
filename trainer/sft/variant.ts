/**
 * Stage 1 (`custom.trainer_variant: sft`) on the shared training loop (see
 * `trainer/variant/contract.ts`): `prepare` collates the micro-batch and its
 * CE targets (`batch.ts`), `loss` runs the one teacher-forced forward.
 */
import type { Stage2Config } from "../config/schema.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { packingRope, ropeProbe } from "../variant/packing.ts";
import type {
  RawSample,
  StepPlan,
  TrainContext,
  TrainerVariant,
  VariantLoss,
} from "../variant/contract.ts";
import {
  buildSftBatch,
  disposeSftBatch,
  type ForwardModel,
  packingTrace,
  type SftBatch,
  sftForwardLoss,
} from "./batch.ts";

/** The Stage-1 variant. */
export function createSftVariant(
  init: { model: ForwardModel; tokenizer: Tokenizer; config: Stage2Config },
): TrainerVariant<SftBatch, ForwardModel> {
  const cfg = init.config;
  // Fails here, before the first step, when packing is on and the model
  // cannot give 4-row position ids.
  packingRope(
    init.model,
    cfg.training.packing.enabled,
    ropeProbe(init.model.config, init.tokenizer.encode("{}")),
  );
  return {
    name: "sft",
    datasetPacking: cfg.training.packing.enabled,
    planStep(): StepPlan {
      return {
        channel: "sft",
        nPasses: 1,
        pattern: null,
        rolloutSeedBase: null,
        freshRollouts: false,
        bufferReuse: false,
      };
    },
    prepare(
      ctx: TrainContext<ForwardModel>,
      samples: RawSample[],
    ): Promise<SftBatch> {
      return Promise.resolve(buildSftBatch(samples, {
        modelConfig: ctx.model.config,
        packing: cfg.training.packing,
        padId: init.tokenizer.specialIds.pad,
      }));
    },
    loss(ctx: TrainContext<ForwardModel>, b: SftBatch): VariantLoss {
      ctx.setPass({
        pass: 0,
        nPasses: 1,
        gradRecorded: true,
        ...packingTrace(b.collated),
      });
      const loss = sftForwardLoss(ctx.model, b);
      ctx.metrics.sum("train/supervised_tokens", b.supervised);
      return { loss, metrics: { "loss/ce": loss } };
    },
    dispose: disposeSftBatch,
  };
}
