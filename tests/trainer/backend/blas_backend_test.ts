/**
 * The blas backend's matmul, its replacements of cpu kernels, its thread
 * pool and its buffer cache: same results as TF.js's cpu backend, the same
 * bits for any thread count, and no reuse of a buffer anybody can still see.
 */
import assert from "node:assert/strict";
import { initRuntime, tf, useBackend } from "../../../trainer/runtime.ts";
import { probeBlas } from "../../../trainer/backend/blas_lib.ts";
import { Pool } from "../../../trainer/backend/pool.ts";
import { gemmCut, JOBS } from "../../../trainer/backend/jobs.ts";
import { expf } from "../../../trainer/backend/fast_math.ts";
import { image, promptIds, tinyModel } from "../model/helpers.ts";

await initRuntime({ log: () => {} });

/** Evaluate `f` on a backend; returns its outputs' values (copies). */
async function on(
  name: "blas" | "cpu",
  f: () => tf.Tensor | tf.Tensor[],
): Promise<Float32Array[]> {
  const prev = tf.getBackend() as "blas" | "wasm" | "cpu";
  assert.ok(await useBackend(name), `backend ${name} must start`);
  try {
    return tf.tidy(() => {
      const out = f();
      return (Array.isArray(out) ? out : [out]).map((t) =>
        Float32Array.from(t.dataSync())
      );
    });
  } finally {
    await useBackend(prev);
  }
}

async function sameOnBoth(
  name: string,
  f: () => tf.Tensor | tf.Tensor[],
  tol = 0,
): Promise<void> {
  const a = await on("blas", f), b = await on("cpu", f);
  a.forEach((x, i) => {
    assert.equal(x.length, b[i].length, `${name}: output ${i} size`);
    for (let j = 0; j < x.length; j++) {
      const d = Math.abs(x[j] - b[i][j]);
      const ok = tol === 0
        ? Object.is(x[j], b[i][j]) || (x[j] !== x[j] && b[i][j] !== b[i][j])
        : d <= tol * Math.max(1, Math.abs(b[i][j]));
      assert.ok(ok, `${name}: output ${i}[${j}] ${x[j]} vs cpu ${b[i][j]}`);
    }
  });
}

const rnd = (shape: number[], seed: number) =>
  tf.randomNormal(shape, 0, 1, "float32", seed);

Deno.test("BLAS matmul equals the cpu kernel: transposes, batch broadcast, row and column chunks", async () => {
  for (
    const [m, k, n] of [[3, 4, 5], [300, 40, 70], [2, 600, 900], [1, 64, 2000]]
  ) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        await sameOnBoth(
          `matmul ${m}x${k}x${n} ${ta} ${tb}`,
          () =>
            tf.matMul(
              rnd(ta ? [k, m] : [m, k], 1),
              rnd(tb ? [n, k] : [k, n], 2),
              ta,
              tb,
            ),
          1e-4, // the cpu kernel sums long rows in float32
        );
      }
    }
  }
  await sameOnBoth(
    "batched matmul with a broadcast operand",
    () => tf.matMul(rnd([3, 20, 30], 3), rnd([1, 30, 10], 4)),
    2e-5,
  );
});

Deno.test("replaced cpu kernels give the cpu kernels' results", async () => {
  const x = () => rnd([4, 5, 6], 5);
  await sameOnBoth("broadcast binary ops", () => {
    const a = x(), row = rnd([6], 6), col = rnd([4, 5, 1], 7);
    const mid = rnd([5, 1], 8);
    return [
      tf.add(a, row),
      tf.sub(col, a),
      tf.mul(a, mid),
      tf.div(a, tf.add(tf.abs(row), 1)),
      tf.maximum(a, col),
      tf.minimum(row, a),
      tf.squaredDifference(a, mid),
      tf.mul(a, 3),
    ];
  });
  await sameOnBoth("slices, splits, unstack, pad, transpose", () => {
    const a = x();
    return [
      tf.slice(a, [1, 0, 2], [2, 5, 3]),
      ...tf.split(a, [2, 4], 2),
      ...tf.unstack(a, 1),
      tf.pad(a, [[1, 0], [0, 2], [3, 1]]),
      tf.pad(a, [[0, 1], [0, 0], [1, 1]], 2.5),
      tf.transpose(a, [2, 0, 1]),
      tf.transpose(a, [1, 2, 0]),
    ];
  });
  await sameOnBoth("gather and its gradient (segment sum)", () => {
    const table = rnd([7, 3], 9);
    const ids = tf.tensor1d([3, 3, 0, 6, 3], "int32");
    return [
      tf.gather(table, ids),
      tf.unsortedSegmentSum(rnd([5, 3], 10), ids, 7),
    ];
  });
  await sameOnBoth("exp, sigmoid, softmax", () => {
    const a = tf.mul(x(), 10);
    return [tf.exp(a), tf.sigmoid(a), tf.softmax(a)];
  }, 2e-7);
  await sameOnBoth("sums and maxima over leading or trailing axes", () => {
    const a = x();
    return [
      tf.sum(a, 0),
      tf.sum(a, [0, 1], true),
      tf.sum(a, -1),
      tf.sum(a),
      tf.max(a, -1, true),
      tf.max(a, [1, 2]),
      tf.max(a, 0),
    ];
  }, 1e-6);
});

Deno.test("expf is within one float32 ulp of Math.exp", () => {
  const f = new Float32Array(2);
  for (let i = -2000; i <= 2000; i++) {
    const x = Math.fround(i * 0.0443);
    f[0] = Math.exp(x);
    f[1] = expf(x);
    const ulp = Math.max(Math.abs(f[0]) * 2 ** -23, 2 ** -149);
    assert.ok(Math.abs(f[0] - f[1]) <= ulp, `exp(${x}): ${f[1]} vs ${f[0]}`);
  }
  assert.equal(Math.fround(expf(-1e9)), 0);
  assert.equal(Math.fround(expf(1e9)), Infinity);
  assert.ok(Number.isNaN(expf(NaN)));
});

Deno.test("a job gives the same bits on one thread and on several", () => {
  const p = probeBlas();
  assert.ok(p.ok, "BLAS must load here");
  const sab = (n: number) => new Float32Array(new SharedArrayBuffer(4 * n));
  const m = 700, k = 96, n = 130;
  const A = sab(m * k).map(() => Math.random() - 0.5);
  const B = sab(k * n).map(() => Math.random() - 0.5);
  const args = (C: Float32Array) => ({
    A,
    B,
    C,
    m,
    n,
    k,
    tA: false,
    tB: false,
    batchA: 1,
    batchB: 1,
    beta: 0,
    ...gemmCut(m, n, k),
  });
  const one = sab(m * n), three = sab(m * n);
  const units = gemmCut(m, n, k).per;
  assert.ok(units > 2, "the product is cut into several chunks");
  JOBS.gemm(args(one), 0, units, p.lib.sgemm);
  new Pool(3, p.lib.sgemm, p.lib.path).run("gemm", args(three), units, 1e9);
  assert.ok(one.every((v, i) => Object.is(v, three[i])), "bitwise equal");
  // and the chunked product is the product
  const whole = new Float32Array(m * n);
  p.lib.sgemm(false, false, m, n, k, 1, A, 0, k, B, 0, n, 0, whole, 0, n);
  let worst = 0;
  for (let i = 0; i < whole.length; i++) {
    worst = Math.max(worst, Math.abs(whole[i] - one[i]));
  }
  assert.ok(worst < 1e-5, `chunked vs whole ${worst}`);
});

Deno.test("a worker's failure surfaces as an error naming the job", () => {
  const p = probeBlas();
  assert.ok(p.ok);
  const pool = new Pool(2, p.lib.sgemm, p.lib.path);
  const sab = new Float32Array(new SharedArrayBuffer(4 * 64));
  // rmsNorm without its weights throws on every unit, here and in the worker
  assert.throws(
    () =>
      pool.run("rmsNorm", { x: sab, y: sab, rstd: sab, D: 1, eps: 0 }, 64, 1e9),
    /TypeError|worker failed in rmsNorm/,
  );
});

Deno.test("buffer cache: data read before dispose stays intact, reused buffers start at zero", async () => {
  const prev = tf.getBackend() as "blas" | "wasm" | "cpu";
  assert.ok(await useBackend("blas"));
  try {
    // two outputs of this backend (cacheable buffers), released
    const a = tf.add(rnd([256, 64], 11), 1), a2 = tf.add(rnd([256, 64], 14), 2);
    const seen = a.dataSync();
    const copy = Float32Array.from(seen);
    tf.dispose([a, a2]);
    // same-size outputs now reuse those buffers
    const b = tf.mul(rnd([256, 64], 12), 0);
    const c = tf.unsortedSegmentSum(
      rnd([256, 64], 13),
      tf.tensor1d(new Int32Array(256), "int32"),
      256,
    );
    assert.deepEqual(seen, copy, "a read-out array is the caller's own");
    assert.ok(b.dataSync().every((v) => v === 0));
    // rows 1.. of the segment sum received nothing: zero, not old data
    assert.ok(c.dataSync().subarray(64).every((v) => v === 0));
    tf.dispose([b, c]);
  } finally {
    await useBackend(prev);
  }
});

Deno.test("a training step's gradients are the same bits with one thread and with three", async () => {
  const prev = tf.getBackend() as "blas" | "wasm" | "cpu";
  assert.ok(await useBackend("blas"));
  const backend = tf.backend() as unknown as { pool: Pool };
  const original = backend.pool;
  const p = probeBlas();
  assert.ok(p.ok);
  const model = await tinyModel(9);
  const ids = promptIds(4, 40, 50);
  const step = () =>
    tf.tidy(() => {
      const input = tf.tensor2d(ids, [1, ids.length], "int32");
      const { grads } = tf.variableGrads(() => {
        const { logits } = model.forward({
          inputIds: input,
          pixelValues: image(2),
          imageGridThw: [[1, 8, 8]],
        });
        return tf.sum(tf.square(logits)) as tf.Scalar;
      });
      return Object.values(grads).map((g) => Float32Array.from(g.dataSync()));
    });
  try {
    const runs = [1, 3].map((threads) => {
      backend.pool = new Pool(threads, p.lib.sgemm, p.lib.path);
      return step();
    });
    runs[0].forEach((g, i) =>
      assert.ok(g.every((v, j) => Object.is(v, runs[1][i][j])), `grad ${i}`)
    );
  } finally {
    backend.pool = original;
    model.dispose();
    await useBackend(prev);
  }
});
