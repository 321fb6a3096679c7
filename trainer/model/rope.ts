/**
 * Position bookkeeping on the CPU: Qwen3-VL multimodal RoPE indices
 * (HF `get_rope_index`), packed 4-row position ids, and the rotary tables
 * of the text decoder (interleaved mRoPE) and of the vision tower (2D
 * rotary). Segment boundaries from row 0 live in `trainer/common/segments.ts`.
 */
import type { Qwen3VLConfig } from "./config.ts";

export interface RopeIndex {
  /** [3, B, T] flattened row-major (t, h, w rows). */
  positionIds: Int32Array;
  batch: number;
  seqLen: number;
  /** Per row: max position + 1 - T (HF `rope_deltas`, padding included in T). */
  ropeDeltas: number[];
}

/**
 * HF `Qwen3VLModel.get_rope_index` for images: text tokens advance all three
 * axes together; an image's `t*h*w/merge^2` placeholder tokens take
 * (t, h, w) grid coordinates offset by the text position before them, and
 * text resumes at max + 1. Images are consumed from `imageGridThw` in row
 * order. Padded positions (attentionMask 0) get position 1, as in HF.
 */
export function getRopeIndex(
  cfg: Qwen3VLConfig,
  inputIds: Int32Array[],
  imageGridThw: number[][] = [],
  attentionMask?: Int32Array[],
): RopeIndex {
  const batch = inputIds.length;
  const seqLen = batch ? inputIds[0].length : 0;
  const m = cfg.vision_config.spatial_merge_size;
  const imageId = cfg.image_token_id;
  const pos = new Int32Array(3 * batch * seqLen).fill(1);
  const deltas: number[] = [];
  let img = 0;
  for (let b = 0; b < batch; b++) {
    const row = inputIds[b];
    if (row.length !== seqLen) {
      throw new Error(
        `getRopeIndex: row ${b} has ${row.length} tokens, row 0 has ${seqLen}`,
      );
    }
    const valid: number[] = [];
    for (let i = 0; i < seqLen; i++) {
      if (!attentionMask || attentionMask[b][i] !== 0) valid.push(i);
    }
    const out = new Int32Array(3 * valid.length);
    let next = 0; // next text position
    let j = 0;
    while (j < valid.length) {
      if (row[valid[j]] !== imageId) {
        out[j] = out[valid.length + j] = out[2 * valid.length + j] = next++;
        j++;
        continue;
      }
      if (img >= imageGridThw.length) {
        throw new Error(
          `getRopeIndex: row ${b} position ${valid[j]} starts image ${
            img + 1
          } but image_grid_thw lists ${imageGridThw.length} image(s)`,
        );
      }
      const [t, h, w] = imageGridThw[img];
      const gh = h / m, gw = w / m;
      const n = t * gh * gw;
      for (let k = 0; k < n; k++) {
        if (j + k >= valid.length || row[valid[j + k]] !== imageId) {
          throw new Error(
            `getRopeIndex: image ${img} (grid ${t}x${h}x${w}) needs ${n} consecutive image tokens in row ${b} from position ${
              valid[j]
            }, found ${k}`,
          );
        }
        const ti = Math.floor(k / (gh * gw)),
          hi = Math.floor(k / gw) % gh,
          wi = k % gw;
        out[j + k] = next + ti;
        out[valid.length + j + k] = next + hi;
        out[2 * valid.length + j + k] = next + wi;
      }
      next += Math.max(t, gh, gw);
      j += n;
      img++;
    }
    for (let a = 0; a < 3; a++) {
      for (let k = 0; k < valid.length; k++) {
        pos[(a * batch + b) * seqLen + valid[k]] = out[a * valid.length + k];
      }
    }
    deltas.push(next - seqLen);
  }
  if (img !== imageGridThw.length) {
    throw new Error(
      `getRopeIndex: image_grid_thw lists ${imageGridThw.length} image(s) but the token rows hold ${img}`,
    );
  }
  return { positionIds: pos, batch, seqLen, ropeDeltas: deltas };
}

/**
 * 4-row position ids [4, T] (`[text; t; h; w]`) for one padding-free packed
 * row made of `segments` (token ids and the image grids of that segment, in
 * order). Row 0 restarts at 0 at each segment, which is what marks the
 * boundaries for block-causal attention.
 */
export function packedPositionIds(
  cfg: Qwen3VLConfig,
  segments: { inputIds: Int32Array; imageGridThw: number[][] }[],
): Int32Array {
  const total = segments.reduce((n, s) => n + s.inputIds.length, 0);
  const out = new Int32Array(4 * total);
  let off = 0;
  for (const s of segments) {
    const n = s.inputIds.length;
    const r = getRopeIndex(cfg, [s.inputIds], s.imageGridThw);
    for (let i = 0; i < n; i++) {
      out[off + i] = i;
      for (let a = 0; a < 3; a++) {
        out[(a + 1) * total + off + i] = r.positionIds[a * n + i];
      }
    }
    off += n;
  }
  return out;
}

/** HF default RoPE inverse frequencies in float32: 1 / theta^(2i/dim). */
export function invFreq(dim: number, theta: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    out[i] = Math.fround(1 / Math.pow(theta, (2 * i) / dim));
  }
  return out;
}

/**
 * Text decoder cos/sin tables [B, T, headDim] from 3-row mRoPE positions
 * [3, B, T] with the interleaved layout of HF `apply_interleaved_mrope`:
 * frequency i uses the h axis when i % 3 == 1 and i < 3*section[1], the w
 * axis when i % 3 == 2 and i < 3*section[2], else the t axis.
 */
export function textRopeTables(
  cfg: Qwen3VLConfig,
  pos3: Int32Array,
  batch: number,
  seqLen: number,
): { cos: Float32Array; sin: Float32Array } {
  const tc = cfg.text_config;
  const d = tc.head_dim, half = d / 2;
  const inv = invFreq(d, tc.rope_theta);
  const sec = tc.rope_scaling.mrope_section;
  const axis = new Int32Array(half);
  for (let i = 0; i < half; i++) {
    axis[i] = i % 3 === 1 && i < 3 * sec[1]
      ? 1
      : i % 3 === 2 && i < 3 * sec[2]
      ? 2
      : 0;
  }
  const n = batch * seqLen;
  const cos = new Float32Array(n * d), sin = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < half; i++) {
      const f = Math.fround(pos3[axis[i] * n + r] * inv[i]);
      const c = Math.cos(f), s = Math.sin(f);
      cos[r * d + i] = cos[r * d + half + i] = c;
      sin[r * d + i] = sin[r * d + half + i] = s;
    }
  }
  return { cos, sin };
}

/** Patch (row, col) of every vision token of one image, in merge-block order. */
function patchCoords(
  h: number,
  w: number,
  m: number,
): { row: Int32Array; col: Int32Array } {
  const row = new Int32Array(h * w), col = new Int32Array(h * w);
  let k = 0;
  for (let bh = 0; bh < h / m; bh++) {
    for (let bw = 0; bw < w / m; bw++) {
      for (let ih = 0; ih < m; ih++) {
        for (let iw = 0; iw < m; iw++, k++) {
          row[k] = bh * m + ih;
          col[k] = bw * m + iw;
        }
      }
    }
  }
  return { row, col };
}

/**
 * Vision 2D rotary tables [P, headDim] for one image (HF `rot_pos_emb`):
 * the first quarter of the frequencies follows the patch row, the second the
 * column, and the half is duplicated for rotate-half.
 */
export function visionRopeTables(
  cfg: Qwen3VLConfig,
  grid: number[],
): { cos: Float32Array; sin: Float32Array } {
  const vc = cfg.vision_config;
  const d = vc.hidden_size / vc.num_heads;
  const inv = invFreq(d / 2, 10000); // d/4 frequencies
  const q = inv.length;
  const [t, h, w] = grid;
  const { row, col } = patchCoords(h, w, vc.spatial_merge_size);
  const p = h * w;
  const cos = new Float32Array(t * p * d), sin = new Float32Array(t * p * d);
  for (let ti = 0; ti < t; ti++) {
    for (let k = 0; k < p; k++) {
      const base = (ti * p + k) * d;
      for (let i = 0; i < q; i++) {
        const fr = Math.fround(row[k] * inv[i]),
          fc = Math.fround(col[k] * inv[i]);
        for (const off of [0, d / 2]) {
          cos[base + off + i] = Math.cos(fr);
          sin[base + off + i] = Math.sin(fr);
          cos[base + off + q + i] = Math.cos(fc);
          sin[base + off + q + i] = Math.sin(fc);
        }
      }
    }
  }
  return { cos, sin };
}

/** torch.linspace(0, end, steps) in float32. */
function linspace(end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) return out;
  const step = end / (steps - 1);
  for (let i = 0; i < steps; i++) out[i] = Math.fround(i * step);
  return out;
}

/**
 * Bilinear interpolation matrix [t*h*w, numPos] of HF
 * `fast_pos_embed_interpolate` for one image: the learned side x side
 * position grid resampled to h x w (align-corners), rows in merge-block
 * order and repeated over t. `matrix @ pos_embed.weight` gives the
 * per-patch position embedding; as a matmul its gradient runs on wasm.
 */
export function posInterpMatrix(
  cfg: Qwen3VLConfig,
  grid: number[],
): Float32Array {
  const vc = cfg.vision_config;
  const side = Math.round(Math.sqrt(vc.num_position_embeddings));
  const [t, h, w] = grid;
  const hs = linspace(side - 1, h), ws = linspace(side - 1, w);
  const { row, col } = patchCoords(h, w, vc.spatial_merge_size);
  const n = vc.num_position_embeddings;
  const p = h * w;
  const out = new Float32Array(t * p * n);
  for (let k = 0; k < p; k++) {
    const y = hs[row[k]], x = ws[col[k]];
    const y0 = Math.trunc(y), x0 = Math.trunc(x);
    const y1 = Math.min(y0 + 1, side - 1), x1 = Math.min(x0 + 1, side - 1);
    const dy = Math.fround(y - y0), dx = Math.fround(x - x0);
    const base = k * n;
    out[base + y0 * side + x0] += Math.fround((1 - dy) * (1 - dx));
    out[base + y0 * side + x1] += Math.fround((1 - dy) * dx);
    out[base + y1 * side + x0] += Math.fround(dy * (1 - dx));
    out[base + y1 * side + x1] += Math.fround(dy * dx);
  }
  for (let ti = 1; ti < t; ti++) out.copyWithin(ti * p * n, 0, p * n);
  return out;
}
