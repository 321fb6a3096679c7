/**
 * Channel-A soft self-context embeddings.
 *
 * Pass k >= 1 feeds, at every coord slot p of the answer, the expected coord
 * embedding under the previous pass's coord distribution read at p - 1:
 * `softmax(z[p-1, coord_ids] / T) @ E(coord_ids)`. The base embedding is
 * rebuilt by the embedding module on the teacher-forced ids every pass (never
 * taken from a forward's output), only coord-slot rows are replaced, and the
 * soft rows are detached.
 */
import { tf } from "../runtime.ts";
import { NUM_BINS } from "../coord/codec.ts";
import { faultActive } from "../common/faults.ts";

/** The embedding module call (`model.embedTokens`): [B, T] int32 -> [B, T, H]. */
export type EmbedFn = (inputIds: tf.Tensor2D) => tf.Tensor3D;

/**
 * Identity whose gradient is zero: the value is used, nothing flows back
 * through it (TF.js has no `stopGradient` op).
 */
export function detach<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const a = inputs[0] as tf.Tensor;
    return {
      value: a.clone(),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
    };
  });
  return f(x) as T;
}

function checkCoordIds(coordTokenIds: ArrayLike<number>): Int32Array {
  if (coordTokenIds.length !== NUM_BINS) {
    throw new Error(
      `soft context needs the ${NUM_BINS} coord token ids in bin order, got ${coordTokenIds.length}`,
    );
  }
  return Int32Array.from(coordTokenIds);
}

/** Start of `ids` when they are consecutive integers, else -1. */
export function contiguousStart(ids: ArrayLike<number>): number {
  for (let k = 1; k < ids.length; k++) if (ids[k] !== ids[0] + k) return -1;
  return ids.length > 0 ? ids[0] : -1;
}

/**
 * Coord columns of `logits` [B, T, V] -> [B, T, 1000] in bin order. A slice
 * when the ids are consecutive (differentiable on every backend), else a
 * gather (used outside the tape only; wasm lacks gather's gradient kernel).
 */
export function coordColumns(
  logits: tf.Tensor3D,
  coordTokenIds: ArrayLike<number>,
): tf.Tensor3D {
  const ids = checkCoordIds(coordTokenIds);
  const [B, T] = logits.shape;
  const start = contiguousStart(ids);
  if (start >= 0) return tf.slice(logits, [0, 0, start], [B, T, NUM_BINS]);
  return tf.gather(logits, ids, 2) as tf.Tensor3D;
}

/**
 * Expected coord embedding per position, already shifted: row p of the
 * result is `softmax(z[p-1, coord_ids] / T) @ E(coord_ids)` with `E` from
 * `embedTokens` and detached; row 0 is zero (no p - 1). Run this outside
 * the gradient tape.
 *
 * @param prevLogits [B, T, V] logits of the previous pass.
 * @returns [B, T, H]
 * @example
 * const soft = expectedCoordEmbeddings((x) => model.embedTokens(x), logits,
 *   tokenizer.coordIds, 1);
 */
export function expectedCoordEmbeddings(
  embedTokens: EmbedFn,
  prevLogits: tf.Tensor3D,
  coordTokenIds: ArrayLike<number>,
  temperature = 1,
): tf.Tensor3D {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`softctx_temperature must be > 0, got ${temperature}`);
  }
  const ids = checkCoordIds(coordTokenIds);
  return tf.tidy(() => {
    const [B, T] = prevLogits.shape;
    // E(coord_ids) [1000, H] through the embedding module, detached.
    const e3 = embedTokens(tf.tensor2d(ids, [1, NUM_BINS], "int32"));
    const H = e3.shape[2];
    const E = detach(tf.reshape(e3, [NUM_BINS, H]) as tf.Tensor2D);
    const z = detach(coordColumns(prevLogits, ids));
    const zs = tf.sub(z, tf.max(z, -1, true));
    const probs = tf.softmax(temperature === 1 ? zs : tf.div(zs, temperature));
    const soft = tf.reshape(
      tf.matMul(tf.reshape(probs, [B * T, NUM_BINS]), E),
      [B, T, H],
    );
    if (faultActive("softctx-logits-at-p")) return soft as tf.Tensor3D;
    // p - 1 shift: row p takes the distribution predicted at p - 1.
    if (T === 1) return tf.zeros([B, 1, H]) as tf.Tensor3D;
    return tf.concat([
      tf.zeros([B, 1, H]),
      tf.slice(soft, [0, 0, 0], [B, T - 1, H]),
    ], 1) as tf.Tensor3D;
  });
}

/** Coord-slot positions as a [B, T, H] boolean mask (flat index b*T + t). */
function slotMask(
  coordSlots: readonly number[],
  B: number,
  T: number,
  H: number,
): tf.Tensor3D {
  const m = new Uint8Array(B * T * H);
  for (const f of coordSlots) {
    if (!Number.isInteger(f) || f < 0 || f >= B * T) {
      throw new RangeError(`coord slot ${f} is outside the [${B}, ${T}] batch`);
    }
    if (f % T === 0) {
      throw new Error(
        `coord slot at position 0 of row ${
          Math.floor(f / T)
        } has no previous position to read its distribution from`,
      );
    }
    m.fill(1, f * H, (f + 1) * H);
  }
  return tf.tensor3d(m, [B, T, H], "bool");
}

export interface SoftContextArgs {
  /** The embedding module, e.g. `(ids) => model.embedTokens(ids)`. */
  embedTokens: EmbedFn;
  /** Teacher-forced ids [B, T] int32. */
  inputIds: tf.Tensor2D;
  /** Flat positions `b * T + t` of the answer's coord tokens. */
  coordSlots: readonly number[];
  /** The 1000 coord token ids in bin order. */
  coordTokenIds: ArrayLike<number>;
  /** Logits [B, T, V] of the previous pass; absent on pass 0. */
  prevLogits?: tf.Tensor3D | null;
  /** Precomputed `expectedCoordEmbeddings(...)` (takes precedence). */
  softRows?: tf.Tensor3D | null;
  /** `softctx_temperature`, default 1. */
  temperature?: number;
}

/**
 * The input embeddings of one Channel-A pass: a fresh `embedTokens(inputIds)`
 * whose coord-slot rows (and only those) are replaced by the expected coord
 * embeddings from the previous pass (p - 1 shift, detached). Pass 0 (no
 * previous logits) returns the plain base embedding. Every slot must hold a
 * coord token id and lie after position 0; other rows, image placeholders
 * included, are bitwise those of the base embedding.
 *
 * @example
 * let logits = null;
 * for (let k = 0; k < n; k++) {
 *   const embeds = softContextEmbeddings({ embedTokens: (x) => model.embedTokens(x),
 *     inputIds, coordSlots, coordTokenIds: tok.coordIds, prevLogits: logits });
 *   logits = model.forward({ inputsEmbeds: embeds, positionIds, useCache: false }).logits;
 * }
 */
export function softContextEmbeddings(args: SoftContextArgs): tf.Tensor3D {
  const { inputIds, coordSlots } = args;
  const [B, T] = inputIds.shape;
  const ids = inputIds.dataSync();
  const coord = new Set(Array.from(checkCoordIds(args.coordTokenIds)));
  for (const f of coordSlots) {
    if (!coord.has(ids[f])) {
      throw new Error(
        `soft-context slot ${f} (row ${Math.floor(f / T)}, position ${
          f % T
        }) holds token id ${
          ids[f]
        }, not a coord token; only coord-slot rows may be replaced`,
      );
    }
  }
  const base = args.embedTokens(inputIds);
  let soft = args.softRows ?? null;
  if (!soft && !args.prevLogits) return base;
  const H = base.shape[2];
  const owned = !soft;
  if (!soft) {
    soft = expectedCoordEmbeddings(
      args.embedTokens,
      args.prevLogits!,
      args.coordTokenIds,
      args.temperature ?? 1,
    );
  }
  if (soft.shape[0] !== B || soft.shape[1] !== T || soft.shape[2] !== H) {
    throw new Error(
      `soft rows are [${soft.shape}], expected [${B}, ${T}, ${H}]`,
    );
  }
  const mask = slotMask(coordSlots, B, T, H);
  // `where` picks base values unchanged outside the mask: bitwise identical.
  const out = tf.where(
    mask,
    faultActive("softctx-add") ? tf.add(base, detach(soft)) : detach(soft),
    base,
  ) as tf.Tensor3D;
  mask.dispose();
  base.dispose();
  if (owned) soft.dispose();
  return out;
}
