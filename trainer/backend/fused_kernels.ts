/**
 * Fused TF.js kernels of the `blas` backend, each with a hand-written
 * backward kernel registered as its gradient: RMSNorm, LayerNorm, the
 * q/k-norm + rotary + layout step before attention, masked attention over
 * blocks of queries and keys, SwiGLU and tanh-GELU.
 *
 * Why by hand: a training step of the composite TF.js graph is dominated by
 * many small elementwise kernels, their tape entries and the transposes
 * between layouts (profiled in `deno task bench --profile`), not by the
 * matmuls. One kernel per block reads its inputs once, writes its outputs
 * once, and calls BLAS with row strides instead of transposing. No
 * maintained library offers these kernels for TF.js's cpu storage.
 *
 * Determinism: every loop runs in a fixed order and every accumulation
 * (weight gradients summed over rows, key/value gradients summed over the
 * query heads that share them) has a fixed order, so results are bitwise
 * reproducible for a given BLAS thread count.
 *
 * Sums are accumulated in double precision and rounded once when stored.
 */
import * as tf from "@tensorflow/tfjs";
import type { BlasBackend } from "./blas_backend.ts";
import { expf, sigmoidf, tanhf } from "./fast_math.ts";

interface Info {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

interface KernelArgs<A> {
  inputs: Record<string, Info | undefined>;
  backend: BlasBackend;
  attrs: A;
}

/**
 * One block of attention: queries [q0, q0 + qLen) of batch row `b` against
 * keys [k0, k0 + kLen); `allowed` [qLen * kLen] (1 = may attend) or null
 * when every pair may attend.
 */
export interface AttentionBlock {
  b: number;
  q0: number;
  qLen: number;
  k0: number;
  kLen: number;
  allowed: Uint8Array | null;
}

export interface AttentionAttrs {
  blocks: AttentionBlock[];
  /** Query heads, key/value heads (query head h reads kv head h / (nH/nKV)), head size. */
  nH: number;
  nKV: number;
  hd: number;
  /** Queries per batch row (q has B*T rows). */
  T: number;
}

export interface QkPrepAttrs {
  B: number;
  T: number;
  nH: number;
  nKV: number;
  hd: number;
  eps: number;
  /** Multiplies q after the rotation (the attention scaling). */
  scale: number;
}

const vals = (backend: BlasBackend, t: Info | undefined) =>
  t ? backend.values(t) : null;

// ---------------------------------------------------------------------------
// RMSNorm: y = x * rsqrt(mean(x^2) + eps) * w over the last axis

function rmsNorm(args: KernelArgs<{ eps: number }>): Info[] {
  const { backend } = args;
  const x = args.inputs.x!;
  const xv = backend.values(x), w = vals(backend, args.inputs.w);
  const D = x.shape[x.shape.length - 1], R = xv.length / D;
  const y = new Float32Array(xv.length), rstd = new Float32Array(R);
  const eps = args.attrs.eps;
  for (let r = 0; r < R; r++) {
    const o = r * D;
    let ss = 0;
    for (let j = 0; j < D; j++) ss += xv[o + j] * xv[o + j];
    const k = 1 / Math.sqrt(ss / D + eps);
    rstd[r] = k;
    if (w) { for (let j = 0; j < D; j++) y[o + j] = xv[o + j] * k * w[j]; }
    else for (let j = 0; j < D; j++) y[o + j] = xv[o + j] * k;
  }
  return [backend.output(y, x.shape), backend.output(rstd, [R])];
}

function rmsNormGrad(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend } = args;
  const x = args.inputs.x!;
  const dy = backend.values(args.inputs.dy!), xv = backend.values(x);
  const rstd = backend.values(args.inputs.rstd!);
  const w = vals(backend, args.inputs.w);
  const D = x.shape[x.shape.length - 1], R = xv.length / D;
  const dx = new Float32Array(xv.length);
  const dw = w ? new Float64Array(D) : null;
  for (let r = 0; r < R; r++) {
    const o = r * D, k = rstd[r];
    // g = dy * w; dx = k * (g - xhat * mean(g * xhat)), xhat = x * k
    let dot = 0;
    for (let j = 0; j < D; j++) {
      const g = w ? dy[o + j] * w[j] : dy[o + j];
      dot += g * xv[o + j] * k;
    }
    const m = dot / D;
    for (let j = 0; j < D; j++) {
      const xh = xv[o + j] * k;
      const g = w ? dy[o + j] * w[j] : dy[o + j];
      dx[o + j] = k * (g - xh * m);
      if (dw) dw[j] += dy[o + j] * xh;
    }
  }
  const out = [backend.output(dx, x.shape)];
  if (dw) out.push(backend.output(Float32Array.from(dw), [D]));
  return out;
}

// ---------------------------------------------------------------------------
// LayerNorm: y = (x - mean) * rsqrt(var + eps) * w + b (biased variance)

function layerNorm(args: KernelArgs<{ eps: number }>): Info[] {
  const { backend } = args;
  const x = args.inputs.x!;
  const xv = backend.values(x);
  const w = backend.values(args.inputs.w!), bb = backend.values(args.inputs.b!);
  const D = x.shape[x.shape.length - 1], R = xv.length / D;
  const y = new Float32Array(xv.length);
  const mean = new Float32Array(R), rstd = new Float32Array(R);
  for (let r = 0; r < R; r++) {
    const o = r * D;
    let s = 0;
    for (let j = 0; j < D; j++) s += xv[o + j];
    const mu = s / D;
    let v = 0;
    for (let j = 0; j < D; j++) v += (xv[o + j] - mu) * (xv[o + j] - mu);
    const k = 1 / Math.sqrt(v / D + args.attrs.eps);
    mean[r] = mu;
    rstd[r] = k;
    for (let j = 0; j < D; j++) y[o + j] = (xv[o + j] - mu) * k * w[j] + bb[j];
  }
  return [
    backend.output(y, x.shape),
    backend.output(mean, [R]),
    backend.output(rstd, [R]),
  ];
}

function layerNormGrad(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend } = args;
  const x = args.inputs.x!;
  const dy = backend.values(args.inputs.dy!), xv = backend.values(x);
  const w = backend.values(args.inputs.w!);
  const mean = backend.values(args.inputs.mean!);
  const rstd = backend.values(args.inputs.rstd!);
  const D = x.shape[x.shape.length - 1], R = xv.length / D;
  const dx = new Float32Array(xv.length);
  const dw = new Float64Array(D), db = new Float64Array(D);
  for (let r = 0; r < R; r++) {
    const o = r * D, mu = mean[r], k = rstd[r];
    // g = dy * w; dx = k * (g - mean(g) - xhat * mean(g * xhat))
    let sg = 0, sgx = 0;
    for (let j = 0; j < D; j++) {
      const g = dy[o + j] * w[j], xh = (xv[o + j] - mu) * k;
      sg += g;
      sgx += g * xh;
      dw[j] += dy[o + j] * xh;
      db[j] += dy[o + j];
    }
    const mg = sg / D, mgx = sgx / D;
    for (let j = 0; j < D; j++) {
      const xh = (xv[o + j] - mu) * k;
      dx[o + j] = k * (dy[o + j] * w[j] - mg - xh * mgx);
    }
  }
  return [
    backend.output(dx, x.shape),
    backend.output(Float32Array.from(dw), [D]),
    backend.output(Float32Array.from(db), [D]),
  ];
}

// ---------------------------------------------------------------------------
// q/k norm + rotary + attention layouts
//
// Inputs: q [B*T, nH hd], k and v [B*T, nKV hd]; cos, sin [B*T, hd]; for
// Stage2QkPrep also the per-head RMSNorm weights qw, kw [hd] (Stage2RopePrep
// has no norm: the vision tower). Outputs: q [B*T, nH hd] (normed, rotated,
// scaled), kT [B, nKV, hd, T], v [B, nKV, T, hd] (the KV cache's layouts),
// and the norms' rstd [B*T, nH + nKV] when normed.

function qkPrep(args: KernelArgs<QkPrepAttrs>): Info[] {
  const { backend, attrs: a } = args;
  const { B, T, nH, nKV, hd, eps, scale } = a;
  const N = B * T, half = hd / 2;
  const qa = backend.values(args.inputs.q!),
    ka = backend.values(args.inputs.k!);
  const va = backend.values(args.inputs.v!);
  const cos = backend.values(args.inputs.cos!);
  const sin = backend.values(args.inputs.sin!);
  const qw = vals(backend, args.inputs.qw), kw = vals(backend, args.inputs.kw);
  const normed = qw !== null;
  const qo = new Float32Array(N * nH * hd);
  const kT = new Float32Array(N * nKV * hd);
  const vo = new Float32Array(N * nKV * hd);
  const rstd = new Float32Array(normed ? N * (nH + nKV) : 0);
  const xn = new Float64Array(hd);
  for (let n = 0; n < N; n++) {
    const b = (n / T) | 0, t = n - b * T, c0 = n * hd;
    for (let h = 0; h < nH + nKV; h++) {
      const isQ = h < nH, hh = isQ ? h : h - nH;
      const x = isQ ? qa : ka;
      const o = (n * (isQ ? nH : nKV) + hh) * hd;
      if (normed) {
        let ss = 0;
        for (let j = 0; j < hd; j++) ss += x[o + j] * x[o + j];
        const k = 1 / Math.sqrt(ss / hd + eps);
        rstd[n * (nH + nKV) + h] = k;
        const w = isQ ? qw : kw!;
        for (let j = 0; j < hd; j++) xn[j] = Math.fround(x[o + j] * k * w[j]);
      } else {
        for (let j = 0; j < hd; j++) xn[j] = x[o + j];
      }
      // y = xn * cos + rotate_half(xn) * sin, rotate_half = (-x2, x1)
      if (isQ) {
        const d = n * nH * hd + h * hd;
        for (let j = 0; j < half; j++) {
          qo[d + j] = (xn[j] * cos[c0 + j] - xn[j + half] * sin[c0 + j]) *
            scale;
          qo[d + j + half] = (xn[j + half] * cos[c0 + j + half] +
            xn[j] * sin[c0 + j + half]) * scale;
        }
      } else {
        // kT[b, hh, j, t]
        const base = (b * nKV + hh) * hd * T + t;
        for (let j = 0; j < half; j++) {
          kT[base + j * T] = xn[j] * cos[c0 + j] - xn[j + half] * sin[c0 + j];
          kT[base + (j + half) * T] = xn[j + half] * cos[c0 + j + half] +
            xn[j] * sin[c0 + j + half];
        }
      }
    }
    for (let g = 0; g < nKV; g++) {
      const s = (n * nKV + g) * hd;
      const d = ((b * nKV + g) * T + t) * hd;
      for (let j = 0; j < hd; j++) vo[d + j] = va[s + j];
    }
  }
  const out = [
    backend.output(qo, [N, nH * hd]),
    backend.output(kT, [B, nKV, hd, T]),
    backend.output(vo, [B, nKV, T, hd]),
  ];
  if (normed) out.push(backend.output(rstd, [N, nH + nKV]));
  return out;
}

function qkPrepGrad(args: KernelArgs<QkPrepAttrs>): Info[] {
  const { backend, attrs: a, inputs } = args;
  const { B, T, nH, nKV, hd, scale } = a;
  const N = B * T, half = hd / 2;
  const qa = backend.values(inputs.q!), ka = backend.values(inputs.k!);
  const dq = backend.values(inputs.dq!), dkT = backend.values(inputs.dkT!);
  const dvo = backend.values(inputs.dv!);
  const cos = backend.values(inputs.cos!), sin = backend.values(inputs.sin!);
  const qw = vals(backend, inputs.qw), kw = vals(backend, inputs.kw);
  const rstd = vals(backend, inputs.rstd);
  const normed = qw !== null;
  const dQ = new Float32Array(N * nH * hd);
  const dK = new Float32Array(N * nKV * hd),
    dV = new Float32Array(N * nKV * hd);
  const dqw = normed ? new Float64Array(hd) : null;
  const dkw = normed ? new Float64Array(hd) : null;
  const gy = new Float64Array(hd), gx = new Float64Array(hd);
  for (let n = 0; n < N; n++) {
    const b = (n / T) | 0, t = n - b * T, c0 = n * hd;
    for (let h = 0; h < nH + nKV; h++) {
      const isQ = h < nH, hh = isQ ? h : h - nH;
      // gradient at the rotation's output
      if (isQ) {
        const s = n * nH * hd + h * hd;
        for (let j = 0; j < hd; j++) gy[j] = dq[s + j] * scale;
      } else {
        const base = (b * nKV + hh) * hd * T + t;
        for (let j = 0; j < hd; j++) gy[j] = dkT[base + j * T];
      }
      // through the rotation: dxn = gy * cos + R^T (gy * sin),
      // R^T z = (z2, -z1) for rotate_half's (-x2, x1)
      for (let j = 0; j < half; j++) {
        gx[j] = gy[j] * cos[c0 + j] + gy[j + half] * sin[c0 + j + half];
        gx[j + half] = gy[j + half] * cos[c0 + j + half] -
          gy[j] * sin[c0 + j];
      }
      const x = isQ ? qa : ka, darr = isQ ? dQ : dK;
      const o = (n * (isQ ? nH : nKV) + hh) * hd;
      if (normed) {
        const w = isQ ? qw! : kw!, dw = isQ ? dqw! : dkw!;
        const k = rstd![n * (nH + nKV) + h];
        let dot = 0;
        for (let j = 0; j < hd; j++) {
          const xh = x[o + j] * k;
          dw[j] += gx[j] * xh;
          dot += gx[j] * w[j] * xh;
        }
        const m = dot / hd;
        for (let j = 0; j < hd; j++) {
          darr[o + j] = k * (gx[j] * w[j] - x[o + j] * k * m);
        }
      } else {
        for (let j = 0; j < hd; j++) darr[o + j] = gx[j];
      }
    }
    for (let g = 0; g < nKV; g++) {
      const s = ((b * nKV + g) * T + t) * hd;
      const d = (n * nKV + g) * hd;
      for (let j = 0; j < hd; j++) dV[d + j] = dvo[s + j];
    }
  }
  const out: Info[] = [
    backend.output(dQ, [N, nH * hd]),
    backend.output(dK, [N, nKV * hd]),
    backend.output(dV, [N, nKV * hd]),
  ];
  if (normed) {
    out.push(backend.output(Float32Array.from(dqw!), [hd]));
    out.push(backend.output(Float32Array.from(dkw!), [hd]));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Attention over blocks: for each block and query head h (kv head g):
// P = softmax(Q_h K_g^T restricted to allowed pairs), O_h = P V_g.
// q [B*T, nH hd] (scaled), kT [B, nKV, hd, Tk], v [B, nKV, Tk, hd]
// -> out [B*T, nH hd] and P (all blocks and heads, saved for the backward).

/** Offsets of each (block, head) probability matrix in P, and P's size. */
function pOffsets(a: AttentionAttrs): { off: number[]; total: number } {
  const off: number[] = [];
  let total = 0;
  for (const bl of a.blocks) {
    off.push(total);
    total += a.nH * bl.qLen * bl.kLen;
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
      p.fill(1 / cols, o, o + cols);
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

function attention(args: KernelArgs<AttentionAttrs>): Info[] {
  const { backend, attrs: a } = args;
  const lib = backend.lib;
  const q = args.inputs.q!, kT = args.inputs.kT!, v = args.inputs.v!;
  const qv = backend.values(q), kv = backend.values(kT), vv = backend.values(v);
  const { nH, nKV, hd, T } = a;
  const rep = nH / nKV, Tk = kT.shape[3], ld = nH * hd;
  const { off, total } = pOffsets(a);
  const P = new Float32Array(total);
  const out = new Float32Array(qv.length);
  a.blocks.forEach((bl, bi) => {
    for (let h = 0; h < nH; h++) {
      const g = (h / rep) | 0;
      const qOff = (bl.b * T + bl.q0) * ld + h * hd;
      const kOff = (bl.b * nKV + g) * hd * Tk + bl.k0;
      const vOff = ((bl.b * nKV + g) * Tk + bl.k0) * hd;
      const pOff = off[bi] + h * bl.qLen * bl.kLen;
      // S = Q_h K^T: [qLen, hd] @ [hd, kLen]
      lib.sgemm(
        false,
        false,
        bl.qLen,
        bl.kLen,
        hd,
        1,
        qv,
        qOff,
        ld,
        kv,
        kOff,
        Tk,
        0,
        P,
        pOff,
        bl.kLen,
      );
      softmaxRows(P, pOff, bl.qLen, bl.kLen, bl.allowed);
      // O_h = P V: [qLen, kLen] @ [kLen, hd]
      lib.sgemm(
        false,
        false,
        bl.qLen,
        hd,
        bl.kLen,
        1,
        P,
        pOff,
        bl.kLen,
        vv,
        vOff,
        hd,
        0,
        out,
        qOff,
        ld,
      );
    }
  });
  return [backend.output(out, q.shape), backend.output(P, [total])];
}

function attentionGrad(args: KernelArgs<AttentionAttrs>): Info[] {
  const { backend, attrs: a, inputs } = args;
  const lib = backend.lib;
  const dy = backend.values(inputs.dy!), qv = backend.values(inputs.q!);
  const kT = inputs.kT!, v = inputs.v!;
  const kv = backend.values(kT), vv = backend.values(v);
  const P = backend.values(inputs.P!);
  const { nH, nKV, hd, T } = a;
  const rep = nH / nKV, Tk = kT.shape[3], ld = nH * hd;
  const { off } = pOffsets(a);
  const dq = new Float32Array(qv.length);
  const dkT = new Float32Array(kv.length), dv = new Float32Array(vv.length);
  let maxBlock = 0;
  for (const bl of a.blocks) maxBlock = Math.max(maxBlock, bl.qLen * bl.kLen);
  const dP = new Float32Array(maxBlock);
  a.blocks.forEach((bl, bi) => {
    const { qLen, kLen } = bl;
    for (let h = 0; h < nH; h++) {
      const g = (h / rep) | 0;
      const qOff = (bl.b * T + bl.q0) * ld + h * hd;
      const kOff = (bl.b * nKV + g) * hd * Tk + bl.k0;
      const vOff = ((bl.b * nKV + g) * Tk + bl.k0) * hd;
      const pOff = off[bi] + h * qLen * kLen;
      // dP = dO_h V^T
      lib.sgemm(
        false,
        true,
        qLen,
        kLen,
        hd,
        1,
        dy,
        qOff,
        ld,
        vv,
        vOff,
        hd,
        0,
        dP,
        0,
        kLen,
      );
      // dS = P * (dP - rowsum(dP * P)), in place in dP; P is 0 off the span
      for (let i = 0; i < qLen; i++) {
        const o = i * kLen, po = pOff + o;
        const [lo, hi] = span(bl.allowed, i, kLen);
        let dot = 0;
        for (let j = lo; j < hi; j++) dot += dP[o + j] * P[po + j];
        for (let j = 0; j < lo; j++) dP[o + j] = 0;
        for (let j = hi; j < kLen; j++) dP[o + j] = 0;
        for (let j = lo; j < hi; j++) dP[o + j] = P[po + j] * (dP[o + j] - dot);
      }
      // dQ_h = dS K: [qLen, kLen] @ ([hd, kLen] as kT)^T
      lib.sgemm(
        false,
        true,
        qLen,
        hd,
        kLen,
        1,
        dP,
        0,
        kLen,
        kv,
        kOff,
        Tk,
        0,
        dq,
        qOff,
        ld,
      );
      // dK^T_g += Q_h^T dS: [hd, qLen] @ [qLen, kLen]
      lib.sgemm(
        true,
        false,
        hd,
        kLen,
        qLen,
        1,
        qv,
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
      lib.sgemm(
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
  });
  return [
    backend.output(dq, inputs.q!.shape),
    backend.output(dkT, kT.shape),
    backend.output(dv, v.shape),
  ];
}

// ---------------------------------------------------------------------------
// SwiGLU: act = silu(g) * u; tanh-GELU

function swiglu(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend } = args;
  const g = args.inputs.g!;
  const gv = backend.values(g), uv = backend.values(args.inputs.u!);
  const act = new Float32Array(gv.length), sig = new Float32Array(gv.length);
  for (let i = 0; i < gv.length; i++) {
    const s = sigmoidf(gv[i]);
    sig[i] = s;
    act[i] = gv[i] * s * uv[i];
  }
  return [backend.output(act, g.shape), backend.output(sig, g.shape)];
}

function swigluGrad(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend, inputs } = args;
  const dy = backend.values(inputs.dy!), gv = backend.values(inputs.g!);
  const uv = backend.values(inputs.u!), sig = backend.values(inputs.sig!);
  const dg = new Float32Array(gv.length), du = new Float32Array(gv.length);
  for (let i = 0; i < gv.length; i++) {
    const s = sig[i], x = gv[i];
    du[i] = dy[i] * x * s;
    dg[i] = dy[i] * uv[i] * s * (1 + x * (1 - s));
  }
  return [
    backend.output(dg, inputs.g!.shape),
    backend.output(du, inputs.g!.shape),
  ];
}

const GELU_C = Math.sqrt(2 / Math.PI), GELU_A = 0.044715;

function geluTanh(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend } = args;
  const x = args.inputs.x!;
  const xv = backend.values(x);
  const y = new Float32Array(xv.length);
  for (let i = 0; i < xv.length; i++) {
    const z = xv[i];
    y[i] = 0.5 * z * (1 + tanhf(GELU_C * (z + GELU_A * z * z * z)));
  }
  return [backend.output(y, x.shape)];
}

function geluTanhGrad(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend, inputs } = args;
  const dy = backend.values(inputs.dy!), xv = backend.values(inputs.x!);
  const dx = new Float32Array(xv.length);
  for (let i = 0; i < xv.length; i++) {
    const z = xv[i];
    const t = tanhf(GELU_C * (z + GELU_A * z * z * z));
    dx[i] = dy[i] *
      (0.5 * (1 + t) +
        0.5 * z * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * z * z));
  }
  return [backend.output(dx, inputs.x!.shape)];
}

// ---------------------------------------------------------------------------
// weighted negative log-likelihood: loss = -sum(W * log_softmax(z)) over
// rows of z, W [N, V]; dz = dy * (softmax(z) * rowsum(W) - W)

function weightedNll(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend } = args;
  const z = args.inputs.logits!;
  const zv = backend.values(z), wv = backend.values(args.inputs.weights!);
  const V = z.shape[1], N = z.shape[0];
  const lse = new Float32Array(N);
  let loss = 0;
  for (let i = 0; i < N; i++) {
    const o = i * V;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) if (zv[o + j] > mx) mx = zv[o + j];
    let s = 0;
    for (let j = 0; j < V; j++) s += expf(zv[o + j] - mx);
    const l = mx + Math.log(s);
    lse[i] = l;
    let row = 0;
    for (let j = 0; j < V; j++) {
      const w = wv[o + j];
      if (w !== 0) row += w * (zv[o + j] - l);
    }
    loss -= row;
  }
  return [
    backend.output(Float32Array.of(loss), []),
    backend.output(lse, [N]),
  ];
}

function weightedNllGrad(args: KernelArgs<Record<never, never>>): Info[] {
  const { backend, inputs } = args;
  const z = inputs.logits!;
  const zv = backend.values(z), wv = backend.values(inputs.weights!);
  const lse = backend.values(inputs.lse!);
  const dy = backend.values(inputs.dy!)[0];
  const V = z.shape[1], N = z.shape[0];
  const dz = new Float32Array(zv.length);
  for (let i = 0; i < N; i++) {
    const o = i * V, l = lse[i];
    let ws = 0;
    for (let j = 0; j < V; j++) ws += wv[o + j];
    if (ws === 0) {
      for (let j = 0; j < V; j++) dz[o + j] = -dy * wv[o + j];
      continue;
    }
    for (let j = 0; j < V; j++) {
      dz[o + j] = dy * (expf(zv[o + j] - l) * ws - wv[o + j]);
    }
  }
  return [backend.output(dz, z.shape)];
}

// ---------------------------------------------------------------------------
// registration

type AnyKernel = (args: KernelArgs<never>) => Info[];

const KERNELS: Record<string, AnyKernel> = {
  Stage2RmsNorm: rmsNorm as AnyKernel,
  Stage2RmsNormGrad: rmsNormGrad as AnyKernel,
  Stage2LayerNorm: layerNorm as AnyKernel,
  Stage2LayerNormGrad: layerNormGrad as AnyKernel,
  Stage2QkPrep: qkPrep as AnyKernel,
  Stage2QkPrepGrad: qkPrepGrad as AnyKernel,
  Stage2RopePrep: qkPrep as AnyKernel,
  Stage2RopePrepGrad: qkPrepGrad as AnyKernel,
  Stage2Attention: attention as AnyKernel,
  Stage2AttentionGrad: attentionGrad as AnyKernel,
  Stage2SwiGlu: swiglu as AnyKernel,
  Stage2SwiGluGrad: swigluGrad as AnyKernel,
  Stage2WeightedNll: weightedNll as AnyKernel,
  Stage2WeightedNllGrad: weightedNllGrad as AnyKernel,
  Stage2GeluTanh: geluTanh as AnyKernel,
  Stage2GeluTanhGrad: geluTanhGrad as AnyKernel,
};

type Grads = Record<string, () => tf.Tensor>;

function run(name: string, inputs: tf.NamedTensorMap, attrs: object = {}) {
  return tf.engine().runKernel(
    name,
    inputs,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
}

/**
 * The gradient of each fused kernel runs its backward kernel once and hands
 * each input its slice of the result. TF.js passes saved tensors in the
 * order inputsToSave then outputsToSave.
 */
const GRADIENTS: tf.GradConfig[] = [
  {
    kernelName: "Stage2RmsNorm",
    inputsToSave: ["x", "w"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [x, w, rstd] = saved;
      const r = run("Stage2RmsNormGrad", { dy, x, w, rstd });
      return { x: () => r[0], w: () => r[1] };
    },
  },
  {
    kernelName: "Stage2LayerNorm",
    inputsToSave: ["x", "w"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [x, w, mean, rstd] = saved;
      const r = run("Stage2LayerNormGrad", { dy, x, w, mean, rstd });
      return { x: () => r[0], w: () => r[1], b: () => r[2] };
    },
  },
  qkPrepGradConfig("Stage2QkPrep", true),
  qkPrepGradConfig("Stage2RopePrep", false),
  {
    kernelName: "Stage2Attention",
    inputsToSave: ["q", "kT", "v"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (dys as tf.Tensor[])[0];
      const [q, kT, v, P] = saved;
      const r = run("Stage2AttentionGrad", { dy, q, kT, v, P }, attrs);
      return { q: () => r[0], kT: () => r[1], v: () => r[2] };
    },
  },
  {
    kernelName: "Stage2SwiGlu",
    inputsToSave: ["g", "u"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [g, u, sig] = saved;
      const r = run("Stage2SwiGluGrad", { dy, g, u, sig });
      return { g: () => r[0], u: () => r[1] };
    },
  },
  {
    kernelName: "Stage2WeightedNll",
    inputsToSave: ["logits", "weights"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [logits, weights, lse] = saved;
      const r = run("Stage2WeightedNllGrad", { dy, logits, weights, lse });
      // the weights are data (targets), never trained
      return { logits: () => r[0], weights: () => tf.zerosLike(weights) };
    },
  },
  {
    kernelName: "Stage2GeluTanh",
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => {
      const r = run("Stage2GeluTanhGrad", { dy: dy as tf.Tensor, x: saved[0] });
      return { x: () => r[0] };
    },
  },
];

function qkPrepGradConfig(kernelName: string, normed: boolean): tf.GradConfig {
  const inputsToSave = normed
    ? ["q", "k", "v", "cos", "sin", "qw", "kw"]
    : ["q", "k", "v", "cos", "sin"];
  return {
    kernelName,
    inputsToSave,
    outputsToSave: normed ? [false, false, false, true] : [],
    gradFunc: (dys, saved, attrs) => {
      const [dq, dkT, dv] = dys as tf.Tensor[];
      const inputs: tf.NamedTensorMap = { dq, dkT, dv };
      [...inputsToSave, "rstd"].forEach((n, i) => {
        if (saved[i]) inputs[n] = saved[i];
      });
      const r = run(`${kernelName}Grad`, inputs, attrs);
      const g: Grads = { q: () => r[0], k: () => r[1], v: () => r[2] };
      if (normed) {
        g.qw = () => r[3];
        g.kw = () => r[4];
      }
      return g;
    },
  };
}

let registered = false;

/** Register the fused kernels and their gradients for `backendName` (idempotent). */
export function registerFusedKernels(backendName: string): void {
  if (registered) return;
  registered = true;
  for (const [kernelName, fn] of Object.entries(KERNELS)) {
    tf.registerKernel({
      kernelName,
      backendName,
      kernelFunc: fn as unknown as tf.KernelFunc,
    });
  }
  for (const g of GRADIENTS) tf.registerGradient(g);
}

/** True when the active backend runs the fused kernels. */
export function fusedAvailable(): boolean {
  return tf.getKernel("Stage2Attention", tf.getBackend()) !== undefined;
}

export { run as runFused };
