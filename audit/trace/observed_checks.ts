/**
 * Invariants of what training forwards were really fed, from the
 * recorder's observations (`observed` on detailed forward lines: token ids
 * read off the fed rows, per coord slot the digests of the row fed, of the
 * soft row recomputed from the previous pass's logits at p - 1, and of the
 * base row; tape connectivity of the fed embeddings). Design §2, "Channel
 * A": a fresh base embedding every pass, on the tape for the last one; only
 * coord-slot rows replaced, by `softmax(z[p-1, coord_ids] / T) @ E(coord_ids)`.
 */
import type {
  Digest,
  ForwardRecord,
  SlotObservation,
} from "../../trainer/trace/schema.ts";
import { forwardChecker, where } from "./forward_checks.ts";
import type { Checker } from "./types.ts";

/**
 * Relative tolerance of digest comparisons, against the largest row norm
 * involved. The recorder recomputes soft rows in float64; the trainer's
 * float32 softmax and matmul differ from it by ~1e-7 of the table rows'
 * size, while a wrong row differs by far more than 1e-5.
 */
export const DIGEST_TOLERANCE = 1e-5;

/** How the row fed at a coord slot relates to the recomputed soft row. */
export type SlotVerdict =
  /** equal to the soft row from the previous pass's logits at p - 1 */
  | "soft"
  /** still the base row E(id): soft context not applied */
  | "base"
  /** base + soft: added instead of replacing the base row */
  | "added"
  /** some other row: not built from the logits at p - 1 */
  | "other";

function near(a: number, b: number, scale: number): boolean {
  return Math.abs(a - b) <= DIGEST_TOLERANCE * scale + 1e-12;
}

function same(a: Digest, b: Digest, scale: number): boolean {
  return a.every((v, i) => near(v, b[i], scale));
}

/** Classifies one observed slot of a later pass (digests present). */
export function slotVerdict(s: SlotObservation): SlotVerdict {
  const fed = s.fed!, want = s.want!, base = s.base!;
  const scale = Math.max(fed[0], want[0], base[0]);
  if (same(fed, want, scale)) return "soft";
  if (same(fed, base, scale)) return "base";
  // digests are linear in the row (the norm, component 0, is not)
  if (
    near(fed[1], base[1] + want[1], scale) &&
    near(fed[2], base[2] + want[2], scale)
  ) {
    return "added";
  }
  return "other";
}

const fmt = (xs: readonly number[], max = 8): string =>
  xs.length <= max
    ? JSON.stringify(xs)
    : `${JSON.stringify(xs.slice(0, max)).slice(0, -1)},... (${xs.length})]`;

/** Slots of a later Channel-A pass (with digests), per batch row. */
function laterSlots(r: ForwardRecord): SlotObservation[][] | null {
  if (r.observed === null || r.pass === 0) return null;
  return r.observed.slots;
}

/** Slots of a forward whose verdict is `v`, as "p (id)" strings. */
function slotsWith(
  r: ForwardRecord,
  v: SlotVerdict,
): { b: number; at: string[] } | null {
  const rows = laterSlots(r);
  if (!rows) return null;
  for (let b = 0; b < rows.length; b++) {
    const hit = rows[b].filter((s) => slotVerdict(s) === v);
    if (hit.length > 0) return { b, at: hit.map((s) => `${s.p}`) };
  }
  return null;
}

const isLaterA = (r: ForwardRecord) =>
  r.channel === "A" && r.purpose === "train" && laterSlots(r) !== null;

export const OBSERVED_CHECKERS: Checker[] = [
  forwardChecker(
    "fed-rows",
    "every fed row outside the replaced coord slots is, bitwise, the embedding-table row of its token (image placeholders included)",
    (r) => r.observed !== null,
    (r) => {
      const rows = r.observed!.foreignRows;
      const b = rows.findIndex((x) => x.length > 0);
      if (b < 0) return null;
      return r.pass === 0
        ? `${where(r)}: batch row ${b}: rows ${
          fmt(rows[b])
        } fed to the first pass are no token's embedding; the first pass must feed the plain embedding of the teacher-forced ids`
        : `${where(r)}: batch row ${b}: rows ${
          fmt(rows[b])
        } differ from the embedding of their token but are not coord slots; only coord-slot rows may be replaced`;
    },
  ),
  forwardChecker(
    "softctx-applied",
    "every Channel-A pass after the first replaces every coord slot of the teacher-forced answer",
    isLaterA,
    (r) => {
      const hit = slotsWith(r, "base");
      return hit === null
        ? null
        : `${where(r)}: batch row ${hit.b}: coord slots ${
          fmt(hit.at.map(Number))
        } were fed their base embedding E(id); soft context was not applied there`;
    },
  ),
  forwardChecker(
    "softctx-replace",
    "a soft row replaces the coord slot's base row (is not added to it)",
    isLaterA,
    (r) => {
      const hit = slotsWith(r, "added");
      return hit === null
        ? null
        : `${where(r)}: batch row ${hit.b}: coord slots ${
          fmt(hit.at.map(Number))
        } were fed E(id) + soft row; the soft row must replace the base row`;
    },
  ),
  forwardChecker(
    "causal-shift",
    "the row fed at coord slot p equals softmax(z[p-1, coord_ids] / T) @ E(coord_ids) from the previous pass's logits (recomputed by the recorder)",
    isLaterA,
    (r) => {
      const hit = slotsWith(r, "other");
      return hit === null
        ? null
        : `${where(r)}: batch row ${hit.b}: the rows fed at coord slots ${
          fmt(hit.at.map(Number))
        } differ from the soft rows recomputed from the previous pass's logits at p-1 (logits at p-1 predict the token at p)`;
    },
  ),
  forwardChecker(
    "fresh-base-embedding",
    "the gradient-recording pass is fed embeddings computed on the tape from the embedding weights (a fresh embedding-module call, not a reused tensor)",
    (r) => r.observed !== null && r.gradRecorded,
    (r) =>
      r.observed!.embedsOnTape === true
        ? null
        : `${where(r)}: the fed inputs_embeds ${
          r.observed!.embedsOnTape === false
            ? "is not computed from the embedding weights on the gradient tape"
            : "was observed without a gradient tape"
        }; the last pass must rebuild its base by calling the embedding module inside the tape`,
  ),
];
