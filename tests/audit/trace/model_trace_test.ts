/**
 * The real model's tracer feeding the real recorder: a hand-driven Channel-A
 * micro-batch (3 soft-context passes over one packed row of two image
 * samples, the last inside a gradient tape) must audit clean, and the
 * classic bugs done for real (3-row position ids under packing, a cache
 * carried into a pass, a placeholder row overwritten) must be caught from
 * what the model reported and the recorder observed.
 */
import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  packedPositionIds,
  Qwen3VLForConditionalGeneration,
  tinyConfig,
} from "../../../trainer/model/mod.ts";
import { TraceRecorder } from "../../../trainer/trace/recorder.ts";
import type { KVCache } from "../../../trainer/model/kv_cache.ts";
import { expectedRolloutSeedBase } from "../../../audit/trace/seed.ts";
import { auditRun } from "../../../audit/trace/mod.ts";

const IDS = {
  imageTokenId: 5,
  visionStartTokenId: 3,
  visionEndTokenId: 4,
  imEndTokenId: 2,
};
const VOCAB = 64;
/** Stand-ins for coord tokens: the soft embedding mixes these rows. */
const COORD_IDS = [40, 41, 42, 43, 44, 45];
const N_PASSES = 3;

/** text, <|vision_start|>, 16 image pads (8x8 patches, 2x2 merge), <|vision_end|>, answer. */
function sampleIds(answer: number[]): Int32Array {
  return Int32Array.from([
    10,
    11,
    IDS.visionStartTokenId,
    ...Array(16).fill(IDS.imageTokenId),
    IDS.visionEndTokenId,
    ...answer,
    IDS.imEndTokenId,
  ]);
}

interface Bugs {
  threeRowPositions?: boolean;
  carryCache?: boolean;
  overwritePlaceholder?: boolean;
}

let model: Qwen3VLForConditionalGeneration | undefined;

async function tinyModel() {
  await initRuntime({ log: () => {} });
  return model ??= Qwen3VLForConditionalGeneration.create(
    tinyConfig(VOCAB, IDS),
    11,
  );
}

/** Runs one Channel-A step (1 micro-batch) into a fresh run folder; returns it. */
async function channelAStep(bugs: Bugs = {}): Promise<string> {
  const m = await tinyModel();
  const a = sampleIds([20, 40, 41, 42, 43, 21]);
  const b = sampleIds([22, 23, 44, 45, 40, 41, 24]);
  const T = a.length + b.length;
  const row = new Int32Array(T);
  row.set(a);
  row.set(b, a.length);
  // coord slots: the 4 coord tokens of each answer, in packed-row positions
  const slotsA = [21, 22, 23, 24];
  const slotsB = [22, 23, 24, 25].map((p) => p + a.length);
  const slots = [...slotsA, ...slotsB];
  for (const p of slots) assert.ok(COORD_IDS.includes(row[p]));
  if (bugs.overwritePlaceholder) slots.push(5); // an <|image_pad|> row
  const pos4 = packedPositionIds(m.config, [
    { inputIds: a, imageGridThw: [[1, 8, 8]] },
    { inputIds: b, imageGridThw: [[1, 8, 8]] },
  ]);
  const pixels = tf.randomUniform([128, 384], -1, 1, "float32", 3);
  const grids = [[1, 8, 8], [1, 8, 8]];
  const ids = tf.tensor2d(row, [1, T], "int32");
  const positionIds = bugs.threeRowPositions
    ? tf.tensor3d(pos4.slice(T), [3, 1, T], "int32")
    : tf.tensor3d(pos4, [4, 1, T], "int32");
  const coordEmb = m.embedTokens(
    tf.tensor2d(Int32Array.from(COORD_IDS), [1, COORD_IDS.length], "int32"),
  ).squeeze([0]) as tf.Tensor2D; // [K, H]
  const H = coordEmb.shape[1];
  const slotMask = new Uint8Array(T);
  for (const p of slots) slotMask[p] = 1;
  const maskT = tf.tensor3d(slotMask, [1, T, 1], "bool");

  const dir = await Deno.makeTempDir({ prefix: "stage2-trace-model-" });
  const rec = TraceRecorder.open(dir, {
    level: "full",
    variant: "stage2_ab_training",
    expect: {
      pattern: ["A"],
      nSoftctxIter: N_PASSES,
      gradientAccumulationSteps: 1,
    },
    tapeProbe: () =>
      (tf.engine().state as unknown as { gradientDepth: number })
        .gradientDepth > 0,
    observe: { coordTokenIds: COORD_IDS, softctxTemperature: 1 },
  });
  m.setTracer(rec.modelTracer);
  let prevLogits: tf.Tensor3D | null = null;
  let cache: KVCache | null = null;
  // one pass: a fresh base, soft rows from the previous pass's logits at s-1
  const pass = (p: number) => {
    const base = m.embedTokens(ids); // [1, T, H], fresh every pass
    let actual = base;
    if (prevLogits) {
      // soft embedding at slot s from logits at s-1: softmax(z[s-1, coord]) @ E(coord)
      const shifted = tf.concat([
        tf.zerosLike(prevLogits.slice([0, 0, 0], [1, 1, -1])),
        prevLogits.slice([0, 0, 0], [1, T - 1, -1]),
      ], 1); // [1, T, V]: row s holds logits of s-1
      const coordLogits = tf.gather(
        shifted,
        tf.tensor1d(COORD_IDS, "int32"),
        2,
      );
      const soft = tf.matMul(
        tf.softmax(coordLogits).reshape([T, COORD_IDS.length]),
        coordEmb,
      ).reshape([1, T, H]);
      actual = tf.where(maskT, soft, base) as tf.Tensor3D;
    }
    rec.setContext({
      globalStep: 0,
      channel: "A",
      purpose: "train",
      microBatch: 0,
      pass: p,
      nPasses: N_PASSES,
      gradRecorded: p === N_PASSES - 1,
      training: true,
      packed: true,
      segmentLengths: [[a.length, b.length]],
    });
    return m.forward({
      inputsEmbeds: actual,
      pixelValues: pixels as tf.Tensor2D,
      imageGridThw: grids,
      positionIds: positionIds as tf.Tensor3D,
      ...(bugs.carryCache
        ? { useCache: true, ...(cache ? { pastKeyValues: cache } : {}) }
        : { useCache: false }),
    });
  };
  try {
    for (let p = 0; p < N_PASSES; p++) {
      let out;
      try {
        if (p < N_PASSES - 1 || bugs.carryCache) out = pass(p);
        else {
          // the last pass records gradients, its base included
          const { value, grads } = tf.variableGrads(() => {
            const o = pass(p);
            return tf.sum(o.logits) as tf.Scalar;
          }, [m.param("model.language_model.embed_tokens.weight")]);
          tf.dispose([value, ...Object.values(grads)]);
          break;
        }
      } catch (e) {
        // the model refuses some bugs outright; the trace line is written first
        if (bugs.overwritePlaceholder || bugs.carryCache) break;
        throw e;
      }
      cache = out.pastKeyValues;
      prevLogits?.dispose();
      prevLogits = out.logits;
    }
    rec.setContext(null);
    rec.step({
      globalStep: 0,
      pattern: ["A"],
      channel: "A",
      trainingSeed: 5,
      rolloutSeedBase: null,
      freshRollouts: false,
      bufferReuse: false,
      windowSize: 1,
    });
    rec.end(1);
  } finally {
    m.setTracer(undefined);
    rec.close();
  }
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    "training: { seed: 5, gradient_accumulation_steps: 1, max_steps: 1 }\n" +
      "custom:\n  trainer_variant: stage2_ab_training\n" +
      `  extra: { stage2_ab: { schedule: { pattern: [A] }, n_softctx_iter: ${N_PASSES} } }\n`,
  );
  await Deno.writeTextFile(`${dir}/run_complete.json`, '{"global_step": 1}');
  assert.equal(expectedRolloutSeedBase(5, 0), 5);
  return dir;
}

async function firedIn(dir: string): Promise<string[]> {
  const r = await auditRun(dir);
  await Deno.remove(dir, { recursive: true });
  return [...new Set(r.violations.map((v) => v.invariant))].sort();
}

Deno.test("real model + recorder: a correct Channel-A micro-batch audits clean", async () => {
  const dir = await channelAStep();
  const r = await auditRun(dir);
  assert.deepEqual(r.violations, []);
  assert.equal(r.records.forwards, N_PASSES);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("real model: 3-row position ids under packing are caught", async () => {
  const got = await firedIn(await channelAStep({ threeRowPositions: true }));
  // row 0 is missing, so the model attends across the two samples
  assert.deepEqual(got, [
    "attention-segments",
    "packing-position-ids",
    "row0-segments",
  ]);
});

Deno.test("real model: a cache carried between passes is caught", async () => {
  const got = await firedIn(await channelAStep({ carryCache: true }));
  // the cached forward is also not the pass the sequence expects
  assert.deepEqual(got, ["cache-off", "pass-sequence"]);
});

Deno.test("real model: an overwritten image placeholder row is caught", async () => {
  const got = await firedIn(
    await channelAStep({ overwritePlaceholder: true }),
  );
  // the model then finds one placeholder row short and rejects the
  // forward: the trace holds the rejected call (no mask, no logits)
  // and the micro-batch's passes stop there
  assert.deepEqual(got, [
    "logits-coverage",
    "pass-consistency",
    "pass-sequence",
    "placeholder-invariance",
    "row0-segments",
  ]);
});
