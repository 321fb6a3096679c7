/**
 * What the attention of a forward really allows, read off the attention
 * blocks the compute executes (`AttentionPlan.blocks`: the fused kernel's
 * own input on the blas path, the source of the additive masks on wasm),
 * not off row 0: the causal segments each batch row attends over, or how
 * the blocks break block-causal attention. The trace records this next to
 * row 0, so the audit compares the attention that ran with the boundaries
 * the position ids declare.
 */
import type { AttentionBlock, AttentionPlan } from "./attention.ts";
import type { Span } from "../common/segments.ts";

/** Allowed (query i, key j) of one batch row, over this forward's own T tokens. */
type Allowed = (i: number, j: number) => boolean;

/**
 * Query i of one row may attend key j when its block spans j and allows
 * the pair; a key outside the query's block is never attended. A query in
 * no block, or in two, is a problem (the kernels would leave its output
 * unset, or write it twice).
 */
function rowAccess(
  blocks: AttentionBlock[],
  T: number,
): { allowed: Allowed; problem: string | null } {
  const of: (AttentionBlock | null)[] = new Array(T).fill(null);
  for (const bl of blocks) {
    for (let i = bl.q0; i < bl.q0 + bl.qLen; i++) {
      if (of[i]) {
        return { allowed: () => false, problem: `query ${i} is in two blocks` };
      }
      of[i] = bl;
    }
  }
  const lost = of.indexOf(null);
  if (lost >= 0) {
    return {
      allowed: () => false,
      problem: `query ${lost} is in no attention block`,
    };
  }
  return {
    allowed: (i, j) => {
      const bl = of[i]!;
      if (j < bl.k0 || j >= bl.k0 + bl.kLen) return false;
      return !bl.allowed ||
        bl.allowed[(i - bl.q0) * bl.kLen + (j - bl.k0)] === 1;
    },
    problem: null,
  };
}

/**
 * Segments of one row from its blocks: query i must see exactly the keys
 * [s, i] where s is the start of its segment; a query whose first visible
 * key is itself opens a new segment.
 */
function rowSegments(
  allowed: Allowed,
  T: number,
): { spans: Span[]; problem: string | null } {
  const spans: Span[] = [];
  let start = 0;
  for (let i = 0; i < T; i++) {
    let first = -1;
    for (let j = 0; j < T; j++) {
      const a = allowed(i, j);
      if (a && j > i) {
        return { spans, problem: `query ${i} sees the later key ${j}` };
      }
      if (a && first < 0) first = j;
      if (!a && first >= 0 && j <= i) {
        return {
          spans,
          problem:
            `query ${i} sees key ${first} but not key ${j} between it and itself`,
        };
      }
    }
    if (first < 0) return { spans, problem: `query ${i} sees no key` };
    if (first === i) {
      if (i > 0) spans.push([start, i - start]);
      start = i;
    } else if (first !== start) {
      return {
        spans,
        problem:
          `query ${i} sees keys from ${first}, its segment starts at ${start}`,
      };
    }
  }
  if (T > 0) spans.push([start, T - start]);
  return { spans, problem: null };
}

/**
 * The causal segments per batch row that the planned attention blocks
 * implement, or why they are not block-causal. `segments` is null for
 * forwards over a cache (their keys are not this forward's tokens).
 *
 * @example
 * maskSegments(attentionPlan(1, 4, 0, null, [Int32Array.from([0, 0, 1, 1])]));
 * // { segments: [[[0, 2], [2, 2]]], problem: null }
 */
export function maskSegments(
  plan: AttentionPlan,
): { segments: Span[][] | null; problem: string | null } {
  const { B, T, Tk } = plan;
  if (Tk !== T) return { segments: null, problem: null };
  const byRow: AttentionBlock[][] = Array.from({ length: B }, () => []);
  for (const bl of plan.blocks) byRow[bl.b].push(bl);
  const segments: Span[][] = [];
  for (let b = 0; b < B; b++) {
    const access = rowAccess(byRow[b], T);
    const r = access.problem === null
      ? rowSegments(access.allowed, T)
      : { spans: [], problem: access.problem };
    if (r.problem !== null) {
      return { segments: null, problem: `batch row ${b}: ${r.problem}` };
    }
    segments.push(r.spans);
  }
  return { segments, problem: null };
}
