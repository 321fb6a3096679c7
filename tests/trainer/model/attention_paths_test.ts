/**
 * On both compute paths, in one process: the attention segments a forward
 * reports are read off the attention the kernels execute (the fused
 * kernel's blocks on blas, the additive masks on wasm), so they follow the
 * compute, not row 0. With the `attention-ignores-segments` fault the
 * planner drops the segment ids, the compute really attends across the
 * packed samples (the second sample's logits change) and the trace says
 * so; without it each sample gets the logits it gets alone.
 */
import assert from "node:assert/strict";
import { initRuntime, tf, useBackend } from "../../../trainer/runtime.ts";
import { probeBlas } from "../../../trainer/backend/blas_lib.ts";
import { withFault } from "../../../trainer/common/faults.ts";
import {
  type ForwardTraceInfo,
  packedPositionIds,
  Qwen3VLForConditionalGeneration,
  tinyConfig,
} from "../../../trainer/model/mod.ts";
import { IDS, maxAbsDiff, VOCAB } from "./helpers.ts";

await initRuntime({ log: () => {} });

/** Logits [T * V] of one row and the forward's trace record. */
function run(
  m: Qwen3VLForConditionalGeneration,
  ids: Int32Array,
  pos?: Int32Array,
): { logits: Float32Array; info: ForwardTraceInfo } {
  const seen: ForwardTraceInfo[] = [];
  m.setTracer((r) => seen.push(r));
  const T = ids.length;
  const out = m.forward({
    inputIds: tf.tensor2d(ids, [1, T], "int32"),
    ...(pos ? { positionIds: tf.tensor3d(pos, [4, 1, T], "int32") } : {}),
  });
  m.setTracer(undefined);
  const logits = out.logits.dataSync().slice() as Float32Array;
  out.logits.dispose();
  return { logits, info: seen[0] };
}

/** One packed row of two text samples of `lens` tokens, on the active path. */
async function check(lens: number[]): Promise<void> {
  const m = Qwen3VLForConditionalGeneration.create(tinyConfig(VOCAB, IDS), 3);
  const segs = lens.map((n, k) =>
    Int32Array.from({ length: n }, (_, i) => 10 + ((i * 7 + k) % 80))
  );
  const row = new Int32Array(lens[0] + lens[1]);
  row.set(segs[0]);
  row.set(segs[1], lens[0]);
  const T = row.length;
  const pos = packedPositionIds(
    m.config,
    segs.map((s) => ({ inputIds: s, imageGridThw: [] })),
  );
  const where = `${tf.getBackend()}, T=${T}`;
  const alone = run(m, segs[1]).logits;
  const second = (l: Float32Array) => l.subarray(lens[0] * VOCAB);

  const clean = run(m, row, pos);
  assert.deepEqual(
    clean.info.attentionSegments,
    [[[0, lens[0]], [lens[0], lens[1]]]],
    where,
  );
  assert.equal(clean.info.attentionMaskProblem, null, where);
  assert.ok(maxAbsDiff(second(clean.logits), alone) < 1e-4, where);

  const blind = await withFault(
    "attention-ignores-segments",
    () => run(m, row, pos),
  );
  assert.deepEqual(blind.info.row0, clean.info.row0, where);
  assert.deepEqual(blind.info.attentionSegments, [[[0, T]]], where);
  assert.ok(
    maxAbsDiff(second(blind.logits), alone) > 1e-3,
    `${where}: the compute attends across the samples`,
  );
  m.dispose();
}

Deno.test("attention segments are read off what the kernels execute, on the blas and the wasm path, with and without the attention fault", async () => {
  const paths: ("blas" | "wasm")[] = ["wasm"];
  const blas = probeBlas();
  if (blas.ok) paths.unshift("blas");
  else console.error(`blas path not checked here: ${blas.reason}`);
  const prev = tf.getBackend() as "blas" | "wasm";
  try {
    for (const path of paths) {
      assert.ok(await useBackend(path), `${path} must start`);
      // batched plan (short row) and chunked plan (several wasm groups)
      await check([12, 9]);
      await check([150, 130]);
    }
  } finally {
    await useBackend(prev);
  }
});
