import assert from "node:assert/strict";
import { initRuntime, tf } from "../../trainer/runtime.ts";
import { InputError } from "../../trainer/errors.ts";

Deno.test("runtime picks a backend and runs forward+backward", async () => {
  const info = await initRuntime({ log: () => {} });
  assert.ok(["tensorflow", "blas", "wasm", "cpu"].includes(info.backend));
  // y = sum((x W)^2): dy/dW = 2 x^T (x W), checked against a hand computation.
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  const w = tf.variable(tf.tensor2d([[0.5, -1], [0.25, 2]]));
  const { value, grads } = tf.variableGrads(() =>
    tf.sum(tf.square(tf.matMul(x, w))) as tf.Scalar
  );
  const xw = [[1, 3], [2.5, 5]];
  assert.equal(await value.data().then((d) => d[0]), 1 + 9 + 6.25 + 25);
  const g = await grads[w.name].array() as number[][];
  const want = [
    [2 * (1 * xw[0][0] + 3 * xw[1][0]), 2 * (1 * xw[0][1] + 3 * xw[1][1])],
    [2 * (2 * xw[0][0] + 4 * xw[1][0]), 2 * (2 * xw[0][1] + 4 * xw[1][1])],
  ];
  assert.deepEqual(g, want);
});

/** The start-up line of a fresh process with `env` (initRuntime runs once per process). */
async function backendLine(env: Record<string, string>): Promise<string> {
  const script = `import { initRuntime } from ${
    JSON.stringify(new URL("../../trainer/runtime.ts", import.meta.url).href)
  }; await initRuntime();`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--config",
      new URL("../../deno.json", import.meta.url).pathname,
      script,
    ],
    // the parent may force a path (CI runs the suite once per path)
    env: { STAGE2_BACKEND: "", STAGE2_BLAS: "", ...env, NO_COLOR: "1" },
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  return err.split("\n").find((l) => l.startsWith("backend:")) ?? err;
}

Deno.test("the start-up line names the BLAS path, its library and threads, or why it is not used", async () => {
  const blas = await backendLine({ STAGE2_THREADS: "2" });
  assert.match(blas, /^backend: blas \(.+ at \/.+, 2 threads\)$/);
  const missing = await backendLine({ STAGE2_BLAS: "/nonexistent/libblas.so" });
  assert.match(
    missing,
    /^backend: wasm \(.*STAGE2_BLAS=\/nonexistent\/libblas\.so could not be loaded: .*fix or unset STAGE2_BLAS\)$/,
  );
  const forced = await backendLine({ STAGE2_BACKEND: "wasm" });
  assert.match(forced, /^backend: wasm \(simd=(true|false), threads=1\)$/);
});

/** Runs `fn` with the environment variables `env` set, restoring them after. */
async function withEnv(
  env: Record<string, string>,
  fn: () => Promise<void>,
): Promise<void> {
  const saved = Object.keys(env).map((k) => [k, Deno.env.get(k)] as const);
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  try {
    await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  }
}

Deno.test("a bad thread count or backend name is an input error naming its source", async () => {
  await assert.rejects(
    () => initRuntime({ threads: 0, log: () => {} }),
    (e: Error) =>
      e instanceof InputError &&
      /positive integer, got 0 \(training\.threads\)/.test(e.message),
  );
  await withEnv({ STAGE2_THREADS: "two" }, () =>
    assert.rejects(
      () => initRuntime({ log: () => {} }),
      (e: Error) =>
        e instanceof InputError &&
        /got "two" \(STAGE2_THREADS\)/.test(e.message),
    ));
  await withEnv({ STAGE2_BACKEND: "gpu" }, () =>
    assert.rejects(
      () => initRuntime({ log: () => {} }),
      (e: Error) =>
        e instanceof InputError &&
        /STAGE2_BACKEND=gpu is not one of/.test(e.message),
    ));
});
