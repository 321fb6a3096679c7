/**
 * What the attention masks of a forward really allow, read off the masks
 * the compute materializes (`AttentionPlan`), not off row 0: the causal
 * segments each batch row attends over, or how the masks break
 * block-causal attention. The trace records this next to row 0, so the
 * audit compares the mask that was used with the boundaries the position
 * ids declare.
 */
import type { AttentionPlan } from "./attention.ts";
import { MASK_NEG } from "./ops.ts";
import type { Span } from "../common/segments.ts";

/** Allowed (query i, key j) of one batch row, over this forward's own T tokens. */
type Allowed = (i: number, j: number) => boolean;

const open = (v: number) => v > MASK_NEG / 2;

function rowAccess(plan: AttentionPlan, b: number, T: number): Allowed | null {
  if (plan.kind === "batched") {
    if (plan.Tk !== T) return null; // cached keys: not this forward's own tokens
    const m = plan.masks?.[b];
    // no mask at all: every key is visible (only planned for one query)
    if (!m) return () => true;
    return (i, j) => open(m[i * T + j]);
  }
  // chunked: query rows of a group attend only keys of the same group
  const groupOf = new Int32Array(T).fill(-1);
  const starts: number[] = [];
  let at = 0;
  for (const [g, grp] of plan.rows[b].entries()) {
    if (grp.kLen !== grp.qLen) return null; // cached keys
    starts.push(at);
    groupOf.fill(g, at, at + grp.qLen);
    at += grp.qLen;
  }
  if (at !== T) return null;
  return (i, j) => {
    const g = groupOf[i];
    if (groupOf[j] !== g) return false;
    const grp = plan.rows[b][g];
    return open(grp.mask[(i - starts[g]) * grp.kLen + (j - starts[g])]);
  };
}

/**
 * Segments of one row from its mask: query i must see exactly the keys
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
 * The causal segments per batch row that the planned masks implement, or
 * why they are not block-causal. `segments` is null for forwards over a
 * cache (their keys are not this forward's tokens).
 *
 * @example
 * maskSegments(attentionPlan(1, 4, 0, null, [Int32Array.from([0, 0, 1, 1])], [[[0, 2], [2, 2]]]), 1, 4);
 * // { segments: [[[0, 2], [2, 2]]], problem: null }
 */
export function maskSegments(
  plan: AttentionPlan,
  B: number,
  T: number,
): { segments: Span[][] | null; problem: string | null } {
  const segments: Span[][] = [];
  for (let b = 0; b < B; b++) {
    const allowed = rowAccess(plan, b, T);
    if (allowed === null) return { segments: null, problem: null };
    const r = rowSegments(allowed, T);
    if (r.problem !== null) {
      return { segments: null, problem: `batch row ${b}: ${r.problem}` };
    }
    segments.push(r.spans);
  }
  return { segments, problem: null };
}
