import assert from "node:assert/strict";
import { learningRate, lrFactor } from "../../../trainer/loop/schedule.ts";

const close = (a: number, b: number) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

Deno.test("warmup ramps linearly from 0; cosine decays to 0 at max_steps", () => {
  const o = {
    kind: "cosine" as const,
    baseLr: 1e-3,
    warmupSteps: 4,
    maxSteps: 14,
  };
  close(learningRate(0, o), 0);
  close(learningRate(2, o), 0.5e-3);
  close(learningRate(4, o), 1e-3);
  close(learningRate(9, o), 0.5e-3); // halfway through the decay: cos(pi/2)
  close(learningRate(14, o), 0);
});

Deno.test("linear and constant schedules", () => {
  const lin = {
    kind: "linear" as const,
    baseLr: 2,
    warmupSteps: 0,
    maxSteps: 10,
  };
  close(learningRate(0, lin), 2);
  close(learningRate(5, lin), 1);
  close(learningRate(12, lin), 0);
  const con = {
    kind: "constant" as const,
    baseLr: 2,
    warmupSteps: 2,
    maxSteps: 10,
  };
  close(learningRate(1, con), 1);
  close(learningRate(7, con), 2);
});

Deno.test("an unknown scheduler name is rejected", () => {
  assert.throws(
    () =>
      lrFactor(5, {
        kind: "step" as "linear",
        baseLr: 1,
        warmupSteps: 0,
        maxSteps: 9,
      }),
    /training.lr_scheduler must be cosine, linear or constant/,
  );
});
