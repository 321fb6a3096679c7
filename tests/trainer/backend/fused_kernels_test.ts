/**
 * The blas backend's fused kernels against the same math written with plain
 * TF.js ops (whose gradients TF.js derives): values and gradients. Runs on
 * the blas backend whatever STAGE2_BACKEND says, and restores the previous
 * backend afterwards.
 */
import assert from "node:assert/strict";
import { initRuntime, tf, useBackend } from "../../../trainer/runtime.ts";
import {
  activation,
  adamwUpdate,
  addMatMul,
  addRmsNorm,
  blockAttention,
  gatedActivation,
  layerNorm,
  matMulShared,
  qkPrep,
  rmsNorm,
  weightedNll,
} from "../../../trainer/model/ops.ts";
import type { AttentionBlock } from "../../../trainer/backend/fused_kernels.ts";
import { maxAbsDiff } from "../model/helpers.ts";

await initRuntime({ log: () => {} });

/** Run `f` on the blas backend, then switch back. */
async function onBlas(f: () => void): Promise<void> {
  const prev = tf.getBackend();
  assert.ok(
    await useBackend("blas"),
    "the blas backend must start here (install libopenblas0-pthread or set STAGE2_BLAS)",
  );
  try {
    tf.tidy(f);
  } finally {
    await useBackend(prev as "blas" | "wasm" | "cpu");
  }
}

const rnd = (shape: number[], seed: number) =>
  tf.randomNormal(shape, 0, 1, "float32", seed);

/**
 * Values and gradients of sum(f(xs) * w) for a random weighting w, from the
 * fused op and from the reference, compared with a tolerance relative to
 * the reference's largest magnitude.
 */
function compare(
  name: string,
  fused: (...xs: tf.Tensor[]) => tf.Tensor,
  ref: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
  tol = 2e-5,
): void {
  const w = rnd(ref(...xs).shape, 99);
  const run = (f: (...xs: tf.Tensor[]) => tf.Tensor) => {
    const y = f(...xs).dataSync();
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
    return [y, ...g.map((t) => t.dataSync())];
  };
  const got = run(fused), want = run(ref);
  want.forEach((wv, i) => {
    let scale = 1e-6;
    for (const v of wv) scale = Math.max(scale, Math.abs(v));
    const err = maxAbsDiff(got[i], wv) / scale;
    assert.ok(
      err < tol,
      `${name}: ${i === 0 ? "value" : `gradient ${i - 1}`} off by ${err}`,
    );
  });
}

Deno.test("fused RMSNorm and LayerNorm match their TF.js definitions, values and gradients", async () => {
  await onBlas(() => {
    const x = rnd([37, 48], 1), w = rnd([48], 2), b = rnd([48], 3);
    compare(
      "rmsNorm",
      (x, w) => rmsNorm(x, w, 1e-6),
      (x, w) =>
        tf.mul(
          tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))),
          w,
        ),
      [x, w],
    );
    compare(
      "layerNorm",
      (x, w, b) => layerNorm(x, w as tf.Tensor1D, b as tf.Tensor1D, 1e-6),
      (x, w, b) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.add(
          tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-6))), w),
          b,
        );
      },
      [x, w, b],
    );
  });
});

Deno.test("fused residual + RMSNorm, shared-input products and residual products match their definitions", async () => {
  await onBlas(() => {
    const x = rnd([33, 24], 30), r = rnd([33, 24], 31), w = rnd([24], 32);
    const norm = (h: tf.Tensor, w: tf.Tensor) =>
      tf.mul(
        tf.mul(h, tf.rsqrt(tf.add(tf.mean(tf.square(h), -1, true), 1e-6))),
        w,
      );
    // both outputs, the residual stream h and the normed y, carry gradient
    compare(
      "addRmsNorm",
      (x, r, w) => {
        const { h, y } = addRmsNorm(x, r, w, 1e-6);
        return tf.concat([tf.reshape(h, [-1]), tf.reshape(y, [-1])]);
      },
      (x, r, w) => {
        const h = tf.add(x, r);
        return tf.concat([tf.reshape(h, [-1]), tf.reshape(norm(h, w), [-1])]);
      },
      [x, r, w],
    );
    const a = rnd([70, 24], 33);
    const w0 = rnd([24, 10], 34), w1 = rnd([24, 7], 35), w2 = rnd([24, 5], 36);
    for (const ws of [[w0, w1], [w0, w1, w2]]) {
      compare(
        `matMulShared x${ws.length}`,
        (a, ...w) =>
          tf.concat(
            matMulShared(a as tf.Tensor2D, w as tf.Tensor2D[]).map((t) =>
              tf.reshape(t, [-1])
            ),
          ),
        (a, ...w) =>
          tf.concat(
            w.map((t) =>
              tf.reshape(tf.matMul(a as tf.Tensor2D, t as tf.Tensor2D), [-1])
            ),
          ),
        [a, ...ws],
      );
    }
    compare(
      "addMatMul",
      (r, a, w) =>
        addMatMul(r as tf.Tensor2D, a as tf.Tensor2D, w as tf.Tensor2D),
      (r, a, w) => tf.add(r, tf.matMul(a as tf.Tensor2D, w as tf.Tensor2D)),
      [rnd([70, 10], 37), a, w0],
    );
  });
});

Deno.test("fused SwiGLU, tanh-GELU and weighted NLL match their TF.js definitions", async () => {
  await onBlas(() => {
    const g = rnd([70, 33], 4), u = rnd([70, 33], 5);
    compare(
      "swiglu",
      (g, u) => gatedActivation("silu", g, u),
      (g, u) => tf.mul(tf.mul(g, tf.sigmoid(g)), u),
      [g, u],
    );
    const x = tf.mul(rnd([40, 50], 6), 3);
    compare(
      "gelu tanh",
      (x) => activation("gelu_pytorch_tanh", x),
      (x) => {
        const inner = tf.mul(
          tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)),
          Math.sqrt(2 / Math.PI),
        );
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
      },
      [x],
    );
    const z = tf.mul(rnd([33, 97], 7), 4);
    // one-hot targets times token weights, one row without any target
    const wv = new Float32Array(33 * 97);
    for (let i = 1; i < 33; i++) wv[i * 97 + ((i * 31) % 97)] = 0.5 + i / 33;
    const W = tf.tensor2d(wv, [33, 97]);
    compare(
      "weightedNll",
      (z) => tf.reshape(weightedNll(z as tf.Tensor2D, W), [1]),
      (z) => tf.reshape(tf.neg(tf.sum(tf.mul(tf.logSoftmax(z), W))), [1]),
      [z],
    );
  });
});

/** rotate_half rope, then layouts kT [B, nKV, hd, T], v [B, nKV, T, hd]. */
function refQkPrep(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  cos: tf.Tensor,
  sin: tf.Tensor,
  qw: tf.Tensor | null,
  kw: tf.Tensor | null,
  B: number,
  T: number,
  nH: number,
  nKV: number,
  hd: number,
  scale: number,
) {
  const rope = (x: tf.Tensor, heads: number, w: tf.Tensor | null) => {
    let h = tf.reshape(x, [B * T, heads, hd]);
    if (w) {
      h = tf.mul(
        tf.mul(h, tf.rsqrt(tf.add(tf.mean(tf.square(h), -1, true), 1e-6))),
        w,
      );
    }
    const [x1, x2] = tf.split(h, 2, -1);
    const rot = tf.concat([tf.neg(x2), x1], -1);
    const c = tf.reshape(cos, [B * T, 1, hd]),
      s = tf.reshape(sin, [B * T, 1, hd]);
    return tf.add(tf.mul(h, c), tf.mul(rot, s));
  };
  const qo = tf.reshape(tf.mul(rope(q, nH, qw), scale), [B * T, nH * hd]);
  const kr = tf.reshape(rope(k, nKV, kw), [B, T, nKV, hd]);
  const kT = tf.transpose(kr, [0, 2, 3, 1]);
  const vo = tf.transpose(tf.reshape(v, [B, T, nKV, hd]), [0, 2, 1, 3]);
  return [qo, kT, vo];
}

Deno.test("fused q/k norm + rotary + layouts match the TF.js composition, with and without the norm", async () => {
  await onBlas(() => {
    const B = 2, T = 5, nH = 4, nKV = 2, hd = 8, scale = 0.3;
    const q = rnd([B * T, nH * hd], 10), k = rnd([B * T, nKV * hd], 11);
    const v = rnd([B * T, nKV * hd], 12);
    const ang = tf.mul(rnd([B * T, hd], 13), 2);
    const cos = tf.cos(ang) as tf.Tensor2D, sin = tf.sin(ang) as tf.Tensor2D;
    const qw = rnd([hd], 14), kw = rnd([hd], 15);
    const attrs = { B, T, nH, nKV, hd, eps: 1e-6, scale };
    for (const normed of [true, false]) {
      // all three outputs at once: a weighted sum over them
      const pack = (outs: tf.Tensor[]) =>
        tf.concat(outs.map((o) => tf.reshape(o, [-1])));
      compare(
        `qkPrep normed=${normed}`,
        (q, k, v, qw, kw) => {
          const o = qkPrep(
            q as tf.Tensor2D,
            k as tf.Tensor2D,
            v as tf.Tensor2D,
            cos,
            sin,
            normed ? { qw: qw as tf.Tensor1D, kw: kw as tf.Tensor1D } : null,
            attrs,
          );
          return pack([o.q, o.kT, o.v]);
        },
        (q, k, v, qw, kw) =>
          pack(
            refQkPrep(
              q,
              k,
              v,
              cos,
              sin,
              normed ? qw : null,
              normed ? kw : null,
              B,
              T,
              nH,
              nKV,
              hd,
              scale,
            ),
          ),
        normed ? [q, k, v, qw, kw] : [q, k, v],
      );
    }
  });
});

Deno.test("block attention matches dense masked softmax attention (GQA, packed blocks, cached keys, a padded key)", async () => {
  await onBlas(() => {
    const B = 2, T = 6, past = 2, Tk = past + T, nH = 4, nKV = 2, hd = 8;
    const rep = nH / nKV;
    // row 0: two packed segments [0,3) and [3,6) over its own keys; row 1:
    // every query sees the cached keys and causal new ones, key 1 padded
    const allowedDense = new Uint8Array(B * T * Tk);
    const blocks: AttentionBlock[] = [];
    for (const [s, n] of [[0, 3], [3, 3]]) {
      const a = new Uint8Array(n * n);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j <= i; j++) {
          a[i * n + j] = 1;
          allowedDense[(s + i) * Tk + past + s + j] = 1;
        }
      }
      blocks.push({ b: 0, q0: s, qLen: n, k0: past + s, kLen: n, allowed: a });
    }
    const a1 = new Uint8Array(T * Tk);
    for (let i = 0; i < T; i++) {
      for (let j = 0; j <= past + i; j++) {
        if (j !== 1) {
          a1[i * Tk + j] = 1;
          allowedDense[T * Tk + i * Tk + j] = 1;
        }
      }
    }
    blocks.push({ b: 1, q0: 0, qLen: T, k0: 0, kLen: Tk, allowed: a1 });
    const q = rnd([B * T, nH * hd], 20), kT = rnd([B, nKV, hd, Tk], 21);
    const v = rnd([B, nKV, Tk, hd], 22);
    const mask = tf.tensor4d(
      Float32Array.from(allowedDense, (x) => (x ? 0 : -1e9)),
      [B, 1, T, Tk],
    );
    compare(
      "attention",
      (q, kT, v) =>
        blockAttention(
          q as tf.Tensor2D,
          kT as tf.Tensor4D,
          v as tf.Tensor4D,
          blocks,
          nH,
          T,
        ),
      (q, kT, v) => {
        const qh = tf.transpose(tf.reshape(q, [B, T, nH, hd]), [0, 2, 1, 3]);
        // query head h reads kv head floor(h / rep)
        const heads = tf.tensor1d(
          Int32Array.from({ length: nH }, (_, h) => Math.floor(h / rep)),
          "int32",
        );
        const kx = tf.gather(kT, heads, 1), vx = tf.gather(v, heads, 1);
        const p = tf.softmax(tf.add(tf.matMul(qh, kx), mask));
        return tf.reshape(
          tf.transpose(tf.matMul(p, vx), [0, 2, 1, 3]),
          [B * T, nH * hd],
        );
      },
      [q, kT, v],
    );
  });
});

Deno.test("fused AdamW update matches the composite formulas", async () => {
  const s = {
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    decay: 1 - 1e-3 * 0.01,
    stepSize: 1e-3 / (1 - 0.9 ** 3),
    sqrtBc2: Math.sqrt(1 - 0.999 ** 3),
  };
  const args = () =>
    [
      rnd([300, 70], 40),
      rnd([300, 70], 41),
      tf.mul(rnd([300, 70], 42), 0.1),
      tf.abs(tf.mul(rnd([300, 70], 43), 0.01)),
    ] as const;
  let fusedOut: Float32Array[] = [];
  await onBlas(() => {
    fusedOut = adamwUpdate(...args(), s).map((t) =>
      Float32Array.from(t.dataSync())
    );
  });
  const [p, g, m, v] = args();
  const m1 = m.mul(s.beta1).add(g.mul(1 - s.beta1));
  const v1 = v.mul(s.beta2).add(g.square().mul(1 - s.beta2));
  const p1 = p.mul(s.decay).sub(
    m1.div(v1.sqrt().div(s.sqrtBc2).add(s.epsilon)).mul(s.stepSize),
  );
  [p1, m1, v1].forEach((want, i) => {
    const err = maxAbsDiff(fusedOut[i], want.dataSync());
    assert.ok(err < 1e-6, `output ${i} off by ${err}`);
  });
});
