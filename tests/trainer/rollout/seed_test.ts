import assert from "node:assert/strict";
import {
  deriveRequestSeed,
  deriveRolloutSeedBase,
} from "../../../trainer/rollout/seed.ts";

Deno.test("seed base matches the spec formula for small steps [1.7.5]", () => {
  assert.equal(deriveRolloutSeedBase(42, 0), 42);
  assert.equal(deriveRolloutSeedBase(42, 1), 42 + 1000003);
  assert.equal(deriveRolloutSeedBase(7, 5), 7 + 5 * 1000003);
});

Deno.test("seed base is exact past 2^31 and 2^53 (Python semantics) [1.7.5]", () => {
  // Values computed with Python: (seed + step * 1000003) & 0x7FFFFFFF
  assert.equal(deriveRolloutSeedBase(42, 3000), 852525394);
  assert.equal(deriveRolloutSeedBase(0, 2147), 2147006441);
  assert.equal(deriveRolloutSeedBase(0, 2148), 522796);
  // step * 1000003 > 2^53: a float product would be rounded. Expected value
  // from Python: (123 + (2**50 + 12345) * 1000003) & 0x7FFFFFFF
  const step = 2 ** 50 + 12345;
  assert.equal(deriveRolloutSeedBase(123, step), 1607618918);
  // Negative case: the naive JS expression gives a different (wrong) value.
  assert.notEqual((123 + step * 1000003) & 0x7FFFFFFF, 1607618918);
});

Deno.test("negative seeds follow two's-complement like Python", () => {
  // Python: (-5 + 0) & 0x7FFFFFFF == 2147483643
  assert.equal(deriveRolloutSeedBase(-5, 0), 2147483643);
});

Deno.test("seed base is deterministic and always in [0, 2^31)", () => {
  for (let s = 0; s < 200; s += 13) {
    const a = deriveRolloutSeedBase(99, s * 7919);
    assert.equal(a, deriveRolloutSeedBase(99, s * 7919));
    assert.ok(a >= 0 && a <= 0x7FFFFFFF);
  }
});

Deno.test("seed base rejects inexact or negative inputs", () => {
  assert.throws(() => deriveRolloutSeedBase(1.5, 0), /safe integer/);
  assert.throws(() => deriveRolloutSeedBase(1, 2 ** 60), /safe integer/);
  assert.throws(() => deriveRolloutSeedBase(1, -1), />= 0/);
});

Deno.test("per-request seeds are base + index, masked, distinct", () => {
  const base = deriveRolloutSeedBase(42, 3);
  assert.deepEqual(
    [0, 1, 2].map((i) => deriveRequestSeed(base, i)),
    [base, base + 1, base + 2],
  );
  assert.equal(deriveRequestSeed(0x7FFFFFFF, 1), 0);
  assert.throws(() => deriveRequestSeed(base, -1), /request index/);
});
