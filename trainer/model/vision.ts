/**
 * Qwen3-VL vision tower (HF `Qwen3VLVisionModel`): patch embedding as a
 * linear over flattened [C*tps*ps*ps] patches, learned position embedding
 * bilinearly resampled to each image's grid, pre-norm blocks with 2D rotary
 * attention restricted to each frame, the 2x2 patch merger, and the deepstack
 * mergers tapped after `deepstack_visual_indexes` blocks.
 */
import { tf } from "../runtime.ts";
import type { Qwen3VLConfig } from "./config.ts";
import {
  activation,
  attendChunk,
  blockAttention,
  fusedAvailable,
  layerNorm,
  linear,
  mmConstLeft,
  qkPrep,
  unstack0,
} from "./ops.ts";
import { posInterpMatrix, visionRopeTables } from "./rope.ts";
import type { AttentionBlock } from "../backend/fused_kernels.ts";
import { additiveMask } from "./attention.ts";

export type ParamGetter = (name: string) => tf.Tensor;

/**
 * Frames whose patches attend together in one rank-2 product: consecutive
 * frames are grouped up to this many patches with a block-diagonal mask,
 * which costs a little redundant arithmetic but far fewer small kernels.
 */
const GROUP_PATCHES = 256;

export interface VisionOutput {
  /** Merged visual features [Nmerged, out_hidden_size]. */
  embeds: tf.Tensor2D;
  /** One [Nmerged, out_hidden_size] tensor per deepstack index. */
  deepstack: tf.Tensor2D[];
}

function rotateHalf(x: tf.Tensor): tf.Tensor {
  const d = x.shape[x.shape.length - 1];
  const [x1, x2] = tf.split(x, [d / 2, d / 2], -1);
  return tf.concat([tf.neg(x2), x1], -1);
}

/** Run the vision tower on `pixelValues` [Npatch, C*tps*ps*ps]. */
export function visionForward(
  cfg: Qwen3VLConfig,
  p: ParamGetter,
  pixelValues: tf.Tensor2D,
  imageGridThw: number[][],
): VisionOutput {
  const vc = cfg.vision_config;
  const dv = vc.hidden_size, nh = vc.num_heads, hd = dv / nh;
  const m2 = vc.spatial_merge_size ** 2;
  const inDim = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2;
  const nPatch = imageGridThw.reduce((n, [t, h, w]) => n + t * h * w, 0);
  for (const [i, g] of imageGridThw.entries()) {
    if (g.length !== 3 || !g.every((v) => Number.isInteger(v) && v >= 1)) {
      throw new Error(
        `imageGridThw[${i}] must be [t, h, w] positive integers, got ${
          JSON.stringify(g)
        }`,
      );
    }
    if (g[1] % vc.spatial_merge_size || g[2] % vc.spatial_merge_size) {
      throw new Error(
        `imageGridThw[${i}] ${
          JSON.stringify(g)
        }: h and w must be multiples of spatial_merge_size ${vc.spatial_merge_size}`,
      );
    }
  }
  if (pixelValues.shape[0] !== nPatch || pixelValues.shape[1] !== inDim) {
    throw new Error(
      `pixelValues is [${pixelValues.shape}] but imageGridThw ${
        JSON.stringify(imageGridThw)
      } needs [${nPatch}, ${inDim}] (C*tps*ps*ps)`,
    );
  }

  // CPU-side tables: position interpolation, rotary, frame groups
  const interp = new Float32Array(nPatch * vc.num_position_embeddings);
  const cos = new Float32Array(nPatch * hd),
    sin = new Float32Array(nPatch * hd);
  const frames: number[] = [];
  let off = 0;
  for (const g of imageGridThw) {
    const n = g[0] * g[1] * g[2];
    interp.set(posInterpMatrix(cfg, g), off * vc.num_position_embeddings);
    const r = visionRopeTables(cfg, g);
    cos.set(r.cos, off * hd);
    sin.set(r.sin, off * hd);
    for (let t = 0; t < g[0]; t++) frames.push(g[1] * g[2]);
    off += n;
  }
  // blas path: one attention block per frame (a block is a few BLAS calls
  // inside one kernel, so grouping would only add masked-out work)
  const fused = fusedAvailable();
  const limit = fused ? 1 : GROUP_PATCHES;
  const groups: { start: number; len: number; allowed: Uint8Array | null }[] =
    [];
  for (let f = 0, start = 0; f < frames.length;) {
    const members: number[] = [];
    let len = 0;
    while (
      f < frames.length &&
      (members.length === 0 || len + frames[f] <= limit)
    ) {
      members.push(frames[f]);
      len += frames[f++];
    }
    // block-diagonal over the group's frames
    let allowed: Uint8Array | null = null;
    if (members.length > 1) {
      allowed = new Uint8Array(len * len);
      let a = 0;
      for (const n of members) {
        for (let i = a; i < a + n; i++) {
          allowed.fill(1, i * len + a, i * len + a + n);
        }
        a += n;
      }
    }
    groups.push({ start, len, allowed });
    start += len;
  }
  const blocks = groups.map((g) => ({
    b: 0,
    q0: g.start,
    qLen: g.len,
    k0: g.start,
    kLen: g.len,
    allowed: g.allowed,
  }));

  return tf.tidy(() => {
    const maskT = fused
      ? []
      : groups.map((g) =>
        g.allowed
          ? tf.tensor3d(additiveMask(g.allowed), [g.len, 1, g.len])
          : null
      );
    const cosT = fused ? null : tf.tensor3d(cos, [nPatch, 1, hd]),
      sinT = fused ? null : tf.tensor3d(sin, [nPatch, 1, hd]);
    const cos2 = fused ? tf.tensor2d(cos, [nPatch, hd]) : null,
      sin2 = fused ? tf.tensor2d(sin, [nPatch, hd]) : null;
    const wPatch = p("model.visual.patch_embed.proj.weight") as tf.Tensor2D;
    // pixel values and the interpolation matrix are inputs, not weights:
    // only the weights' gradients are built
    let x = tf.add(
      mmConstLeft(pixelValues, wPatch),
      p("model.visual.patch_embed.proj.bias"),
    ) as tf.Tensor2D;
    const posW = p("model.visual.pos_embed.weight") as tf.Tensor2D;
    x = tf.add(
      x,
      mmConstLeft(
        tf.tensor2d(interp, [nPatch, vc.num_position_embeddings]),
        posW,
      ),
    );
    const scale = 1 / Math.sqrt(hd);
    const deepstack: tf.Tensor2D[] = [];
    for (let i = 0; i < vc.depth; i++) {
      const b = `model.visual.blocks.${i}`;
      const xn = layerNorm(
        x,
        p(`${b}.norm1.weight`) as tf.Tensor1D,
        p(`${b}.norm1.bias`) as tf.Tensor1D,
        1e-6,
      );
      const qkvFlat = linear(
        xn,
        p(`${b}.attn.qkv.weight`) as tf.Tensor2D,
        p(`${b}.attn.qkv.bias`) as tf.Tensor1D,
      ) as tf.Tensor2D; // [N, 3 * dv]: q | k | v, heads inside each
      const attn = fused
        ? fusedVisionAttention(qkvFlat, cos2, sin2, blocks, nh, hd, scale)
        : compositeVisionAttention(
          qkvFlat,
          cosT!,
          sinT!,
          groups.map((g) => g.len),
          maskT,
          nh,
          hd,
          scale,
        );
      x = tf.add(
        x,
        linear(
          attn,
          p(`${b}.attn.proj.weight`) as tf.Tensor2D,
          p(`${b}.attn.proj.bias`) as tf.Tensor1D,
        ),
      );
      const xn2 = layerNorm(
        x,
        p(`${b}.norm2.weight`) as tf.Tensor1D,
        p(`${b}.norm2.bias`) as tf.Tensor1D,
        1e-6,
      );
      const h1 = activation(
        vc.hidden_act,
        linear(
          xn2,
          p(`${b}.mlp.linear_fc1.weight`) as tf.Tensor2D,
          p(`${b}.mlp.linear_fc1.bias`) as tf.Tensor1D,
        ),
      );
      x = tf.add(
        x,
        linear(
          h1,
          p(`${b}.mlp.linear_fc2.weight`) as tf.Tensor2D,
          p(`${b}.mlp.linear_fc2.bias`) as tf.Tensor1D,
        ),
      );
      const di = vc.deepstack_visual_indexes.indexOf(i);
      if (di >= 0) {
        deepstack.push(
          merger(
            p,
            `model.visual.deepstack_merger_list.${di}`,
            x,
            dv * m2,
            true,
          ),
        );
      }
    }
    const embeds = merger(p, "model.visual.merger", x, dv * m2, false);
    return { embeds, deepstack };
  });
}

/**
 * Wasm path: 2D-rotary attention of qkv [N, 3 * nh * hd] restricted to the
 * frame groups (rank-2 products per head and group) -> [N, nh * hd].
 */
function compositeVisionAttention(
  qkvFlat: tf.Tensor2D,
  cosT: tf.Tensor3D,
  sinT: tf.Tensor3D,
  lens: number[],
  maskT: (tf.Tensor3D | null)[],
  nh: number,
  hd: number,
  scale: number,
): tf.Tensor2D {
  const nPatch = qkvFlat.shape[0];
  const qkv = tf.reshape(qkvFlat, [nPatch, 3, nh, hd]);
  const [q0, k0, v0] = tf.unstack(qkv, 1); // each [N, nh, hd]
  const q = tf.mul(
    tf.add(tf.mul(q0, cosT), tf.mul(rotateHalf(q0), sinT)),
    scale,
  );
  const k = tf.add(tf.mul(k0, cosT), tf.mul(rotateHalf(k0), sinT));
  const qH = tf.transpose(q, [1, 0, 2]); // [nh, N, hd]
  const kTH = tf.transpose(k, [1, 2, 0]); // [nh, hd, N]
  const vH = tf.transpose(v0, [1, 0, 2]); // [nh, N, hd]
  // split (not slice) per group: the gradient of a split is one concat,
  // a slice's is a full-size pad per chunk
  const heads: tf.Tensor2D[] = [];
  const qHs = unstack0(qH), kHs = unstack0(kTH), vHs = unstack0(vH);
  for (let h = 0; h < nh; h++) {
    const qs = lens.length > 1 ? tf.split(qHs[h], lens, 0) : [qHs[h]];
    const ks = lens.length > 1 ? tf.split(kHs[h], lens, 1) : [kHs[h]];
    const vs = lens.length > 1 ? tf.split(vHs[h], lens, 0) : [vHs[h]];
    const parts = lens.map((_, gi) =>
      attendChunk(
        qs[gi] as tf.Tensor2D,
        ks[gi] as tf.Tensor2D,
        vs[gi] as tf.Tensor2D,
        maskT[gi],
        1,
      )
    );
    heads.push(
      parts.length === 1 ? parts[0] : tf.concat(parts, 0) as tf.Tensor2D,
    );
  }
  return tf.reshape(tf.transpose(tf.stack(heads), [1, 0, 2]), [
    nPatch,
    nh * hd,
  ]) as tf.Tensor2D;
}

/** Blas path: the same attention as rotary-prep and block-attention kernels. */
function fusedVisionAttention(
  qkvFlat: tf.Tensor2D,
  cos: tf.Tensor2D | null,
  sin: tf.Tensor2D | null,
  blocks: AttentionBlock[],
  nh: number,
  hd: number,
  scale: number,
): tf.Tensor2D {
  const nPatch = qkvFlat.shape[0], dv = nh * hd;
  const [q, k, v] = tf.split(qkvFlat, [dv, dv, dv], 1) as tf.Tensor2D[];
  const prep = qkPrep(q, k, v, cos!, sin!, null, {
    B: 1,
    T: nPatch,
    nH: nh,
    nKV: nh,
    hd,
    eps: 0,
    scale,
  });
  return blockAttention(prep.q, prep.kT, prep.v, blocks, nh, nPatch);
}

/** HF `Qwen3VLVisionPatchMerger`: (norm, 2x2 shuffle) -> fc1 -> GELU -> fc2. */
function merger(
  p: ParamGetter,
  prefix: string,
  x: tf.Tensor2D,
  merged: number,
  postShuffle: boolean,
): tf.Tensor2D {
  const w = p(`${prefix}.norm.weight`) as tf.Tensor1D,
    b = p(`${prefix}.norm.bias`) as tf.Tensor1D;
  const shuffled = postShuffle
    ? layerNorm(tf.reshape(x, [-1, merged]), w, b, 1e-6)
    : tf.reshape(layerNorm(x, w, b, 1e-6), [-1, merged]);
  const h = activation(
    "gelu",
    linear(
      shuffled,
      p(`${prefix}.linear_fc1.weight`) as tf.Tensor2D,
      p(`${prefix}.linear_fc1.bias`) as tf.Tensor1D,
    ),
  );
  return linear(
    h,
    p(`${prefix}.linear_fc2.weight`) as tf.Tensor2D,
    p(`${prefix}.linear_fc2.bias`) as tf.Tensor1D,
  ) as tf.Tensor2D;
}
