/**
 * Qwen3-VL image preprocessing, interchangeable with Hugging Face's
 * `Qwen2VLImageProcessor` (the processor Qwen3-VL uses): smart resize to a
 * multiple of `patch_size * merge_size`, bicubic resampling, rescale 1/255,
 * normalize with mean/std, and patchify into `pixel_values` rows ordered
 * merge-block-major exactly like HF's `_preprocess` reshape/transpose.
 *
 * Numerics versus HF:
 * - Resampling reproduces Pillow's `Image.resize(..., BICUBIC)` on 8-bit
 *   images bit for bit (separable, antialiased support, fixed-point 22-bit
 *   coefficients, horizontal pass then vertical, uint8 rounding between
 *   passes), which is what HF's slow processor calls. HF's *fast* processor
 *   resizes with torchvision in float and rounds once, so resized pixels can
 *   differ from it by 1 level (1/255) near edges. When the image is already a
 *   multiple of the factor inside [min_pixels, max_pixels] no resize happens
 *   and both agree exactly.
 * - Rescale and normalize follow the slow processor's float32 rounding
 *   (`f32(u * (1/255))`, then `f32(f32(v - mean) / std)`); the fast
 *   processor fuses them and may differ by 1 ulp.
 */
import { roundHalfEven } from "../coord/codec.ts";

/** Preprocessing hyper-parameters; names follow HF's preprocessor_config. */
export interface VisionPreprocessConfig {
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  minPixels: number;
  maxPixels: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** Skip resampling entirely (HF `do_resize=False`); sizes must already fit. */
  doResize: boolean;
}

/** Qwen3-VL's released preprocessor_config.json values. */
export const QWEN3VL_VISION_DEFAULTS: Readonly<VisionPreprocessConfig> = {
  patchSize: 16,
  temporalPatchSize: 2,
  mergeSize: 2,
  minPixels: 65536,
  maxPixels: 16777216,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
  doResize: true,
};

/** Output of `preprocessImage` for one image. */
export interface PreprocessedImage {
  /** pixel_values [gridT*gridH*gridW, 3*temporalPatchSize*patchSize^2], row-major. */
  pixelValues: Float32Array;
  /** [rows, cols] of `pixelValues`. */
  shape: [number, number];
  /** image_grid_thw: [t, h, w] in patches. */
  gridThw: [number, number, number];
  /** Number of `<|image_pad|>` tokens: t*h*w / merge^2. */
  mergedTokenCount: number;
  resizedHeight: number;
  resizedWidth: number;
}

/**
 * HF `smart_resize`: the (height, width) closest to the input that are
 * multiples of `factor`, with the pixel count inside [minPixels, maxPixels]
 * and the aspect ratio roughly kept. Python's `round` (half to even) is used
 * as in HF.
 */
export function smartResize(
  height: number,
  width: number,
  factor = 32,
  minPixels = QWEN3VL_VISION_DEFAULTS.minPixels,
  maxPixels = QWEN3VL_VISION_DEFAULTS.maxPixels,
): [number, number] {
  if (!(height >= 1 && width >= 1)) {
    throw new RangeError(`image size ${width}x${height} must be at least 1x1`);
  }
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new RangeError(
      `absolute aspect ratio must be smaller than 200, got ${
        Math.max(height, width) / Math.min(height, width)
      }`,
    );
  }
  let hBar = roundHalfEven(height / factor) * factor;
  let wBar = roundHalfEven(width / factor) * factor;
  if (hBar * wBar > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return [hBar, wBar];
}

// Pillow's fixed-point resampling (libImaging/Resample.c), rewritten because
// no npm package reproduces Pillow's integer rounding, which HF's slow
// processor inherits.
const PRECISION_BITS = 32 - 8 - 2;

function bicubicFilter(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coeffs {
  ksize: number;
  /** Per output index: first input index and tap count. */
  bounds: Int32Array;
  /** Fixed-point taps [outSize, ksize]. */
  kk: Int32Array;
}

function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const taps = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubicFilter((x + xmin - center + 0.5) * ss);
      taps[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? taps[x] / ww : taps[x];
      const f = k * (1 << PRECISION_BITS);
      kk[xx * ksize + x] = Math.trunc(k < 0 ? f - 0.5 : f + 0.5);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= 1 << (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return v >> PRECISION_BITS;
}

/**
 * Bicubic resize of an interleaved RGB image [h, w, 3] to [outH, outW, 3],
 * matching Pillow's `Image.resize((outW, outH), Image.BICUBIC)` exactly.
 */
export function resizeBicubicRgb(
  rgb: Uint8Array,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Uint8Array {
  if (rgb.length !== h * w * 3) {
    throw new RangeError(
      `RGB buffer has ${rgb.length} bytes, expected ${h * w * 3}`,
    );
  }
  let src = rgb;
  let curW = w;
  if (outW !== w) {
    const c = precomputeCoeffs(w, outW);
    const dst = new Uint8Array(h * outW * 3);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
        const k0 = xx * c.ksize;
        for (let ch = 0; ch < 3; ch++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < xmax; x++) {
            ss += src[(y * w + xmin + x) * 3 + ch] * c.kk[k0 + x];
          }
          dst[(y * outW + xx) * 3 + ch] = clip8(ss);
        }
      }
    }
    src = dst;
    curW = outW;
  }
  if (outH !== h) {
    const c = precomputeCoeffs(h, outH);
    const dst = new Uint8Array(outH * curW * 3);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
      const k0 = yy * c.ksize;
      for (let x = 0; x < curW; x++) {
        for (let ch = 0; ch < 3; ch++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let y = 0; y < ymax; y++) {
            ss += src[((ymin + y) * curW + x) * 3 + ch] * c.kk[k0 + y];
          }
          dst[(yy * curW + x) * 3 + ch] = clip8(ss);
        }
      }
    }
    src = dst;
  }
  return src === rgb ? rgb.slice() : src;
}

function checkConfig(cfg: VisionPreprocessConfig): void {
  for (const k of ["patchSize", "temporalPatchSize", "mergeSize"] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) {
      throw new RangeError(
        `vision preprocessing ${k} must be an integer >= 1, got ${cfg[k]}`,
      );
    }
  }
  if (!(cfg.minPixels >= 1 && cfg.maxPixels >= cfg.minPixels)) {
    throw new RangeError(
      `vision preprocessing needs 1 <= minPixels <= maxPixels, got ${cfg.minPixels}, ${cfg.maxPixels}`,
    );
  }
}

/**
 * One RGB image [h, w, 3] (uint8, interleaved) -> Qwen3-VL `pixel_values`
 * and `image_grid_thw`. A single image is repeated `temporalPatchSize` times
 * along time, as HF does, so grid_t = 1.
 */
export function preprocessImage(
  rgb: Uint8Array,
  height: number,
  width: number,
  config: Partial<VisionPreprocessConfig> = {},
): PreprocessedImage {
  const cfg: VisionPreprocessConfig = { ...QWEN3VL_VISION_DEFAULTS, ...config };
  checkConfig(cfg);
  const ps = cfg.patchSize, tps = cfg.temporalPatchSize, m = cfg.mergeSize;
  const factor = ps * m;
  let img = rgb;
  let rh = height, rw = width;
  if (cfg.doResize) {
    [rh, rw] = smartResize(height, width, factor, cfg.minPixels, cfg.maxPixels);
    if (rh !== height || rw !== width) {
      img = resizeBicubicRgb(rgb, height, width, rh, rw);
    }
  } else if (height % factor !== 0 || width % factor !== 0) {
    throw new RangeError(
      `image ${width}x${height} is not a multiple of patch_size*merge_size=${factor} and resizing is off`,
    );
  }
  if (img.length !== rh * rw * 3) {
    throw new RangeError(
      `RGB buffer has ${img.length} bytes, expected ${rh * rw * 3}`,
    );
  }
  // normalized [3, rh, rw] (channel-first, as HF's data_format=FIRST)
  const scale = 1 / 255;
  const mean = cfg.imageMean.map(Math.fround);
  const std = cfg.imageStd.map(Math.fround);
  const lut = new Float32Array(256 * 3);
  for (let ch = 0; ch < 3; ch++) {
    for (let u = 0; u < 256; u++) {
      const v = Math.fround(u * scale);
      lut[ch * 256 + u] = Math.fround(Math.fround(v - mean[ch]) / std[ch]);
    }
  }
  const gridT = 1, gridH = rh / ps, gridW = rw / ps;
  const rows = gridT * gridH * gridW;
  const cols = 3 * tps * ps * ps;
  const out = new Float32Array(rows * cols);
  // HF: reshape [t, tps, C, gh/m, m, ps, gw/m, m, ps], transpose to
  // [t, gh/m, gw/m, m, m, C, tps, ps, ps], flatten to [rows, cols].
  let r = 0;
  for (let bh = 0; bh < gridH / m; bh++) {
    for (let bw = 0; bw < gridW / m; bw++) {
      for (let mh = 0; mh < m; mh++) {
        for (let mw = 0; mw < m; mw++, r++) {
          const y0 = (bh * m + mh) * ps, x0 = (bw * m + mw) * ps;
          let f = r * cols;
          for (let ch = 0; ch < 3; ch++) {
            for (let tp = 0; tp < tps; tp++) {
              for (let ph = 0; ph < ps; ph++) {
                const rowBase = ((y0 + ph) * rw + x0) * 3 + ch;
                for (let pw = 0; pw < ps; pw++) {
                  out[f++] = lut[ch * 256 + img[rowBase + pw * 3]];
                }
              }
            }
          }
        }
      }
    }
  }
  return {
    pixelValues: out,
    shape: [rows, cols],
    gridThw: [gridT, gridH, gridW],
    mergedTokenCount: (gridT * gridH * gridW) / (m * m),
    resizedHeight: rh,
    resizedWidth: rw,
  };
}
