/**
 * The recorder's own observations: token ids read back from the fed rows,
 * soft rows recomputed in float64 from the previous pass's logits at p-1,
 * linear digests, and tape connectivity of the fed embeddings. Small
 * hand-made tensors; the real model and variant are covered by
 * tests/trainer/stage2/variant_test.ts and the self-test.
 */
import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  digest,
  ForwardObserver,
  onTape,
  softRow,
} from "../../../trainer/trace/observe.ts";
import type { ForwardContext } from "../../../trainer/trace/schema.ts";
import type { ForwardTensors } from "../../../trainer/trace/tracer.ts";
import { embeddingLookup } from "../../../trainer/model/ops.ts";

await initRuntime({ log: () => {} });

const V = 8, H = 4, T = 5;
const COORD = [5, 6, 7];
const table = tf.variable(
  tf.randomNormal([V, H], 0, 1, "float32", 3) as tf.Tensor2D,
);
/** ids of one row: 2 coord tokens, at positions 2 and 4. */
const IDS = [1, 2, 6, 3, 5];

const ctx = (pass: number, nPasses = 2): ForwardContext => ({
  globalStep: 0,
  channel: "A",
  purpose: "train",
  microBatch: 0,
  pass,
  nPasses,
  gradRecorded: pass === nPasses - 1,
  training: true,
  packed: false,
  segmentLengths: null,
});

function tensors(embeds: tf.Tensor3D, logits: tf.Tensor3D): ForwardTensors {
  return {
    inputsEmbeds: embeds,
    inputIds: null,
    logits,
    embedTable: table,
    positionIds: null,
    pixelValues: null,
    imageGridThw: [],
  };
}

/** The embedding lookup the model uses (its gradient runs on wasm). */
const embed = (ids: number[]) =>
  tf.reshape(embeddingLookup(table, Int32Array.from(ids)), [
    1,
    ids.length,
    H,
  ]) as tf.Tensor3D;

/** Digests equal up to float32 rounding. */
function near(a: number[] | null, b: number[] | null): boolean {
  return a !== null && b !== null &&
    a.every((v, i) => Math.abs(v - b[i]) <= 1e-6 * Math.max(a[0], b[0]));
}

Deno.test("digest is linear in the row (components 1, 2) and exact on equal rows", () => {
  const a = new Float32Array([1, -2, 3, 0.5]),
    b = new Float32Array([0.25, 4, -1, 2]);
  const sum = a.map((v, i) => v + b[i]);
  const [da, db, ds] = [digest(a, 0, 4), digest(b, 0, 4), digest(sum, 0, 4)];
  for (const k of [1, 2]) assert.ok(Math.abs(ds[k] - (da[k] + db[k])) < 1e-7);
  assert.deepEqual(digest(a, 0, 4), digest(Float32Array.from(a), 0, 4));
  assert.equal(da[0], Number(Math.sqrt(1 + 4 + 9 + 0.25).toPrecision(9)));
});

Deno.test("softRow equals softmax(z / T) @ E(coord_ids) computed by TF", () => {
  const z = new Float32Array([0.5, -1, 2]);
  const data = table.dataSync() as Float32Array;
  const got = softRow(z, data, H, COORD, 0.7);
  const want = tf.tidy(() =>
    tf.matMul(
      tf.softmax(tf.div(tf.tensor2d(z, [1, 3]), 0.7)),
      tf.gather(table, tf.tensor1d(COORD, "int32")),
    ).dataSync()
  );
  for (let h = 0; h < H; h++) assert.ok(Math.abs(got[h] - want[h]) < 1e-6);
});

Deno.test("onTape: connected on the active tape, not for a tensor made before it, null without one", () => {
  const before = embed([1, 2]);
  assert.equal(onTape(before, table), null);
  tf.variableGrads(() => {
    const fresh = embed([1, 2]);
    assert.equal(onTape(fresh, table), true);
    assert.equal(onTape(before.clone(), table), false);
    return tf.add(tf.sum(fresh), tf.sum(before)) as tf.Scalar;
  }, [table]);
});

Deno.test("observer: ids read back on pass 0, digests of fed/recomputed/base rows on pass 1, foreign rows, tape", () => {
  const obs = new ForwardObserver({
    coordTokenIds: COORD,
    softctxTemperature: 1,
    runDir: null,
  });
  const logits0 = tf.randomNormal([1, T, V], 0, 1, "float32", 9) as tf.Tensor3D;
  const base = embed(IDS);
  const o0 = obs.observe(ctx(0), tensors(base, logits0))!;
  assert.deepEqual(o0.foreignRows, [[]]);
  assert.deepEqual(o0.slots[0].map((s) => [s.p, s.id]), [[2, 6], [4, 5]]);
  assert.equal(o0.embedsOnTape, null);
  // pass 1: slot 2 gets the right soft row, slot 4 keeps its base row, row 1 changes
  const z = logits0.dataSync() as Float32Array;
  const tab = table.dataSync() as Float32Array;
  const soft2 = softRow(COORD.map((c) => z[1 * V + c]), tab, H, COORD, 1);
  const fed = (base.dataSync() as Float32Array).slice();
  fed.set(Float32Array.from(soft2), 2 * H);
  fed[1 * H] += 1;
  const o1 = obs.observe(
    ctx(1),
    tensors(tf.tensor3d(fed, [1, T, H]), logits0),
  )!;
  assert.deepEqual(o1.foreignRows, [[1]]);
  const [s2, s4] = o1.slots[0];
  assert.ok(near(s2.fed, s2.want), JSON.stringify(s2));
  assert.deepEqual(s4.fed, s4.base);
  assert.ok(!near(s4.fed, s4.want));
  // the last pass outside any tape: no connectivity to report
  assert.equal(o1.embedsOnTape, null);
  // a row that is no token's embedding on pass 0
  const odd = fed.slice();
  const o2 = obs.observe(
    { ...ctx(0), microBatch: 1 },
    tensors(tf.tensor3d(odd, [1, T, H]), logits0),
  )!;
  assert.deepEqual(o2.foreignRows, [[1, 2]]);
  assert.deepEqual(o2.slots[0].map((s) => s.p), [4]);
});

Deno.test("observer: a fresh run replaces the replay batch a previous run left; a resumed run keeps its own", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/probe_batch.json`;
  Deno.writeTextFileSync(path, "{}");
  new ForwardObserver({
    coordTokenIds: COORD,
    softctxTemperature: 1,
    runDir: dir,
    resumed: true,
  });
  assert.equal(Deno.readTextFileSync(path), "{}");
  new ForwardObserver({
    coordTokenIds: COORD,
    softctxTemperature: 1,
    runDir: dir,
  });
  assert.throws(() => Deno.statSync(path), Deno.errors.NotFound);
  Deno.removeSync(dir, { recursive: true });
});
