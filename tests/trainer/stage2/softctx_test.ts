import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  contiguousStart,
  expectedCoordEmbeddings,
  softContextEmbeddings,
} from "../../../trainer/stage2/softctx.ts";

await initRuntime({ log: () => {} });

const V = 1012, H = 8, B = 2, T = 6;
const PAD = 3; // an "image placeholder" id
const COORD = Array.from({ length: 1000 }, (_, k) => 12 + k);
const table = tf.variable(
  tf.tensor2d(Array.from({ length: V * H }, (_, i) => Math.sin(i * 0.37)), [
    V,
    H,
  ]),
);
/** One-hot matmul lookup: differentiable on wasm (no gather gradient). */
const embedTokens = (ids: tf.Tensor2D): tf.Tensor3D =>
  tf.tidy(() => {
    const [b, t] = ids.shape;
    const oh = tf.oneHot(tf.reshape(ids, [b * t]), V).toFloat();
    return tf.reshape(tf.matMul(oh, table), [b, t, H]) as tf.Tensor3D;
  });

// Row 0: [img, img, text, coord, coord, text]; row 1: [text, coord, img, coord, text, text]
const ids = tf.tensor2d(
  [
    [PAD, PAD, 5, 12 + 40, 12 + 999, 6],
    [5, 12 + 7, PAD, 12 + 500, 7, 8],
  ],
  [B, T],
  "int32",
);
const slots = [3, 4, T + 1, T + 3];
const logits = tf.tensor3d(
  Array.from(
    { length: B * T * V },
    (_, i) => ((Math.sin(i * 12.9898) * 43758.5453) % 1) * 6,
  ),
  [B, T, V],
);

function rowsEqualBitwise(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  flat: number,
): boolean {
  const x = new Uint32Array(a.dataSync().slice().buffer);
  const y = new Uint32Array(b.dataSync().slice().buffer);
  for (let j = 0; j < H; j++) {
    if (x[flat * H + j] !== y[flat * H + j]) return false;
  }
  return true;
}

function manualSoft(flatLogitRow: number, temp = 1): number[] {
  const z = (logits.reshape([B * T, V]).arraySync() as number[][])[flatLogitRow]
    .slice(12, 1012);
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp((v - m) / temp));
  const s = e.reduce((a, b) => a + b, 0);
  const E = (table.arraySync() as number[][]).slice(12, 1012);
  return Array.from(
    { length: H },
    (_, j) => e.reduce((acc, p, k) => acc + (p / s) * E[k][j], 0),
  );
}

Deno.test("pass 0 is the fresh base embedding", () => {
  const out = softContextEmbeddings({
    embedTokens,
    inputIds: ids,
    coordSlots: slots,
    coordTokenIds: COORD,
  });
  const base = embedTokens(ids);
  for (let f = 0; f < B * T; f++) assert.ok(rowsEqualBitwise(out, base, f));
});

Deno.test("coord slots get softmax(z[p-1]/T) @ E, not z[p] [1.7.2]", () => {
  const temp = 0.7;
  const out = softContextEmbeddings({
    embedTokens,
    inputIds: ids,
    coordSlots: slots,
    coordTokenIds: COORD,
    prevLogits: logits,
    temperature: temp,
  });
  const got = out.reshape([B * T, H]).arraySync() as number[][];
  for (const f of slots) {
    const want = manualSoft(f - 1, temp);
    want.forEach((v, j) =>
      assert.ok(Math.abs(got[f][j] - v) < 1e-4, `slot ${f}`)
    );
    // Negative control: the unshifted distribution (z[p]) gives other rows.
    const wrong = manualSoft(f, temp);
    assert.ok(
      wrong.some((v, j) => Math.abs(got[f][j] - v) > 1e-3),
      `slot ${f} looks unshifted`,
    );
  }
});

Deno.test("only coord-slot rows change; placeholder rows bitwise identical [1.7.9]", () => {
  const out = softContextEmbeddings({
    embedTokens,
    inputIds: ids,
    coordSlots: slots,
    coordTokenIds: COORD,
    prevLogits: logits,
  });
  const base = embedTokens(ids);
  for (let f = 0; f < B * T; f++) {
    assert.equal(
      rowsEqualBitwise(out, base, f),
      !slots.includes(f),
      `row ${f}`,
    );
  }
  // A scatter that would touch a placeholder row is refused.
  assert.throws(
    () =>
      softContextEmbeddings({
        embedTokens,
        inputIds: ids,
        coordSlots: [...slots, 1],
        coordTokenIds: COORD,
        prevLogits: logits,
      }),
    /slot 1 .* holds token id 3, not a coord token/,
  );
  // A slot at position 0 has no p-1.
  const first = tf.tensor2d([[12, 5, 5, 5, 5, 5]], [1, T], "int32");
  assert.throws(
    () =>
      softContextEmbeddings({
        embedTokens,
        inputIds: first,
        coordSlots: [0],
        coordTokenIds: COORD,
        prevLogits: logits.slice([0, 0, 0], [1, T, V]),
      }),
    /position 0/,
  );
});

Deno.test("soft rows are detached: no gradient reaches E or the logits", () => {
  const prev = tf.variable(logits);
  const { grads } = tf.variableGrads(() => {
    const out = softContextEmbeddings({
      embedTokens,
      inputIds: ids,
      coordSlots: slots,
      coordTokenIds: COORD,
      prevLogits: prev,
    });
    return tf.sum(tf.mul(out, out)) as tf.Scalar;
  }, [table, prev]);
  const g = grads[table.name].arraySync() as number[][];
  // Coord ids appear only at slots (all replaced): their table rows get 0.
  for (const id of [12 + 40, 12 + 999, 12 + 7, 12 + 500]) {
    assert.ok(g[id].every((v) => v === 0));
  }
  // The base rows (text/placeholders) do get gradient.
  assert.ok(g[5].some((v) => v !== 0) && g[PAD].some((v) => v !== 0));
  assert.ok(grads[prev.name].dataSync().every((v) => v === 0));
});

Deno.test("non-contiguous coord ids use the same math (gather path)", () => {
  const perm = [...COORD].reverse();
  assert.equal(contiguousStart(COORD), 12);
  assert.equal(contiguousStart(perm), -1);
  const a = expectedCoordEmbeddings(embedTokens, logits, COORD);
  const b = expectedCoordEmbeddings(embedTokens, logits, perm);
  // Reversed bins pair reversed logits with reversed embeddings: same sum.
  const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  assert.ok(d < 1e-4, `diff ${d}`);
  assert.throws(
    () => expectedCoordEmbeddings(embedTokens, logits, COORD.slice(1)),
    /1000 coord token ids/,
  );
  assert.throws(
    () => expectedCoordEmbeddings(embedTokens, logits, COORD, 0),
    /softctx_temperature/,
  );
});
