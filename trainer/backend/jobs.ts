/**
 * The compute of the blas backend's fused and elementwise kernels as jobs
 * over ranges of independent work units, so that the main thread and the
 * worker threads of pool.ts can each take a share. Plain functions on
 * TypedArrays (no TF.js): the workers import this module.
 *
 * Determinism, independent of the thread count: a unit is a fixed slice of
 * the work (a chunk of rows or elements, or one attention (row, kv head)
 * pair), units write disjoint outputs, and a reduction across units (a
 * weight gradient summed over rows, a loss summed over rows) writes one
 * partial per unit that the caller adds up in unit order afterwards.
 * Sums run in double precision and are rounded once when stored.
 */
import type { BlasLibrary } from "./blas_lib.ts";
import { expf, sigmoidf, tanhf } from "./fast_math.ts";

/** C = alpha op(A) op(B) + beta C on element offsets (see blas_lib.ts). */
export type Sgemm = BlasLibrary["sgemm"];

// deno-lint-ignore no-explicit-any
export type JobArgs = Record<string, any>;
export type Job = (a: JobArgs, u0: number, u1: number, sgemm: Sgemm) => void;

/** Rows per unit of the row-wise jobs. */
export const ROWS_PER_UNIT = 32;
/** Elements per unit of the elementwise jobs. */
export const ELEMS_PER_UNIT = 16384;

const rowRange = (u0: number, u1: number, R: number): [number, number] => [
  u0 * ROWS_PER_UNIT,
  Math.min(u1 * ROWS_PER_UNIT, R),
];
const elemRange = (u0: number, u1: number, n: number): [number, number] => [
  u0 * ELEMS_PER_UNIT,
  Math.min(u1 * ELEMS_PER_UNIT, n),
];

// ---------------------------------------------------------------------------
// RMSNorm: y = x * rsqrt(mean(x^2) + eps) * w over rows of D

function rmsNorm(a: JobArgs, u0: number, u1: number): void {
  const { x, w, y, rstd, D, eps, res, h } = a as {
    x: Float32Array;
    w: Float32Array;
    y: Float32Array;
    rstd: Float32Array;
    D: number;
    eps: number;
    /** With a residual: h = x + res is normed (and stored), not x. */
    res: Float32Array | null;
    h: Float32Array | null;
  };
  const [r0, r1] = rowRange(u0, u1, rstd.length);
  if (res) {
    const [i0, i1] = [r0 * D, r1 * D];
    for (let i = i0; i < i1; i++) h![i] = x[i] + res[i];
  }
  const src = res ? h! : x;
  for (let r = r0; r < r1; r++) {
    const o = r * D;
    let ss = 0;
    for (let j = 0; j < D; j++) ss += src[o + j] * src[o + j];
    const k = 1 / Math.sqrt(ss / D + eps);
    rstd[r] = k;
    for (let j = 0; j < D; j++) y[o + j] = src[o + j] * k * w[j];
  }
}

/**
 * dx = k (g - xhat mean(g xhat)) (+ dres), g = dy w; dw partial per unit.
 * `dres`: the gradient reaching the normed input by another path (the
 * residual stream), added in the same pass.
 */
function rmsNormGrad(a: JobArgs, u0: number, u1: number): void {
  const { dy, x, w, rstd, dx, dwPart, D, dres } = a as {
    dy: Float32Array;
    x: Float32Array;
    w: Float32Array;
    rstd: Float32Array;
    dx: Float32Array;
    dwPart: Float64Array;
    D: number;
    dres: Float32Array | null;
  };
  for (let u = u0; u < u1; u++) {
    const [r0, r1] = rowRange(u, u + 1, rstd.length);
    const p = u * D;
    for (let r = r0; r < r1; r++) {
      const o = r * D, k = rstd[r];
      let dot = 0;
      for (let j = 0; j < D; j++) dot += dy[o + j] * w[j] * x[o + j];
      const m = (dot * k) / D;
      for (let j = 0; j < D; j++) {
        const xh = x[o + j] * k;
        const g = k * (dy[o + j] * w[j] - xh * m);
        dx[o + j] = dres ? dres[o + j] + g : g;
        dwPart[p + j] += dy[o + j] * xh;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// LayerNorm: y = (x - mean) * rsqrt(var + eps) * w + b (biased variance)

function layerNorm(a: JobArgs, u0: number, u1: number): void {
  const { x, w, b, y, mean, rstd, D, eps } = a as {
    x: Float32Array;
    w: Float32Array;
    b: Float32Array;
    y: Float32Array;
    mean: Float32Array;
    rstd: Float32Array;
    D: number;
    eps: number;
  };
  const [r0, r1] = rowRange(u0, u1, rstd.length);
  for (let r = r0; r < r1; r++) {
    const o = r * D;
    let s = 0;
    for (let j = 0; j < D; j++) s += x[o + j];
    const mu = s / D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (x[o + j] - mu) * (x[o + j] - mu);
    const k = 1 / Math.sqrt(v / D + eps);
    mean[r] = mu;
    rstd[r] = k;
    for (let j = 0; j < D; j++) y[o + j] = (x[o + j] - mu) * k * w[j] + b[j];
  }
}

/** dx = k (g - mean(g) - xhat mean(g xhat)), g = dy w; dw, db partials per unit. */
function layerNormGrad(a: JobArgs, u0: number, u1: number): void {
  const { dy, x, w, mean, rstd, dx, dwPart, dbPart, D } = a as {
    dy: Float32Array;
    x: Float32Array;
    w: Float32Array;
    mean: Float32Array;
    rstd: Float32Array;
    dx: Float32Array;
    dwPart: Float64Array;
    dbPart: Float64Array;
    D: number;
  };
  for (let u = u0; u < u1; u++) {
    const [r0, r1] = rowRange(u, u + 1, rstd.length);
    const p = u * D;
    for (let r = r0; r < r1; r++) {
      const o = r * D, mu = mean[r], k = rstd[r];
      let sg = 0, sgx = 0;
      for (let j = 0; j < D; j++) {
        const g = dy[o + j] * w[j], xh = (x[o + j] - mu) * k;
        sg += g;
        sgx += g * xh;
        dwPart[p + j] += dy[o + j] * xh;
        dbPart[p + j] += dy[o + j];
      }
      const mg = sg / D, mgx = sgx / D;
      for (let j = 0; j < D; j++) {
        const xh = (x[o + j] - mu) * k;
        dx[o + j] = k * (dy[o + j] * w[j] - mg - xh * mgx);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// q/k norm + rotary + attention layouts, per token (unit = ROWS_PER_UNIT
// tokens). q [N, nH hd], k, v [N, nKV hd]; cos, sin [N, hd]; qw, kw [hd] or
// null (no norm) -> qo [N, nH hd] (scaled), kT [B, nKV, hd, T],
// vo [B, nKV, T, hd], rstd [N, nH + nKV].

function qkPrep(a: JobArgs, u0: number, u1: number): void {
  const { q, k, v, cos, sin, qw, kw, qo, kT, vo, rstd } = a as Record<
    string,
    Float32Array | null
  >;
  const { T, nH, nKV, hd, eps, scale, N } = a as Record<string, number>;
  const half = hd / 2, H = nH + nKV;
  const xn = new Float64Array(hd);
  const [n0, n1] = rowRange(u0, u1, N);
  for (let n = n0; n < n1; n++) {
    const b = (n / T) | 0, t = n - b * T, c0 = n * hd;
    for (let h = 0; h < H; h++) {
      const isQ = h < nH, hh = isQ ? h : h - nH;
      const x = (isQ ? q : k)!;
      const o = (n * (isQ ? nH : nKV) + hh) * hd;
      if (qw) {
        let ss = 0;
        for (let j = 0; j < hd; j++) ss += x[o + j] * x[o + j];
        const r = 1 / Math.sqrt(ss / hd + eps);
        rstd![n * H + h] = r;
        const w = (isQ ? qw : kw)!;
        for (let j = 0; j < hd; j++) xn[j] = Math.fround(x[o + j] * r * w[j]);
      } else {
        for (let j = 0; j < hd; j++) xn[j] = x[o + j];
      }
      // y = xn * cos + rotate_half(xn) * sin, rotate_half = (-x2, x1)
      if (isQ) {
        const d = n * nH * hd + h * hd;
        for (let j = 0; j < half; j++) {
          qo![d + j] = (xn[j] * cos![c0 + j] - xn[j + half] * sin![c0 + j]) *
            scale;
          qo![d + j + half] = (xn[j + half] * cos![c0 + j + half] +
            xn[j] * sin![c0 + j + half]) * scale;
        }
      } else {
        const base = (b * nKV + hh) * hd * T + t;
        for (let j = 0; j < half; j++) {
          kT![base + j * T] = xn[j] * cos![c0 + j] -
            xn[j + half] * sin![c0 + j];
          kT![base + (j + half) * T] = xn[j + half] * cos![c0 + j + half] +
            xn[j] * sin![c0 + j + half];
        }
      }
    }
    for (let g = 0; g < nKV; g++) {
      const s = (n * nKV + g) * hd, d = ((b * nKV + g) * T + t) * hd;
      for (let j = 0; j < hd; j++) vo![d + j] = v![s + j];
    }
  }
}

/** Gradients of qkPrep; dqw, dkw partials per unit ([units, hd] each). */
function qkPrepGrad(a: JobArgs, u0: number, u1: number): void {
  const { q, k, cos, sin, qw, kw, rstd, dq, dkT, dvo, dQ, dK, dV } =
    a as Record<
      string,
      Float32Array | null
    >;
  const { dqwPart, dkwPart } = a as Record<string, Float64Array | null>;
  const { T, nH, nKV, hd, scale, N } = a as Record<string, number>;
  const half = hd / 2, H = nH + nKV;
  const gy = new Float64Array(hd), gx = new Float64Array(hd);
  for (let u = u0; u < u1; u++) {
    const [n0, n1] = rowRange(u, u + 1, N);
    for (let n = n0; n < n1; n++) {
      const b = (n / T) | 0, t = n - b * T, c0 = n * hd;
      for (let h = 0; h < H; h++) {
        const isQ = h < nH, hh = isQ ? h : h - nH;
        if (isQ) {
          const s = n * nH * hd + h * hd;
          for (let j = 0; j < hd; j++) gy[j] = dq![s + j] * scale;
        } else {
          const base = (b * nKV + hh) * hd * T + t;
          for (let j = 0; j < hd; j++) gy[j] = dkT![base + j * T];
        }
        // through the rotation: dxn = gy cos + R^T (gy sin), R^T z = (z2, -z1)
        for (let j = 0; j < half; j++) {
          gx[j] = gy[j] * cos![c0 + j] + gy[j + half] * sin![c0 + j + half];
          gx[j + half] = gy[j + half] * cos![c0 + j + half] -
            gy[j] * sin![c0 + j];
        }
        const x = (isQ ? q : k)!, dst = (isQ ? dQ : dK)!;
        const o = (n * (isQ ? nH : nKV) + hh) * hd;
        if (qw) {
          const w = (isQ ? qw : kw)!, dw = (isQ ? dqwPart : dkwPart)!;
          const r = rstd![n * H + h], p = u * hd;
          let dot = 0;
          for (let j = 0; j < hd; j++) {
            const xh = x[o + j] * r;
            dw[p + j] += gx[j] * xh;
            dot += gx[j] * w[j] * xh;
          }
          const m = dot / hd;
          for (let j = 0; j < hd; j++) {
            dst[o + j] = r * (gx[j] * w[j] - x[o + j] * r * m);
          }
        } else {
          for (let j = 0; j < hd; j++) dst[o + j] = gx[j];
        }
      }
      for (let g = 0; g < nKV; g++) {
        const s = ((b * nKV + g) * T + t) * hd, d = (n * nKV + g) * hd;
        for (let j = 0; j < hd; j++) dV![d + j] = dvo![s + j];
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Attention over blocks; unit = one (batch row, kv head) pair: every block of
// that row and the query heads sharing that kv head. q [B*T, nH hd] (scaled),
// kT [B, nKV, hd, Tk], v [B, nKV, Tk, hd] -> out [B*T, nH hd], P.

export interface AttentionBlock {
  b: number;
  q0: number;
  qLen: number;
  k0: number;
  kLen: number;
  /** [qLen * kLen], 1 where the query may attend the key; null: all may. */
  allowed: Uint8Array | null;
}

/** Offsets of each (block, head) probability matrix in P, and P's size. */
export function pOffsets(
  blocks: AttentionBlock[],
  nH: number,
): { off: number[]; total: number } {
  const off: number[] = [];
  let total = 0;
  for (const bl of blocks) {
    off.push(total);
    total += nH * bl.qLen * bl.kLen;
  }
  return { off, total };
}

/**
 * The allowed key span [lo, hi) of row i (outside it every pair is masked;
 * inside, `allowed` is still consulted): causal blocks skip the masked half.
 */
function span(
  allowed: Uint8Array | null,
  i: number,
  cols: number,
): [number, number] {
  if (!allowed) return [0, cols];
  const mo = i * cols;
  let lo = 0, hi = cols;
  while (lo < cols && !allowed[mo + lo]) lo++;
  while (hi > lo && !allowed[mo + hi - 1]) hi--;
  return [lo, hi];
}

function softmaxRows(
  p: Float32Array,
  at: number,
  rows: number,
  cols: number,
  allowed: Uint8Array | null,
): void {
  for (let i = 0; i < rows; i++) {
    const o = at + i * cols, mo = i * cols;
    const [lo, hi] = span(allowed, i, cols);
    let mx = -Infinity;
    for (let j = lo; j < hi; j++) {
      if ((!allowed || allowed[mo + j]) && p[o + j] > mx) mx = p[o + j];
    }
    if (mx === -Infinity) {
      // no allowed key (or all scores -Inf): uniform, as an additive mask gives
      for (let j = 0; j < cols; j++) p[o + j] = 1 / cols;
      continue;
    }
    for (let j = 0; j < lo; j++) p[o + j] = 0;
    for (let j = hi; j < cols; j++) p[o + j] = 0;
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const e = !allowed || allowed[mo + j] ? expf(p[o + j] - mx) : 0;
      p[o + j] = e;
      sum += p[o + j];
    }
    const inv = 1 / sum;
    for (let j = lo; j < hi; j++) p[o + j] *= inv;
  }
}

/** Block indices of each batch row (blocks are sorted by row). */
export function blocksByRow(blocks: AttentionBlock[], B: number): number[][] {
  const by: number[][] = Array.from({ length: B }, () => []);
  blocks.forEach((bl, i) => by[bl.b].push(i));
  return by;
}

function attention(a: JobArgs, u0: number, u1: number, sgemm: Sgemm): void {
  const { q, kT, v, out, P } = a as Record<string, Float32Array>;
  const { nH, nKV, hd, T, Tk } = a as Record<string, number>;
  const blocks = a.blocks as AttentionBlock[];
  const byRow = a.byRow as number[][];
  const off = a.pOff as number[];
  const rep = nH / nKV, ld = nH * hd;
  for (let u = u0; u < u1; u++) {
    const b = (u / nKV) | 0, g = u - b * nKV;
    for (const bi of byRow[b]) {
      const bl = blocks[bi];
      const kOff = (b * nKV + g) * hd * Tk + bl.k0;
      const vOff = ((b * nKV + g) * Tk + bl.k0) * hd;
      for (let h = g * rep; h < (g + 1) * rep; h++) {
        const qOff = (b * T + bl.q0) * ld + h * hd;
        const pOff = off[bi] + h * bl.qLen * bl.kLen;
        // S = Q_h K^T: [qLen, hd] @ [hd, kLen]
        sgemm(
          false,
          false,
          bl.qLen,
          bl.kLen,
          hd,
          1,
          q,
          qOff,
          ld,
          kT,
          kOff,
          Tk,
          0,
          P,
          pOff,
          bl.kLen,
        );
        softmaxRows(P, pOff, bl.qLen, bl.kLen, bl.allowed);
        // O_h = P V: [qLen, kLen] @ [kLen, hd]
        sgemm(
          false,
          false,
          bl.qLen,
          hd,
          bl.kLen,
          1,
          P,
          pOff,
          bl.kLen,
          v,
          vOff,
          hd,
          0,
          out,
          qOff,
          ld,
        );
      }
    }
  }
}

function attentionGrad(
  a: JobArgs,
  u0: number,
  u1: number,
  sgemm: Sgemm,
): void {
  const { dy, q, kT, v, P, dq, dkT, dv } = a as Record<string, Float32Array>;
  const { nH, nKV, hd, T, Tk, maxBlock } = a as Record<string, number>;
  const blocks = a.blocks as AttentionBlock[];
  const byRow = a.byRow as number[][];
  const off = a.pOff as number[];
  const rep = nH / nKV, ld = nH * hd;
  const dP = new Float32Array(maxBlock);
  for (let u = u0; u < u1; u++) {
    const b = (u / nKV) | 0, g = u - b * nKV;
    for (const bi of byRow[b]) {
      const bl = blocks[bi], { qLen, kLen } = bl;
      const kOff = (b * nKV + g) * hd * Tk + bl.k0;
      const vOff = ((b * nKV + g) * Tk + bl.k0) * hd;
      for (let h = g * rep; h < (g + 1) * rep; h++) {
        const qOff = (b * T + bl.q0) * ld + h * hd;
        const pOff = off[bi] + h * qLen * kLen;
        // dP = dO_h V^T
        sgemm(
          false,
          true,
          qLen,
          kLen,
          hd,
          1,
          dy,
          qOff,
          ld,
          v,
          vOff,
          hd,
          0,
          dP,
          0,
          kLen,
        );
        // dS = P (dP - rowsum(dP P)), in place; P is 0 off the allowed span
        for (let i = 0; i < qLen; i++) {
          const o = i * kLen, po = pOff + o;
          const [lo, hi] = span(bl.allowed, i, kLen);
          let dot = 0;
          for (let j = lo; j < hi; j++) dot += dP[o + j] * P[po + j];
          for (let j = 0; j < lo; j++) dP[o + j] = 0;
          for (let j = hi; j < kLen; j++) dP[o + j] = 0;
          for (let j = lo; j < hi; j++) {
            dP[o + j] = P[po + j] * (dP[o + j] - dot);
          }
        }
        // dQ_h = dS K: [qLen, kLen] @ ([hd, kLen] kT)^T
        sgemm(
          false,
          true,
          qLen,
          hd,
          kLen,
          1,
          dP,
          0,
          kLen,
          kT,
          kOff,
          Tk,
          0,
          dq,
          qOff,
          ld,
        );
        // dK^T_g += Q_h^T dS: [hd, qLen] @ [qLen, kLen]
        sgemm(
          true,
          false,
          hd,
          kLen,
          qLen,
          1,
          q,
          qOff,
          ld,
          dP,
          0,
          kLen,
          1,
          dkT,
          kOff,
          Tk,
        );
        // dV_g += P^T dO_h: [kLen, qLen] @ [qLen, hd]
        sgemm(
          true,
          false,
          kLen,
          hd,
          qLen,
          1,
          P,
          pOff,
          kLen,
          dy,
          qOff,
          ld,
          1,
          dv,
          vOff,
          hd,
        );
      }
    }
  }
}

// ---------------------------------------------------------------------------
// elementwise: SwiGLU act = silu(g) u, tanh-GELU

function swiglu(a: JobArgs, u0: number, u1: number): void {
  const { g, u, act, sig } = a as Record<string, Float32Array>;
  const [i0, i1] = elemRange(u0, u1, g.length);
  for (let i = i0; i < i1; i++) {
    const s = sigmoidf(g[i]);
    sig[i] = s;
    act[i] = g[i] * s * u[i];
  }
}

function swigluGrad(a: JobArgs, u0: number, u1: number): void {
  const { dy, g, u, sig, dg, du } = a as Record<string, Float32Array>;
  const [i0, i1] = elemRange(u0, u1, g.length);
  for (let i = i0; i < i1; i++) {
    const s = sig[i], x = g[i];
    du[i] = dy[i] * x * s;
    dg[i] = dy[i] * u[i] * s * (1 + x * (1 - s));
  }
}

const GELU_C = Math.sqrt(2 / Math.PI), GELU_A = 0.044715;

function geluTanh(a: JobArgs, u0: number, u1: number): void {
  const { x, y } = a as Record<string, Float32Array>;
  const [i0, i1] = elemRange(u0, u1, x.length);
  for (let i = i0; i < i1; i++) {
    const z = x[i];
    y[i] = 0.5 * z * (1 + tanhf(GELU_C * (z + GELU_A * z * z * z)));
  }
}

function geluTanhGrad(a: JobArgs, u0: number, u1: number): void {
  const { dy, x, dx } = a as Record<string, Float32Array>;
  const [i0, i1] = elemRange(u0, u1, x.length);
  for (let i = i0; i < i1; i++) {
    const z = x[i];
    const t = tanhf(GELU_C * (z + GELU_A * z * z * z));
    dx[i] = dy[i] *
      (0.5 * (1 + t) +
        0.5 * z * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * z * z));
  }
}

// ---------------------------------------------------------------------------
// weighted NLL: loss = -sum(W log_softmax(z)) over rows of V; the forward
// also writes the gradient of the loss w.r.t. z, softmax(z) rowsum(W) - W,
// so the backward is a scaling. lossPart: one partial per unit.

function weightedNll(a: JobArgs, u0: number, u1: number): void {
  const { z, w, grad } = a as Record<string, Float32Array>;
  const lossPart = a.lossPart as Float64Array;
  const V = a.V as number;
  for (let u = u0; u < u1; u++) {
    const [r0, r1] = rowRange(u, u + 1, z.length / V);
    let loss = 0;
    for (let r = r0; r < r1; r++) {
      const o = r * V;
      let mx = -Infinity;
      for (let j = 0; j < V; j++) if (z[o + j] > mx) mx = z[o + j];
      let s = 0;
      for (let j = 0; j < V; j++) {
        const e = expf(z[o + j] - mx);
        grad[o + j] = e;
        s += e;
      }
      const lse = mx + Math.log(s), inv = 1 / s;
      let row = 0, ws = 0;
      for (let j = 0; j < V; j++) {
        const wj = w[o + j];
        if (wj !== 0) {
          row += wj * (z[o + j] - lse);
          ws += wj;
        }
      }
      loss -= row;
      for (let j = 0; j < V; j++) {
        grad[o + j] = grad[o + j] * inv * ws - w[o + j];
      }
    }
    lossPart[u] = loss;
  }
}

/**
 * AdamW on one parameter (see trainer/loop/adamw.ts): m1 = b1 m + (1-b1) g,
 * v1 = b2 v + (1-b2) g^2, p1 = p decay - step m1 / (sqrt(v1) / sqrtBc2 + eps).
 */
function adamw(a: JobArgs, u0: number, u1: number): void {
  const { p, g, m, v, p1, m1, v1 } = a as Record<string, Float32Array>;
  const { b1, b2, eps, decay, step, sqrtBc2 } = a as Record<string, number>;
  const [i0, i1] = elemRange(u0, u1, p.length);
  for (let i = i0; i < i1; i++) {
    const gi = g[i];
    const mi = b1 * m[i] + (1 - b1) * gi;
    const vi = b2 * v[i] + (1 - b2) * gi * gi;
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p[i] * decay - (step * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
  }
}

function scale(a: JobArgs, u0: number, u1: number): void {
  const { x, y } = a as Record<string, Float32Array>;
  const s = a.s as number;
  const [i0, i1] = elemRange(u0, u1, x.length);
  for (let i = i0; i < i1; i++) y[i] = x[i] * s;
}

// ---------------------------------------------------------------------------
// matmul: C [batch, m, n] = op(A) op(B) + beta C (beta 0 or 1), cut into
// fixed chunks of rows (or of
// columns when there are few rows); a unit is one chunk, one sgemm call.
// The cut depends on the shape only, never on the thread count.

/** Rows (or columns) per matmul chunk. */
export const GEMM_ROWS = 128, GEMM_COLS = 64;

/** How a [m, n] product is cut: along rows or columns, into `per` chunks of `size`. */
export function gemmCut(
  m: number,
  n: number,
  k: number,
): { byRows: boolean; size: number; per: number } {
  if (m * n * k < 1 << 20) return { byRows: true, size: m, per: 1 };
  if (m >= 2 * GEMM_ROWS) {
    return { byRows: true, size: GEMM_ROWS, per: Math.ceil(m / GEMM_ROWS) };
  }
  if (n >= 2 * GEMM_COLS) {
    return { byRows: false, size: GEMM_COLS, per: Math.ceil(n / GEMM_COLS) };
  }
  return { byRows: true, size: m, per: 1 };
}

function gemm(a: JobArgs, u0: number, u1: number, sgemm: Sgemm): void {
  const { A, B, C } = a as Record<string, Float32Array>;
  const { m, n, k, batchA, batchB, size, per, beta } = a as Record<
    string,
    number
  >;
  const { tA, tB, byRows } = a as Record<string, boolean>;
  const lda = tA ? m : k, ldb = tB ? k : n;
  for (let u = u0; u < u1; u++) {
    const i = (u / per) | 0, c = u - i * per;
    const aBase = (i % batchA) * m * k, bBase = (i % batchB) * k * n;
    const cBase = i * m * n;
    if (byRows) {
      // rows r0.. of op(A): A's rows (or columns when transposed)
      const r0 = c * size, rows = Math.min(size, m - r0);
      sgemm(
        tA,
        tB,
        rows,
        n,
        k,
        1,
        A,
        aBase + (tA ? r0 : r0 * k),
        lda,
        B,
        bBase,
        ldb,
        beta,
        C,
        cBase + r0 * n,
        n,
      );
    } else {
      // columns c0.. of op(B): B's columns (or rows when transposed)
      const c0 = c * size, cols = Math.min(size, n - c0);
      sgemm(
        tA,
        tB,
        m,
        cols,
        k,
        1,
        A,
        aBase,
        lda,
        B,
        bBase + (tB ? c0 * k : c0),
        ldb,
        beta,
        C,
        cBase + c0,
        n,
      );
    }
  }
}

/** Every job, by name (the workers receive names). */
export const JOBS: Record<string, Job> = {
  rmsNorm,
  rmsNormGrad,
  layerNorm,
  layerNormGrad,
  qkPrep,
  qkPrepGrad,
  attention,
  attentionGrad,
  swiglu,
  swigluGrad,
  geluTanh,
  geluTanhGrad,
  weightedNll,
  adamw,
  scale,
  gemm,
};
