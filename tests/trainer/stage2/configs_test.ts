import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../../trainer/config/mod.ts";
import { stage2Knobs } from "../../../trainer/config/knobs.ts";

const dir = fileURLToPath(
  new URL("../../../configs/stage2_ab/", import.meta.url),
);

Deno.test("shipped Stage-2 configs load, select the variant and warm-start from Stage 1", async () => {
  const expected: Record<string, string[]> = {
    "a_only.yaml": ["A"],
    "b_only.yaml": ["B"],
    "ab_mixed.yaml": ["A", "A", "B"],
  };
  for (const [file, pattern] of Object.entries(expected)) {
    const cfg = await loadConfig(join(dir, file));
    assert.equal(cfg.custom.trainer_variant, "stage2_ab_training", file);
    assert.deepEqual(
      cfg.custom.extra.stage2_ab.schedule.pattern,
      pattern,
      file,
    );
    assert.equal(cfg.model.checkpoint, null);
    assert.equal(
      cfg.model.warm_start_config,
      join(dir, "..", "stage1_sft.yaml"),
    );
    const stage1 = await loadConfig(cfg.model.warm_start_config!);
    assert.equal(stage1.custom.trainer_variant, "sft");
    const knobs = stage2Knobs(cfg);
    assert.ok(knobs.nSoftctxIter >= 1);
    if (pattern.includes("B")) {
      assert.equal(
        knobs.decodeMode,
        "greedy",
        `${file}: greedy keeps runs reproducible`,
      );
    }
  }
});

Deno.test("an unknown Stage-2 key fails fast", async () => {
  const tmp = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(
      tmp,
      "custom:\n  trainer_variant: stage2_ab_training\n  extra:\n    stage2_ab:\n      n_softctx_iters: 2\n",
    );
    await assert.rejects(() => loadConfig(tmp), /n_softctx_iters/);
  } finally {
    await Deno.remove(tmp);
  }
});
