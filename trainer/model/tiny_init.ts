/**
 * Geometry-aware initialisation of a freshly created tiny model (the
 * built-in preset trained from scratch; released checkpoints are never
 * touched):
 *
 * - `<|coord_k|>` embedding rows (tied with the LM head) start as Fourier
 *   features of `k / 999`, so neighbouring bins start with similar input
 *   embeddings and similar output logits: a gradient that raises bin k
 *   also raises k +- 1, instead of 1000 unrelated classes each learned
 *   from its own rare examples.
 * - The vision tower's learned position embedding starts as a 2D
 *   sinusoidal table on its `side x side` grid, so absolute patch
 *   positions are in the visual features from the first step (the
 *   text model's mRoPE only gives it relative positions).
 * - The patch embedding starts as low-frequency 2D DCT filters per colour
 *   channel (patch mean colour first, then where inside the patch the
 *   intensity changes) instead of random projections.
 *
 * All three are ordinary trainable weights afterwards.
 */
import { MAX_BIN, NUM_BINS } from "../coord/codec.ts";
import { tf } from "../runtime.ts";
import type { Qwen3VLForConditionalGeneration } from "./qwen3vl.ts";

/**
 * Fourier features of u in [0, 1]: `dim/2` sin/cos pairs whose frequencies
 * grow geometrically from `fMin` to `fMax` cycles over the unit range,
 * scaled so the vector's RMS is `rms`.
 */
export function fourierFeatures(
  u: number,
  dim: number,
  fMin: number,
  fMax: number,
  rms: number,
): Float32Array {
  const pairs = Math.floor(dim / 2);
  const out = new Float32Array(dim);
  for (let j = 0; j < pairs; j++) {
    const f = pairs > 1 ? fMin * (fMax / fMin) ** (j / (pairs - 1)) : fMin;
    const a = 2 * Math.PI * f * u;
    // sin/cos of one frequency: RMS of the pair is 1/sqrt(2) each
    out[2 * j] = Math.SQRT2 * rms * Math.sin(a);
    out[2 * j + 1] = Math.SQRT2 * rms * Math.cos(a);
  }
  return out;
}

/** Coord-bin embedding table [NUM_BINS, H]: row k = Fourier features of k/999. */
export function coordEmbeddingTable(hidden: number, rms: number): Float32Array {
  const out = new Float32Array(NUM_BINS * hidden);
  for (let k = 0; k < NUM_BINS; k++) {
    // up to 64 cycles: a bump can be as narrow as ~1/128 of the image
    out.set(fourierFeatures(k / MAX_BIN, hidden, 0.25, 64, rms), k * hidden);
  }
  return out;
}

/**
 * 2D sinusoidal position table [side*side, dim], row r*side + c: the first
 * half encodes the row, the second half the column.
 */
export function positionTable2d(
  side: number,
  dim: number,
  rms: number,
): Float32Array {
  const half = Math.floor(dim / 2);
  const out = new Float32Array(side * side * dim);
  const span = Math.max(1, side - 1);
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      const o = (r * side + c) * dim;
      out.set(fourierFeatures(r / span, half, 0.25, side / 2, rms), o);
      out.set(
        fourierFeatures(c / span, dim - half, 0.25, side / 2, rms),
        o + half,
      );
    }
  }
  return out;
}

/**
 * Patch-embedding weights [C*tps*ps*ps, dim] (the in-memory linear layout)
 * whose columns are 2D DCT-II basis functions of one colour channel, the
 * lowest frequencies first (u + v ascending), shared by the temporal
 * copies; columns beyond the 3 x (ps*ps) basis stay as given. Each column
 * is scaled to norm `colNorm`. Column 0 of each channel is that channel's
 * mean over the patch; the next ones say where inside the patch the
 * intensity changes, which is what sub-patch box edges need.
 */
export function dctPatchWeights(
  base: Float32Array,
  channels: number,
  tps: number,
  ps: number,
  dim: number,
  colNorm: number,
): Float32Array {
  const out = Float32Array.from(base);
  const freqs: [number, number][] = [];
  for (let s = 0; s <= 2 * (ps - 1); s++) {
    for (let u = 0; u <= s; u++) {
      const v = s - u;
      if (u < ps && v < ps) freqs.push([u, v]);
    }
  }
  const inDim = channels * tps * ps * ps;
  for (let j = 0; j < dim; j++) {
    const c = j % channels, f = Math.floor(j / channels);
    if (f >= freqs.length) break;
    const [u, v] = freqs[f];
    const col = new Float32Array(inDim);
    let n2 = 0;
    for (let t = 0; t < tps; t++) {
      for (let y = 0; y < ps; y++) {
        for (let x = 0; x < ps; x++) {
          const w = Math.cos((Math.PI * (2 * x + 1) * u) / (2 * ps)) *
            Math.cos((Math.PI * (2 * y + 1) * v) / (2 * ps));
          col[((c * tps + t) * ps + y) * ps + x] = w;
          n2 += w * w;
        }
      }
    }
    const scale = colNorm / Math.sqrt(n2);
    for (let i = 0; i < inDim; i++) out[i * dim + j] = col[i] * scale;
  }
  return out;
}

/** RMS of a tensor's entries. */
function rmsOf(t: tf.Tensor): number {
  return tf.tidy(() => Math.sqrt(tf.mean(tf.square(t)).dataSync()[0]));
}

/**
 * RMS of the vision position table over the patch filters' column norm. A
 * saturated patch's colour response is ~15x the filters' RMS, so a weaker
 * table is a small part of each token after the tower's LayerNorm. Measured
 * on the synthetic task (F1@0.5 ignoring desc, 64 val images): 0.5 -> 0.10
 * and 1.5 -> 0.29 after 600 steps; 3 -> 0.40 and 1.5 -> 0.51 after 1200.
 */
export const POSITION_TABLE_SCALE = 1.5;

/**
 * Applies the geometry-aware initialisation to a fresh model in place.
 * `coordIds[k]` is the token id of `<|coord_k|>`.
 */
export function applyGeometryInit(
  model: Qwen3VLForConditionalGeneration,
  coordIds: ArrayLike<number>,
): void {
  const H = model.config.text_config.hidden_size;
  const V = model.config.text_config.vocab_size;
  if (
    coordIds.length !== NUM_BINS ||
    !Array.from(coordIds).every((id) =>
      Number.isInteger(id) && id >= 0 && id < V
    )
  ) {
    throw new RangeError(
      `geometry init needs the ${NUM_BINS} coord token ids, got ${coordIds.length} (all below vocab_size ${V})`,
    );
  }
  const emb = model.param("model.language_model.embed_tokens.weight");
  // same RMS as the randomly initialised rows around them
  const table = coordEmbeddingTable(H, rmsOf(emb));
  const rows = emb.arraySync() as number[][];
  for (let k = 0; k < NUM_BINS; k++) {
    rows[coordIds[k]] = Array.from(table.subarray(k * H, (k + 1) * H));
  }
  tf.tidy(() => emb.assign(tf.tensor2d(rows)));

  const vc = model.config.vision_config;
  {
    const w = model.param("model.visual.patch_embed.proj.weight");
    const [inDim, dim] = w.shape;
    const colNorm = rmsOf(w) * Math.sqrt(inDim);
    const data = dctPatchWeights(
      w.dataSync() as Float32Array,
      vc.in_channels,
      vc.temporal_patch_size,
      vc.patch_size,
      dim,
      colNorm,
    );
    tf.tidy(() => w.assign(tf.tensor2d(data, [inDim, dim])));
  }
  const side = Math.round(Math.sqrt(vc.num_position_embeddings));
  const pos = model.param("model.visual.pos_embed.weight");
  const patchW = model.param("model.visual.patch_embed.proj.weight");
  const inDim = patchW.shape[0];
  const rms = rmsOf(patchW) * Math.sqrt(inDim) * POSITION_TABLE_SCALE;
  tf.tidy(() =>
    pos.assign(
      tf.tensor2d(positionTable2d(side, vc.hidden_size, rms), [
        side * side,
        vc.hidden_size,
      ]),
    )
  );
}
