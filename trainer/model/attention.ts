/**
 * Text self-attention planning and execution. Masks are built on the CPU
 * (causal, key padding, block-diagonal over packed segments); the products
 * run either as one rank-3 batch (tiny problems: decode steps) or as rank-2
 * chunks per (row, kv head, group of segments), which keeps every matmul on
 * the fast wasm path and spends no arithmetic across distant segments.
 */
import { tf } from "../runtime.ts";
import type { AttentionBlock } from "../backend/fused_kernels.ts";
import { attendChunk, fusedAvailable, MASK_NEG, unstack0 } from "./ops.ts";

/**
 * Packed segments are grouped into attention blocks of up to this many
 * tokens: 256 on wasm, where every block costs several kernels; one block
 * per segment on the blas path, where a block is a few BLAS calls inside
 * one kernel and grouping would only add masked-out arithmetic.
 */
const ATTENTION_GROUP_TOKENS = 256;
const FUSED_GROUP_TOKENS = 1;

interface PlanGroup {
  /** Query rows [q0, q0 + qLen) attend keys [k0, k0 + kLen) (keys count cached ones). */
  q0: number;
  qLen: number;
  k0: number;
  kLen: number;
  /** [qLen * kLen], 1 where the query may attend the key. */
  allowed: Uint8Array;
}

export type AttentionPlan =
  | {
    kind: "batched";
    B: number;
    T: number;
    Tk: number;
    /** Per row [T * Tk] allowed flags, or null when every key is allowed. */
    allowed: Uint8Array[] | null;
  }
  | { kind: "chunked"; rows: PlanGroup[][] };

export type MaterializedPlan =
  | { kind: "batched"; mask: tf.Tensor4D | null }
  /** Blas path: blocks for the fused attention kernel (no tensors). */
  | { kind: "fused"; blocks: AttentionBlock[] }
  | {
    kind: "chunked";
    rows: { qLen: number; kLen: number; mask: tf.Tensor3D }[][];
  };

/**
 * Decide how attention runs and which query/key pairs may attend, on the
 * CPU: causal, key padding (left-padded prompts / cached keys), and
 * block-diagonal over the packed segments. Consecutive segments are grouped
 * into blocks (see ATTENTION_GROUP_TOKENS) so that no arithmetic is spent
 * across distant segments while each product stays large enough to run
 * efficiently.
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
  const allowedFor = (
    b: number,
    q0: number,
    qLen: number,
    k0: number,
    kLen: number,
  ) => {
    const ok = new Uint8Array(qLen * kLen);
    const kv = keyValid?.[b], seg = segs?.[b];
    for (let i = 0; i < qLen; i++) {
      const q = q0 + i, self = past + q;
      // causal: keys up to the query's own position
      const last = Math.min(k0 + kLen - 1, self);
      for (let j = k0; j <= last; j++) {
        if (kv && kv[j] !== 1 && j !== self) continue;
        if (seg && seg[j - past] !== seg[q]) continue;
        ok[i * kLen + j - k0] = 1;
      }
    }
    return ok;
  };
  if (B * T * Tk <= 4096) {
    // a single query with every key valid needs no mask (decode steps)
    const need = T > 1 ||
      (keyValid !== null && keyValid.some((r) => r.includes(0)));
    return {
      kind: "batched",
      B,
      T,
      Tk,
      allowed: need
        ? Array.from({ length: B }, (_, b) => allowedFor(b, 0, T, 0, Tk))
        : null,
    };
  }
  if (past > 0) {
    return {
      kind: "chunked",
      rows: Array.from({ length: B }, (_, b) => [{
        q0: 0,
        qLen: T,
        k0: 0,
        kLen: Tk,
        allowed: allowedFor(b, 0, T, 0, Tk),
      }]),
    };
  }
  const limit = fusedAvailable() ? FUSED_GROUP_TOKENS : ATTENTION_GROUP_TOKENS;
  return {
    kind: "chunked",
    rows: segments.map((list, b) => {
      const groups: PlanGroup[] = [];
      const close = (start: number, len: number) =>
        groups.push({
          q0: start,
          qLen: len,
          k0: start,
          kLen: len,
          allowed: allowedFor(b, start, len, start, len),
        });
      let start = 0, len = 0;
      for (const [, n] of list) {
        if (len > 0 && len + n > limit) {
          close(start, len);
          start += len;
          len = 0;
        }
        len += n;
      }
      close(start, len);
      return groups;
    }),
  };
}

/** Allowed flags as an additive mask: 0 where allowed, MASK_NEG elsewhere. */
export function additiveMask(allowed: Uint8Array): Float32Array {
  const m = new Float32Array(allowed.length);
  for (let i = 0; i < m.length; i++) if (!allowed[i]) m[i] = MASK_NEG;
  return m;
}

/** Allowed flags, or null when every pair may attend (the kernel skips the checks). */
export function allowedOrNull(allowed: Uint8Array | null): Uint8Array | null {
  return allowed && allowed.includes(0) ? allowed : null;
}

/** The plan as blocks of (batch row, query range, key range, allowed pairs). */
function planBlocks(plan: AttentionPlan): AttentionBlock[] {
  if (plan.kind === "batched") {
    return Array.from({ length: plan.B }, (_, b) => ({
      b,
      q0: 0,
      qLen: plan.T,
      k0: 0,
      kLen: plan.Tk,
      allowed: allowedOrNull(plan.allowed ? plan.allowed[b] : null),
    }));
  }
  return plan.rows.flatMap((groups, b) =>
    groups.map((g) => ({
      b,
      q0: g.q0,
      qLen: g.qLen,
      k0: g.k0,
      kLen: g.kLen,
      allowed: allowedOrNull(g.allowed),
    }))
  );
}

export function materializePlan(plan: AttentionPlan): MaterializedPlan {
  if (fusedAvailable()) return { kind: "fused", blocks: planBlocks(plan) };
  if (plan.kind === "batched") {
    const m = plan.allowed;
    if (!m) return { kind: "batched", mask: null };
    const flat = new Float32Array(m.length * plan.T * plan.Tk);
    m.forEach((x, b) => flat.set(additiveMask(x), b * plan.T * plan.Tk));
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
        mask: tf.tensor3d(additiveMask(g.allowed), [g.qLen, 1, g.kLen]),
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
  if (att.kind === "fused") {
    throw new Error("internal: fused plans run through blockAttention");
  }
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
