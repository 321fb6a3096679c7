import assert from "node:assert/strict";
import { join } from "node:path";
import {
  deterministicPart,
  LogAccumulator,
  MetricsWriter,
  WindowMetrics,
} from "../../../trainer/loop/metrics.ts";

Deno.test("window metrics: mean, sum and set reductions; mixing kinds is an error", () => {
  const w = new WindowMetrics();
  w.mean("loss", 2);
  w.mean("loss", 4);
  w.sum("count", 3);
  w.sum("count", 5);
  w.set("temp", 1);
  w.set("temp", 0.5);
  assert.deepEqual(w.flush(), { count: 8, loss: 3, temp: 0.5 });
  assert.deepEqual(w.flush(), {});
  w.mean("x", 1);
  assert.throws(() => w.sum("x", 1), /metric x reported as both mean and sum/);
});

Deno.test("window facts: one exact record per line kind, kept out of the averaged values", () => {
  const w = new WindowMetrics();
  w.mean("loss", 1);
  w.fact("rollout", "rollout/seed_base", 17);
  w.fact("rollout", "rollout/greedy", 1);
  w.fact("rollout", "rollout/seed_base", 2000023); // last value wins
  w.fact("other", "x", 5);
  assert.deepEqual(w.flush(), { loss: 1 });
  const facts = w.flushFacts();
  assert.deepEqual([...facts.keys()], ["rollout", "other"]);
  assert.equal(
    JSON.stringify(facts.get("rollout")), // name order
    '{"rollout/greedy":1,"rollout/seed_base":2000023}',
  );
  assert.deepEqual(facts.get("other"), { x: 5 });
  assert.equal(w.flushFacts().size, 0);
});

Deno.test("a NaN loss stays NaN instead of being averaged away", () => {
  const w = new WindowMetrics();
  w.mean("loss", 1);
  w.mean("loss", NaN);
  w.mean("loss", 3);
  assert.ok(Number.isNaN(w.flush().loss));
});

Deno.test("log accumulator state round-trips through JSON exactly", () => {
  const a = new LogAccumulator();
  a.add({ loss: 0.1 + 0.2, lr: 1e-3 });
  const b = new LogAccumulator();
  b.restore(JSON.parse(JSON.stringify(a.state())));
  a.add({ loss: 1 / 3, lr: 2e-3 });
  b.add({ loss: 1 / 3, lr: 2e-3 });
  assert.deepEqual(b.flush(), a.flush());
});

Deno.test("metrics.jsonl: timing kept apart; resume truncation drops later and torn lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const m = new MetricsWriter(dir);
    for (const step of [1, 2, 3]) {
      await m.append({
        step,
        kind: "train",
        values: { loss: step },
        timing: { elapsed_s: step * 0.1 },
      });
    }
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), '{"step":4,"ki', {
      append: true,
    });
    await m.truncateAfter(2);
    const lines = (await Deno.readTextFile(m.path)).trim().split("\n");
    assert.deepEqual(lines.map(deterministicPart), [
      '{"step":1,"kind":"train","loss":1}',
      '{"step":2,"kind":"train","loss":2}',
    ]);
    assert.equal(JSON.parse(lines[0]).timing.elapsed_s, 0.1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
