/**
 * The trace reads the attention segments off the attention blocks the
 * compute executes: block-causal blocks give back their segments (batched
 * and chunked plans), a plan built without the segment ids gives one
 * causal segment per row, and blocks that are not block-causal (a later
 * key, a hole, a query in no block or in two, a key outside the block)
 * are reported rather than read as segments.
 */
import assert from "node:assert/strict";
import {
  type AttentionBlock,
  type AttentionPlan,
  attentionPlan,
} from "../../../trainer/model/attention.ts";
import { maskSegments } from "../../../trainer/model/mask_facts.ts";
import {
  segmentsFromRow0,
  segmentSpans,
} from "../../../trainer/common/segments.ts";

function row0(lengths: number[]): Int32Array {
  return Int32Array.from(lengths.flatMap((n) => [...Array(n).keys()]));
}

Deno.test("maskSegments: a packed row's block-causal mask gives back row 0's segments (batched plan)", () => {
  const r = row0([3, 4, 2]);
  const plan = attentionPlan(1, 9, 0, null, [segmentsFromRow0(r)]);
  assert.equal(plan.kind, "batched");
  assert.deepEqual(maskSegments(plan), {
    segments: [[[0, 3], [3, 4], [7, 2]]],
    problem: null,
  });
  // planned without the segment ids: one causal segment over the row
  const blind = attentionPlan(1, 9, 0, null, null);
  assert.deepEqual(maskSegments(blind).segments, [[[0, 9]]]);
});

Deno.test("maskSegments: chunked plans (long packed rows) too, per batch row; without ids, causal over the whole row", () => {
  const lens = [100, 150, 60, 90];
  const r = row0(lens);
  const T = r.length;
  const ids = segmentsFromRow0(r);
  const spans = segmentSpans(r);
  const plan = attentionPlan(2, T, 0, null, [ids, ids]);
  assert.equal(plan.kind, "chunked");
  const got = maskSegments(plan);
  assert.equal(got.problem, null);
  assert.deepEqual(got.segments, [spans, spans]);
  // without the ids neither the block partition nor the pairs know the
  // segments: one causal block per row, on either compute path
  const blind = attentionPlan(2, T, 0, null, null);
  assert.equal(blind.blocks.length, 2);
  assert.deepEqual(maskSegments(blind).segments, [[[0, T]], [[0, T]]]);
});

/** A one-row plan of hand-made blocks over T tokens. */
function handPlan(
  T: number,
  blocks: Omit<AttentionBlock, "b">[],
): AttentionPlan {
  return {
    kind: "chunked",
    B: 1,
    T,
    Tk: T,
    blocks: blocks.map((bl) => ({ b: 0, ...bl })),
  };
}

function causal(T: number): Uint8Array {
  const m = new Uint8Array(T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j <= i; j++) m[i * T + j] = 1;
  return m;
}

Deno.test("maskSegments: blocks that are not block-causal are a problem, not segments", () => {
  const T = 4;
  const whole = (allowed: Uint8Array | null) =>
    handPlan(T, [{ q0: 0, qLen: T, k0: 0, kLen: T, allowed }]);
  const future = causal(T);
  future[1 * T + 3] = 1; // query 1 sees key 3
  assert.deepEqual(maskSegments(whole(future)), {
    segments: null,
    problem: "batch row 0: query 1 sees the later key 3",
  });
  const hole = causal(T);
  hole[3 * T + 1] = 0; // query 3 skips key 1
  assert.match(
    maskSegments(whole(hole)).problem!,
    /query 3 sees key 0 but not key 1/,
  );
  // a block without flags lets every pair attend: later keys too
  assert.match(
    maskSegments(whole(null)).problem!,
    /query 0 sees the later key 1/,
  );
  // the fused kernel attends only inside a query's block: two causal blocks
  // are two segments, a query left out of every block is reported
  const two = handPlan(T, [
    { q0: 0, qLen: 2, k0: 0, kLen: 2, allowed: causal(2) },
    { q0: 2, qLen: 2, k0: 2, kLen: 2, allowed: causal(2) },
  ]);
  assert.deepEqual(maskSegments(two).segments, [[[0, 2], [2, 2]]]);
  const gap = handPlan(T, [
    { q0: 0, qLen: 2, k0: 0, kLen: 2, allowed: causal(2) },
    { q0: 3, qLen: 1, k0: 3, kLen: 1, allowed: null },
  ]);
  assert.match(maskSegments(gap).problem!, /query 2 is in no attention block/);
  const twice = handPlan(T, [
    { q0: 0, qLen: 4, k0: 0, kLen: 4, allowed: causal(4) },
    { q0: 3, qLen: 1, k0: 3, kLen: 1, allowed: null },
  ]);
  assert.match(maskSegments(twice).problem!, /query 3 is in two blocks/);
  // a cached forward's keys are not its own tokens: nothing to read
  const cached = attentionPlan(1, 1, 5, null, null);
  assert.deepEqual(maskSegments(cached), { segments: null, problem: null });
});
