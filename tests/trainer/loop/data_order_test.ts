import assert from "node:assert/strict";
import {
  DataOrder,
  epochPermutation,
} from "../../../trainer/loop/data_order.ts";
import { Rng, RngStreams } from "../../../trainer/common/rng.ts";

Deno.test("each epoch is a seeded permutation; epochs and seeds differ", () => {
  const p0 = epochPermutation(20, 7, 0);
  assert.deepEqual(
    [...p0].sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i),
  );
  assert.deepEqual(epochPermutation(20, 7, 0), p0);
  assert.notDeepEqual(epochPermutation(20, 7, 1), p0);
  assert.notDeepEqual(epochPermutation(20, 8, 0), p0);
});

Deno.test("the data cursor resumes exactly, across an epoch boundary", () => {
  const straight = new DataOrder(7, 3).take(20);
  const a = new DataOrder(7, 3);
  const first = a.take(9);
  const resumed = new DataOrder(7, 3);
  resumed.seek(JSON.parse(JSON.stringify(a.position())));
  assert.deepEqual([...first, ...resumed.take(11)], straight);
});

Deno.test("a cursor from a different dataset size is rejected", () => {
  const o = new DataOrder(5, 1);
  assert.throws(
    () => o.seek({ epoch: 0, offset: 9 }),
    /does not fit a dataset of 5/,
  );
});

Deno.test("RNG streams restore to the same future draws", () => {
  const s = new RngStreams(42);
  s.get("a").float();
  s.get("b").int(0, 9);
  const saved = JSON.parse(JSON.stringify(s.state()));
  const want = [s.get("a").float(), s.get("b").int(0, 1000)];
  const t = new RngStreams(42);
  t.restore(saved);
  assert.deepEqual([t.get("a").float(), t.get("b").int(0, 1000)], want);
  assert.notEqual(
    new RngStreams(42).get("a").float(),
    new RngStreams(42).get("b").float(),
  );
  assert.throws(() => Rng.fromState([1, 2]), /4 integers/);
});
