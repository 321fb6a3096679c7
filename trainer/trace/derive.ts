/**
 * Per-forward checks that need the per-token arrays (row 0, mRoPE rows).
 * The recorder stores their results in every forward line (`checks`), so
 * summary traces that drop the arrays stay auditable; the audit recomputes
 * them from the arrays of full traces.
 *
 * Each function returns null when fine, else a one-line problem description.
 */
import { segmentSpans } from "../common/segments.ts";
import type {
  ForwardChecks,
  ForwardContext,
  ForwardTraceInfo,
  Segment,
} from "./schema.ts";

type Fwd = ForwardContext & ForwardTraceInfo;

const fmt = (xs: readonly unknown[], max = 8): string =>
  xs.length <= max
    ? JSON.stringify(xs)
    : `${JSON.stringify(xs.slice(0, max)).slice(0, -1)},... (${xs.length})]`;

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** Row 0 well-formed: starts at 0, each next value is 0 (new segment) or +1; matches what was packed. */
export function row0Problem(f: Fwd): string | null {
  if (f.row0 === null) {
    if (f.packed) {
      return "packed forward did not report row 0 (text positions) of its position ids";
    }
    if (f.positionIdsRows === 4) {
      return "4-row position ids but row 0 was not reported";
    }
    return null;
  }
  if (f.row0.length !== f.batch) {
    return `row 0 has ${f.row0.length} batch rows, the input has ${f.batch}`;
  }
  for (let b = 0; b < f.row0.length; b++) {
    const r = f.row0[b];
    if (r.length !== f.seqLen) {
      return `batch row ${b}: row 0 has ${r.length} positions, the input has ${f.seqLen}`;
    }
    if (r[0] !== 0) {
      return `batch row ${b}: row 0 starts at ${r[0]}, must start at 0`;
    }
    for (let t = 1; t < r.length; t++) {
      if (r[t] !== 0 && r[t] !== r[t - 1] + 1) {
        return `batch row ${b}, position ${t}: text position ${r[t]} after ${
          r[t - 1]
        } (must restart at 0 or continue at ${r[t - 1] + 1})`;
      }
    }
    const packed = f.segmentLengths?.[b];
    if (packed !== undefined) {
      const total = sum(packed);
      if (total > r.length) {
        return `batch row ${b}: packed lengths ${
          fmt(packed)
        } sum to ${total} > ${r.length} positions`;
      }
      const got = segmentSpans(r.slice(0, total)).map((s) => s[1]);
      if (JSON.stringify(got) !== JSON.stringify(packed)) {
        return `batch row ${b}: row 0 gives segment lengths ${
          fmt(got)
        } but samples of lengths ${
          fmt(packed)
        } were packed (row 0 must restart at 0 at each packed sample)`;
      }
    }
  }
  if (f.segmentLengths !== null && f.segmentLengths.length !== f.batch) {
    return `segmentLengths has ${f.segmentLengths.length} rows, the input has ${f.batch}`;
  }
  return null;
}

/** The t/h/w rows: shaped like the input, non-negative, 0 at each segment start, never ahead of row 0. */
export function mropeProblem(f: Fwd): string | null {
  if (f.mrope === null) return null;
  if (f.mrope.length !== f.batch) {
    return `mRoPE rows have ${f.mrope.length} batch rows, the input has ${f.batch}`;
  }
  const axes = ["t", "h", "w"];
  for (let b = 0; b < f.batch; b++) {
    const rows = f.mrope[b];
    if (rows.length !== 3 || rows.some((r) => r.length !== f.seqLen)) {
      return `batch row ${b}: mRoPE rows must be [3][${f.seqLen}]`;
    }
    for (let a = 0; a < 3; a++) {
      const neg = rows[a].findIndex((v) => v < 0);
      if (neg >= 0) {
        return `batch row ${b}: ${axes[a]} position ${
          rows[a][neg]
        } < 0 at ${neg}`;
      }
    }
    const r0 = f.row0?.[b];
    if (r0 === undefined || r0.length !== f.seqLen) continue;
    for (const [start] of segmentSpans(r0)) {
      for (let a = 0; a < 3; a++) {
        if (rows[a][start] !== 0) {
          return `batch row ${b}: segment at ${start} starts with ${axes[a]}=${
            rows[a][start]
          } (each packed sample's mRoPE must restart at 0)`;
        }
      }
    }
    for (let t = 0; t < f.seqLen; t++) {
      for (let a = 0; a < 3; a++) {
        if (rows[a][t] > r0[t]) {
          return `batch row ${b}, position ${t}: ${axes[a]}=${
            rows[a][t]
          } runs ahead of text position ${
            r0[t]
          } (mRoPE must be computed per packed sample)`;
        }
      }
    }
  }
  return null;
}

function segmentsValid(segs: Segment[], seqLen: number): string | null {
  let end = 0;
  for (const [s, l] of segs) {
    if (s < end) return `segment [${s},${l}] overlaps the previous one`;
    if (s + l > seqLen) {
      return `segment [${s},${l}] runs past the ${seqLen} positions`;
    }
    end = s + l;
  }
  return null;
}

/**
 * The segments read off the attention masks the compute used are exactly
 * those of row 0 (one causal segment per row when unpacked), and the masks
 * are block-causal.
 */
export function attentionProblem(f: Fwd): string | null {
  if (f.attentionMaskProblem !== null) {
    return `the attention mask is not causal within segments: ${f.attentionMaskProblem}`;
  }
  if (f.attentionSegments === null) {
    // a call rejected before planning built no mask (logitsLen 0)
    return f.logitsLen === 0
      ? null
      : "the attention mask of this forward could not be read as causal segments";
  }
  if (f.attentionSegments.length !== f.batch) {
    return `attention segments reported for ${f.attentionSegments.length} batch rows, the input has ${f.batch}`;
  }
  for (let b = 0; b < f.batch; b++) {
    const got = f.attentionSegments[b];
    const bad = segmentsValid(got, f.seqLen);
    if (bad) return `batch row ${b}: ${bad}`;
    const r0 = f.row0?.[b];
    if (r0 === undefined) {
      if (f.packed) {
        // No row 0 (row0Problem reports that): hold attention to the packed samples.
        const lens = f.segmentLengths?.[b];
        if (!lens) continue;
        const want: Segment[] = [];
        let at = 0;
        for (const l of lens) {
          want.push([at, l]);
          at += l;
        }
        const gotCore = got.filter(([s]) => s < at);
        if (JSON.stringify(gotCore) !== JSON.stringify(want)) {
          return `batch row ${b}: attention used segments ${
            fmt(got)
          } but the packed samples are ${
            fmt(want)
          } (attention must never cross a packed segment)`;
        }
        continue;
      }
      if (got.length !== 1 || got[0][0] !== 0) {
        return `batch row ${b}: unpacked row attends over segments ${
          fmt(got)
        }, expected one causal segment starting at 0`;
      }
      continue;
    }
    const want = segmentSpans(r0);
    // Trailing padding after the packed samples may be masked out entirely.
    const padFrom = f.segmentLengths?.[b] ? sum(f.segmentLengths[b]) : f.seqLen;
    const core = want.filter(([s]) => s < padFrom);
    const gotCore = got.filter(([s]) => s < padFrom);
    if (JSON.stringify(core) !== JSON.stringify(gotCore)) {
      const i = core.findIndex((s, k) =>
        JSON.stringify(s) !== JSON.stringify(gotCore[k])
      );
      return `batch row ${b}: attention used segments ${
        fmt(got)
      } but row 0 gives ${fmt(want)} (first difference at segment ${
        i < 0 ? core.length : i
      }; attention must never cross a packed segment)`;
    }
    const extra = got.find(([s]) => s >= padFrom);
    if (extra && !want.some((w) => w[0] === extra[0] && w[1] === extra[1])) {
      return `batch row ${b}: padding segment ${
        fmt(extra)
      } does not follow row 0 (${fmt(want)})`;
    }
  }
  return null;
}

/** All array-dependent checks of one forward. */
export function deriveChecks(f: Fwd): ForwardChecks {
  return {
    segments: f.row0 === null ? null : f.row0.map((r) => segmentSpans(r)),
    row0: row0Problem(f),
    mrope: mropeProblem(f),
    attention: attentionProblem(f),
  };
}
