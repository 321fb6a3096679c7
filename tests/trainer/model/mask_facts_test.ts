/**
 * The trace reads the attention segments off the masks the compute
 * materializes: block-causal masks give back their segments (batched and
 * chunked plans), a mask planned without the segment ids gives one
 * segment per attention block, and a mask that is not block-causal is
 * reported rather than read as segments.
 */
import assert from "node:assert/strict";
import { attentionPlan } from "../../../trainer/model/attention.ts";
import { maskSegments } from "../../../trainer/model/mask_facts.ts";
import { MASK_NEG } from "../../../trainer/model/ops.ts";
import {
  segmentsFromRow0,
  segmentSpans,
} from "../../../trainer/common/segments.ts";

function row0(lengths: number[]): Int32Array {
  return Int32Array.from(lengths.flatMap((n) => [...Array(n).keys()]));
}

Deno.test("maskSegments: a packed row's block-causal mask gives back row 0's segments (batched plan)", () => {
  const r = row0([3, 4, 2]);
  const plan = attentionPlan(1, 9, 0, null, [segmentsFromRow0(r)], [
    segmentSpans(r),
  ]);
  assert.equal(plan.kind, "batched");
  assert.deepEqual(maskSegments(plan, 1, 9), {
    segments: [[[0, 3], [3, 4], [7, 2]]],
    problem: null,
  });
  // planned without the segment ids: one causal segment over the row
  const blind = attentionPlan(1, 9, 0, null, null, [segmentSpans(r)]);
  assert.deepEqual(maskSegments(blind, 1, 9).segments, [[[0, 9]]]);
});

Deno.test("maskSegments: chunked plans (long packed rows) too, per batch row", () => {
  const lens = [100, 150, 60, 90];
  const r = row0(lens);
  const T = r.length;
  const ids = segmentsFromRow0(r);
  const spans = segmentSpans(r);
  const plan = attentionPlan(2, T, 0, null, [ids, ids], [spans, spans]);
  assert.equal(plan.kind, "chunked");
  const got = maskSegments(plan, 2, T);
  assert.equal(got.problem, null);
  assert.deepEqual(got.segments, [spans, spans]);
  // without the ids the masks are causal over each block of segments
  const blind = attentionPlan(2, T, 0, null, null, [spans, spans]);
  const b = maskSegments(blind, 2, T).segments![0];
  assert.ok(b.length < spans.length, JSON.stringify(b));
  assert.equal(b.reduce((n, [, l]) => n + l, 0), T);
});

Deno.test("maskSegments: a mask that is not block-causal is a problem, not segments", () => {
  const T = 4;
  const causal = () => {
    const m = new Float32Array(T * T).fill(MASK_NEG);
    for (let i = 0; i < T; i++) for (let j = 0; j <= i; j++) m[i * T + j] = 0;
    return m;
  };
  const future = causal();
  future[1 * T + 3] = 0; // query 1 sees key 3
  assert.deepEqual(
    maskSegments({ kind: "batched", T, Tk: T, masks: [future] }, 1, T),
    { segments: null, problem: "batch row 0: query 1 sees the later key 3" },
  );
  const hole = causal();
  hole[3 * T + 1] = MASK_NEG; // query 3 skips key 1
  assert.match(
    maskSegments({ kind: "batched", T, Tk: T, masks: [hole] }, 1, T).problem!,
    /query 3 sees key 0 but not key 1/,
  );
  // a cached forward's keys are not its own tokens: nothing to read
  const cached = attentionPlan(1, 1, 5, null, null, [[[0, 1]]]);
  assert.deepEqual(maskSegments(cached, 1, 1), {
    segments: null,
    problem: null,
  });
});
