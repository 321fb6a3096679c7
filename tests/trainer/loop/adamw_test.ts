import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import { AdamW } from "../../../trainer/loop/adamw.ts";

await initRuntime({ log: () => {} });

/** Reference AdamW in float64, written out step by step. */
function refAdamW(
  p0: number[],
  grads: number[][],
  lrs: number[],
  o: { b1: number; b2: number; eps: number; wd: number },
): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lrs[s] * o.wd;
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const mh = m[i] / (1 - o.b1 ** t);
      const vh = v[i] / (1 - o.b2 ** t);
      p[i] -= lrs[s] * mh / (Math.sqrt(vh) + o.eps);
    }
  });
  return p;
}

Deno.test("AdamW matches a hand-written float64 reference over 3 steps", () => {
  const o = { b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1 };
  const p0 = [0.5, -1.0, 2.0, 0.25];
  const w = tf.variable(tf.tensor2d(p0, [2, 2]), true, "w");
  const opt = new AdamW([w], {
    beta1: o.b1,
    beta2: o.b2,
    epsilon: o.eps,
    weightDecay: o.wd,
  });
  const grads = [[0.1, -0.2, 0.3, 0.0], [0.05, 0.4, -0.1, 1.0], [
    -0.3,
    0.1,
    0.2,
    -0.5,
  ]];
  const lrs = [0.01, 0.02, 0.005];
  grads.forEach((g, s) => opt.apply({ w: tf.tensor2d(g, [2, 2]) }, lrs[s]));
  const want = refAdamW(p0, grads, lrs, o);
  const got = Array.from(w.dataSync());
  got.forEach((x, i) =>
    assert.ok(Math.abs(x - want[i]) < 1e-6, `${x} vs ${want[i]}`)
  );
  assert.equal(opt.step, 3);
});

Deno.test("AdamW does not decay rank-1 parameters (norm scales, biases)", () => {
  const b = tf.variable(tf.tensor1d([1, 2]), true, "b");
  const opt = new AdamW([b], {
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    weightDecay: 0.5,
  });
  opt.apply({ b: tf.zeros([2]) }, 0.1);
  // zero gradient: the Adam term is 0, so only decay could move it
  assert.deepEqual(Array.from(b.dataSync()), [1, 2]);
});

Deno.test("AdamW state export/import continues bit-for-bit", () => {
  let n = 0;
  const mk = () =>
    tf.variable(tf.tensor2d([0.3, -0.7, 1.1, 0.9], [2, 2]), true, `w${n++}`);
  const opts = { beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.01 };
  // gradients are keyed by the TF.js variable name, as tf.variableGrads gives them
  const g = (k: number, v: tf.Variable) => ({
    [v.name]: tf.tensor2d([0.1 * k, -0.2, 0.3, 0.05 * k], [2, 2]),
  });
  const a = mk();
  const optA = new AdamW([a], opts, ["w"]);
  for (let k = 1; k <= 4; k++) optA.apply(g(k, a), 0.01);

  const b = mk();
  const optB = new AdamW([b], opts, ["w"]);
  optB.apply(g(1, b), 0.01);
  optB.apply(g(2, b), 0.01);
  const saved = optB.exportState();
  const savedW = b.dataSync().slice();
  const c = tf.variable(tf.tensor2d(savedW, [2, 2]), true, "w_resumed");
  const optC = new AdamW([c], opts, ["w"]);
  optC.importState(saved, optB.step);
  optC.apply(g(3, c), 0.01);
  optC.apply(g(4, c), 0.01);
  assert.deepEqual(Array.from(c.dataSync()), Array.from(a.dataSync()));
});

Deno.test("AdamW import rejects state that does not fit the model", () => {
  const w = tf.variable(tf.zeros([2, 2]), true, "w_bad");
  const opt = new AdamW([w], {
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    weightDecay: 0,
  }, ["w"]);
  const bad = new Map([["w.exp_avg", {
    shape: [3],
    data: new Float32Array(3),
  }]]);
  assert.throws(
    () => opt.importState(bad, 1),
    /w\.exp_avg has shape \[3\].*missing w\.exp_avg_sq/,
  );
});
