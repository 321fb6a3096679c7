import assert from "node:assert/strict";
import { expectedRolloutSeedBase } from "../../../audit/trace/seed.ts";
import { deriveRolloutSeedBase } from "../../../trainer/rollout/seed.ts";
import { Rng } from "../../../trainer/common/rng.ts";

Deno.test("expectedRolloutSeedBase: the spec formula, exact", () => {
  assert.equal(expectedRolloutSeedBase(42, 0), 42);
  assert.equal(expectedRolloutSeedBase(42, 3), 3000051);
  // wraps at 31 bits: 2147483647 + 1000003 -> 1000002
  assert.equal(expectedRolloutSeedBase(0x7FFFFFFF, 1), 1000002);
  // negative seeds follow two's complement like Python's &
  assert.equal(expectedRolloutSeedBase(-1, 0), 0x7FFFFFFF);
});

Deno.test("the audit's seed formula and the trainer's agree on every input tried", () => {
  const rng = Rng.fromSeed(7);
  const seeds = [0, 1, 17, 42, -1, -17, 0x7FFFFFFF, 2 ** 40, -(2 ** 40)];
  const steps = [0, 1, 2, 3, 999, 1000003, 2 ** 31, 2 ** 40];
  for (let i = 0; i < 200; i++) {
    seeds.push(rng.int(-(2 ** 31), 2 ** 31));
    steps.push(rng.int(0, 2 ** 31));
  }
  for (const s of seeds) {
    for (const g of steps) {
      assert.equal(
        expectedRolloutSeedBase(s, g),
        deriveRolloutSeedBase(s, g),
        `seed ${s}, step ${g}`,
      );
    }
  }
});
