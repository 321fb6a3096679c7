/**
 * Text self-attention planning and execution. The plan is a list of
 * attention blocks built on the CPU (causal, key padding, block-diagonal
 * over packed segments): each block is a (batch row, query range, key
 * range, allowed pairs) record, and no query attends a key outside its
 * block. On the blas path the blocks are the fused attention kernel's
 * input as they stand; on wasm they become additive masks, and the products
 * run either as one rank-3 batch (tiny problems: decode steps) or as rank-2
 * chunks per (row, kv head, block), which keeps every matmul on the fast
 * wasm path and spends no arithmetic across distant segments. The trace
 * reads the attention it reports off the same blocks (`mask_facts.ts`).
 */
import { tf } from "../runtime.ts";
import type { AttentionBlock } from "../backend/fused_kernels.ts";
import { spansFromSegmentIds } from "../common/segments.ts";
import { attendChunk, fusedAvailable, MASK_NEG, unstack0 } from "./ops.ts";

export type { AttentionBlock };

/**
 * Packed segments are grouped into attention blocks of up to this many
 * tokens: 256 on wasm, where every block costs several kernels; one block
 * per segment on the blas path, where a block is a few BLAS calls inside
 * one kernel and grouping would only add masked-out arithmetic.
 */
const ATTENTION_GROUP_TOKENS = 256;
const FUSED_GROUP_TOKENS = 1;

/**
 * How attention runs: `batched` (one block per batch row over all of its
 * keys; small problems) or `chunked` (blocks of packed segments, or one per
 * row over a cache), and the blocks themselves, sorted by batch row and
 * query start. A block's `allowed` is null when every pair may attend.
 */
export interface AttentionPlan {
  kind: "batched" | "chunked";
  B: number;
  T: number;
  /** Keys per row: cached ones plus this forward's T. */
  Tk: number;
  blocks: AttentionBlock[];
}

export type MaterializedPlan =
  | { kind: "batched"; mask: tf.Tensor4D | null }
  /** Blas path: the plan's blocks, the fused attention kernel's input (no tensors). */
  | { kind: "fused"; blocks: AttentionBlock[] }
  | {
    kind: "chunked";
    rows: { qLen: number; kLen: number; mask: tf.Tensor3D | null }[][];
  };

/**
 * Decide how attention runs and which query/key pairs may attend, on the
 * CPU: causal, key padding (left-padded prompts / cached keys), and
 * block-diagonal over the packed segments given by `segs` (segment id per
 * position, per row; null = unpacked rows). The segment ids are the one
 * input both the block partition and the pairs inside a block come from.
 * Consecutive segments are grouped into blocks (see ATTENTION_GROUP_TOKENS)
 * so that no arithmetic is spent across distant segments while each
 * product stays large enough to run efficiently.
 *
 * @example
 * attentionPlan(1, 4, 0, null, [Int32Array.from([0, 0, 1, 1])]).blocks.length; // 1 (batched)
 */
export function attentionPlan(
  B: number,
  T: number,
  past: number,
  keyValid: Uint8Array[] | null,
  segs: Int32Array[] | null,
): AttentionPlan {
  const Tk = past + T;
  const block = (
    b: number,
    q0: number,
    qLen: number,
    k0: number,
    kLen: number,
  ): AttentionBlock => {
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
    // null: every pair may attend (the kernels skip the checks)
    return { b, q0, qLen, k0, kLen, allowed: ok.includes(0) ? ok : null };
  };
  const rows = Array.from({ length: B }, (_, b) => b);
  if (B * T * Tk <= 4096) {
    // one block per row over all keys (a decode step with every key valid
    // gets allowed = null: no mask at all)
    return {
      kind: "batched",
      B,
      T,
      Tk,
      blocks: rows.map((b) => block(b, 0, T, 0, Tk)),
    };
  }
  if (past > 0) {
    return {
      kind: "chunked",
      B,
      T,
      Tk,
      blocks: rows.map((b) => block(b, 0, T, 0, Tk)),
    };
  }
  const limit = fusedAvailable() ? FUSED_GROUP_TOKENS : ATTENTION_GROUP_TOKENS;
  const blocks: AttentionBlock[] = [];
  for (const b of rows) {
    let start = 0, len = 0;
    const spans = segs ? spansFromSegmentIds(segs[b]) : [[0, T]];
    for (const [, n] of spans) {
      if (len > 0 && len + n > limit) {
        blocks.push(block(b, start, len, start, len));
        start += len;
        len = 0;
      }
      len += n;
    }
    blocks.push(block(b, start, len, start, len));
  }
  return { kind: "chunked", B, T, Tk, blocks };
}

/** Allowed flags as an additive mask: 0 where allowed, MASK_NEG elsewhere. */
export function additiveMask(allowed: Uint8Array): Float32Array {
  const m = new Float32Array(allowed.length);
  for (let i = 0; i < m.length; i++) if (!allowed[i]) m[i] = MASK_NEG;
  return m;
}

/**
 * The plan in the form the active path executes: the blocks themselves on
 * the blas path; on wasm, additive masks built from the blocks.
 */
export function materializePlan(plan: AttentionPlan): MaterializedPlan {
  const { blocks } = plan;
  if (fusedAvailable()) return { kind: "fused", blocks };
  if (plan.kind === "batched") {
    if (blocks.every((bl) => bl.allowed === null)) {
      return { kind: "batched", mask: null };
    }
    const size = plan.T * plan.Tk;
    const flat = new Float32Array(plan.B * size);
    for (const bl of blocks) {
      if (bl.allowed) flat.set(additiveMask(bl.allowed), bl.b * size);
    }
    return {
      kind: "batched",
      mask: tf.tensor4d(flat, [plan.B, 1, plan.T, plan.Tk]),
    };
  }
  const rows: MaterializedPlan & { kind: "chunked" } = {
    kind: "chunked",
    rows: Array.from({ length: plan.B }, () => []),
  };
  for (const bl of blocks) {
    rows.rows[bl.b].push({
      qLen: bl.qLen,
      kLen: bl.kLen,
      mask: bl.allowed
        ? tf.tensor3d(additiveMask(bl.allowed), [bl.qLen, 1, bl.kLen])
        : null,
    });
  }
  return rows;
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
