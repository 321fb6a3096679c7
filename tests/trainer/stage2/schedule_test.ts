import assert from "node:assert/strict";
import {
  bufferSourceFor,
  type Channel,
  channelForStep,
  planStep,
} from "../../../trainer/stage2/schedule.ts";

const AAB: Channel[] = ["A", "A", "B"];

Deno.test("channel follows pattern[step % len]", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((s) => channelForStep(AAB, s)),
    ["A", "A", "B", "A", "A", "B", "A"],
  );
  assert.equal(channelForStep(["B"], 10), "B");
});

Deno.test("channel rejects bad patterns and steps", () => {
  assert.throws(() => channelForStep([], 0), /non-empty/);
  assert.throws(
    () => channelForStep(["A", "C" as Channel], 0),
    /pattern\[1\] is "C"/,
  );
  assert.throws(() => channelForStep(AAB, -1), /non-negative/);
  assert.throws(() => channelForStep(AAB, 1.5), /non-negative/);
});

Deno.test("plan is the same for every micro-batch of a window and after resume", () => {
  // Resume: a plan computed from the restored step alone equals the plan of
  // an uninterrupted run at that step (no hidden scheduler state).
  const uninterrupted = Array.from(
    { length: 9 },
    (_, s) =>
      planStep({
        pattern: AAB,
        globalStep: s,
        windowSize: 4,
      }),
  );
  const resumed = Array.from(
    { length: 4 },
    (_, i) =>
      planStep({
        pattern: AAB,
        globalStep: 5 + i,
        windowSize: 4,
      }),
  );
  assert.deepEqual(resumed, uninterrupted.slice(5));
  assert.equal(uninterrupted[2].channel, "B");
  assert.equal(uninterrupted[2].freshRollouts, true);
  assert.equal(uninterrupted[0].freshRollouts, false);
});

Deno.test("buffer reuse forces Channel B regardless of pattern", () => {
  const buf = { enabled: true, mSteps: 3 };
  const plans = Array.from(
    { length: 8 },
    (_, s) =>
      planStep({
        pattern: ["B", "A"],
        globalStep: s,
        windowSize: 2,
        rolloutBuffer: buf,
      }),
  );
  // step 0 fresh B; 1,2 reuse (pattern says A at 1); 3 is A; 4 fresh; 5,6 reuse; 7 A
  assert.deepEqual(plans.map((p) => p.channel), [
    "B",
    "B",
    "B",
    "A",
    "B",
    "B",
    "B",
    "A",
  ]);
  assert.deepEqual(plans.map((p) => p.bufferReuse), [
    false,
    true,
    true,
    false,
    false,
    true,
    true,
    false,
  ]);
  assert.equal(plans[1].patternChannel, "A");
  assert.equal(plans[2].bufferSourceStep, 0);
  assert.equal(plans[6].bufferSourceStep, 4);
  assert.equal(plans[4].freshRollouts, true);
});

Deno.test("buffer disabled or m_steps 1 never reuses; bad m_steps rejected", () => {
  for (let s = 0; s < 6; s++) {
    assert.equal(
      bufferSourceFor(["B"], { enabled: false, mSteps: 4 }, s),
      null,
    );
    assert.equal(bufferSourceFor(["B"], { enabled: true, mSteps: 1 }, s), null);
  }
  assert.throws(
    () => bufferSourceFor(["B"], { enabled: true, mSteps: 0 }, 0),
    /m_steps/,
  );
  assert.throws(
    () =>
      planStep({
        pattern: AAB,
        globalStep: 0,
        windowSize: 0,
      }),
    /window size/,
  );
});
