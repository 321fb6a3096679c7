/**
 * Text self-attention planning and execution. Masks are built on the CPU
 * (causal, key padding, block-diagonal over packed segments); the products
 * run either as one rank-3 batch (tiny problems: decode steps) or as rank-2
 * chunks per (row, kv head, group of segments), which keeps every matmul on
 * the fast wasm path and spends no arithmetic across distant segments.
 */
import { tf } from "../runtime.ts";
import { attendChunk, MASK_NEG, unstack0 } from "./ops.ts";

/** Packed segments are grouped into attention blocks of up to this many tokens. */
const ATTENTION_GROUP_TOKENS = 256;

interface PlanGroup {
  /** Query rows [qStart, qStart + qLen) attend keys [qStart, qStart + kLen) (kLen includes cached keys). */
  qLen: number;
  kLen: number;
  /** Additive mask [qLen, kLen] (0 / MASK_NEG). */
  mask: Float32Array;
}

export type AttentionPlan =
  | { kind: "batched"; T: number; Tk: number; masks: Float32Array[] | null }
  | { kind: "chunked"; rows: PlanGroup[][] };

export type MaterializedPlan =
  | { kind: "batched"; mask: tf.Tensor4D | null }
  | {
    kind: "chunked";
    rows: { qLen: number; kLen: number; mask: tf.Tensor3D }[][];
  };

/**
 * Decide how attention runs and build its masks on the CPU: causal, key
 * padding (left-padded prompts / cached keys), and block-diagonal over the
 * packed segments. Consecutive segments are grouped into blocks of up to
 * ATTENTION_GROUP_TOKENS so that no arithmetic is spent across distant
 * segments while each product stays large enough to run efficiently.
 */
export function attentionPlan(
  B: number,
  T: number,
  past: number,
  keyValid: Uint8Array[] | null,
  segs: Int32Array[] | null,
  segments: [number, number][][],
): AttentionPlan {
  const Tk = past + T;
  const allowed = (b: number, i: number, j: number) =>
    j <= past + i && (!keyValid || keyValid[b][j] === 1 || j === past + i) &&
    (!segs || segs[b][j - past] === segs[b][i]);
  const maskFor = (
    b: number,
    q0: number,
    qLen: number,
    k0: number,
    kLen: number,
  ) => {
    const mk = new Float32Array(qLen * kLen);
    for (let i = 0; i < qLen; i++) {
      for (let j = 0; j < kLen; j++) {
        if (!allowed(b, q0 + i, k0 + j)) mk[i * kLen + j] = MASK_NEG;
      }
    }
    return mk;
  };
  if (B * T * Tk <= 4096) {
    // a single query with every key valid needs no mask (decode steps)
    const need = T > 1 ||
      (keyValid !== null && keyValid.some((r) => r.includes(0)));
    return {
      kind: "batched",
      T,
      Tk,
      masks: need
        ? Array.from({ length: B }, (_, b) => maskFor(b, 0, T, 0, Tk))
        : null,
    };
  }
  if (past > 0) {
    return {
      kind: "chunked",
      rows: Array.from(
        { length: B },
        (_, b) => [{ qLen: T, kLen: Tk, mask: maskFor(b, 0, T, 0, Tk) }],
      ),
    };
  }
  return {
    kind: "chunked",
    rows: segments.map((list, b) => {
      const groups: PlanGroup[] = [];
      let start = 0, len = 0;
      for (const [, n] of list) {
        if (len > 0 && len + n > ATTENTION_GROUP_TOKENS) {
          groups.push({
            qLen: len,
            kLen: len,
            mask: maskFor(b, start, len, start, len),
          });
          start += len;
          len = 0;
        }
        len += n;
      }
      groups.push({
        qLen: len,
        kLen: len,
        mask: maskFor(b, start, len, start, len),
      });
      return groups;
    }),
  };
}

export function materializePlan(plan: AttentionPlan): MaterializedPlan {
  if (plan.kind === "batched") {
    const m = plan.masks;
    if (!m) return { kind: "batched", mask: null };
    const flat = new Float32Array(m.length * plan.T * plan.Tk);
    m.forEach((x, b) => flat.set(x, b * plan.T * plan.Tk));
    return {
      kind: "batched",
      mask: tf.tensor4d(flat, [m.length, 1, plan.T, plan.Tk]),
    };
  }
  return {
    kind: "chunked",
    rows: plan.rows.map((groups) =>
      groups.map((g) => ({
        qLen: g.qLen,
        kLen: g.kLen,
        mask: tf.tensor3d(g.mask, [g.qLen, 1, g.kLen]),
      }))
    ),
  };
}

/**
 * Attention of q [B, T, nH, hd] (scaled, rotated) over kT [B, nKV, hd, Tk]
 * and v [B, nKV, Tk, hd] -> [B*T, nH*hd].
 */
export function attention(
  q: tf.Tensor,
  kT: tf.Tensor4D,
  v: tf.Tensor4D,
  att: MaterializedPlan,
  B: number,
  T: number,
  nKV: number,
  rep: number,
  hd: number,
): tf.Tensor2D {
  const nH = nKV * rep;
  const Tk = kT.shape[3];
  let a2: tf.Tensor2D;
  if (att.kind === "batched") {
    // one rank-3 product for all rows and heads (small problems: decode steps)
    const qg = T === 1
      ? tf.reshape(q, [B * nKV, rep, hd])
      : tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [B * nKV, rep * T, hd]);
    let s: tf.Tensor = tf.matMul(qg, tf.reshape(kT, [B * nKV, hd, Tk]));
    if (att.mask) s = tf.add(tf.reshape(s, [B, nKV * rep, T, Tk]), att.mask);
    const pr = tf.reshape(tf.softmax(s), [B * nKV, rep * T, Tk]);
    const attn = tf.matMul(pr, tf.reshape(v, [B * nKV, Tk, hd]));
    a2 = (T === 1 ? tf.reshape(attn, [B, nH * hd]) : tf.reshape(
      tf.transpose(tf.reshape(attn, [B, nH, T, hd]), [0, 2, 1, 3]),
      [B * T, nH * hd],
    )) as tf.Tensor2D;
  } else {
    // rank-2 products per (row, kv head, group of packed segments); query
    // rows ordered (t, r) so a group is a contiguous block: [T*rep, hd]
    const qs = unstack0(
      tf.reshape(
        tf.transpose(tf.reshape(q, [B, T, nKV, rep, hd]), [0, 2, 1, 3, 4]),
        [B * nKV, T * rep, hd],
      ),
    ) as tf.Tensor2D[];
    const ks = unstack0(tf.reshape(kT, [B * nKV, hd, Tk])) as tf.Tensor2D[];
    const vs = unstack0(tf.reshape(v, [B * nKV, Tk, hd])) as tf.Tensor2D[];
    const outs = qs.map((qc, i) => {
      const groups = att.rows[Math.floor(i / nKV)];
      if (groups.length === 1) {
        return attendChunk(qc, ks[i], vs[i], groups[0].mask, rep);
      }
      const qParts = tf.split(
        qc,
        groups.map((g) => g.qLen * rep),
        0,
      ) as tf.Tensor2D[];
      const kParts = tf.split(
        ks[i],
        groups.map((g) => g.kLen),
        1,
      ) as tf.Tensor2D[];
      const vParts = tf.split(
        vs[i],
        groups.map((g) => g.kLen),
        0,
      ) as tf.Tensor2D[];
      return tf.concat(
        groups.map((g, j) =>
          attendChunk(qParts[j], kParts[j], vParts[j], g.mask, rep)
        ),
        0,
      );
    });
    a2 = tf.reshape(
      tf.transpose(tf.reshape(tf.stack(outs), [B, nKV, T, rep, hd]), [
        0,
        2,
        1,
        3,
        4,
      ]),
      [B * T, nH * hd],
    ) as tf.Tensor2D;
  }
  return a2;
}
