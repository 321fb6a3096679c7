import assert from "node:assert/strict";
import {
  preprocessImage,
  QWEN3VL_VISION_DEFAULTS,
  resizeBicubicRgb,
  smartResize,
} from "../../../trainer/data/vision.ts";

// [height, width, factor, min_pixels, max_pixels] -> [h, w], computed with
// CPython running HF's `smart_resize` (Python `round` is half-to-even).
const SMART_RESIZE_CASES: [number[], number[]][] = [
  [[64, 64, 32, 1024, 65536], [64, 64]],
  [[100, 50, 32, 1024, 1e9], [96, 64]],
  [[80, 48, 32, 1024, 1e9], [64, 64]], // 2.5 and 1.5 round to even
  [[1000, 1000, 32, 1024, 65536], [256, 256]],
  [[10, 10, 32, 1024, 65536], [32, 32]],
  [[480, 640, 32, 65536, 16777216], [480, 640]],
  [[7, 300, 32, 65536, 16777216], [64, 1696]],
  [[1080, 1920, 28, 3136, 1003520], [728, 1316]],
  [[33, 999, 16, 4096, 50000], [32, 992]],
  [[250, 250, 32, 65536, 16777216], [256, 256]],
];

Deno.test("smartResize matches HF smart_resize, including half-to-even ties", () => {
  for (const [[h, w, f, mn, mx], want] of SMART_RESIZE_CASES) {
    assert.deepEqual(smartResize(h, w, f, mn, mx), want, `case ${h}x${w}`);
  }
  assert.throws(() => smartResize(1, 300), /aspect ratio/);
});

/** numpy-style reshape+transpose on a flat row-major array (independent of vision.ts). */
function transposeNd(
  data: Float32Array,
  shape: number[],
  perm: number[],
): Float32Array {
  const strides = shape.map((_, i) =>
    shape.slice(i + 1).reduce((a, b) => a * b, 1)
  );
  const outShape = perm.map((p) => shape[p]);
  const out = new Float32Array(data.length);
  const idx = new Array(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < idx.length; d++) src += idx[d] * strides[perm[d]];
    out[o] = data[src];
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

function testImage(h: number, w: number): Uint8Array {
  const rgb = new Uint8Array(h * w * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37 + 11) % 256;
  return rgb;
}

Deno.test("pixel_values follow HF's reshape/transpose order exactly", () => {
  const cases = [
    { h: 8, w: 4, ps: 2, tps: 2, m: 2 },
    { h: 12, w: 6, ps: 3, tps: 1, m: 2 },
    { h: 64, w: 32, ps: 16, tps: 2, m: 2 },
  ];
  for (const { h, w, ps, tps, m } of cases) {
    const rgb = testImage(h, w);
    const got = preprocessImage(rgb, h, w, {
      patchSize: ps,
      temporalPatchSize: tps,
      mergeSize: m,
      minPixels: 1,
      maxPixels: 1e9,
    });
    // HF: normalized [T=tps, C, H, W] (image repeated along time), then
    // reshape [1, tps, C, gh/m, m, ps, gw/m, m, ps] and transpose.
    const chw = new Float32Array(tps * 3 * h * w);
    for (let t = 0; t < tps; t++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const u = rgb[(y * w + x) * 3 + c];
            chw[((t * 3 + c) * h + y) * w + x] = Math.fround(
              Math.fround(Math.fround(u / 255) - 0.5) / 0.5,
            );
          }
        }
      }
    }
    const gh = h / ps, gw = w / ps;
    const want = transposeNd(
      chw,
      [1, tps, 3, gh / m, m, ps, gw / m, m, ps],
      [0, 3, 6, 4, 7, 2, 1, 5, 8],
    );
    assert.deepEqual(got.shape, [gh * gw, 3 * tps * ps * ps]);
    assert.deepEqual(got.gridThw, [1, gh, gw]);
    assert.equal(got.mergedTokenCount, (gh * gw) / (m * m));
    assert.deepEqual(Array.from(got.pixelValues), Array.from(want));
  }
});

Deno.test("pixel_values rows are merge-block-major (hand-checked 8x4 image)", () => {
  // 8x4 image, patch 2, merge 2: 4x2 patch grid = 2x1 merge blocks.
  const h = 8, w = 4;
  const rgb = testImage(h, w);
  const norm = (y: number, x: number, c: number) =>
    Math.fround(
      Math.fround(Math.fround(rgb[(y * w + x) * 3 + c] / 255) - 0.5) / 0.5,
    );
  const p = preprocessImage(rgb, h, w, {
    patchSize: 2,
    temporalPatchSize: 2,
    mergeSize: 2,
    minPixels: 1,
    maxPixels: 1e9,
  });
  const row = (r: number) =>
    Array.from(p.pixelValues.slice(r * 24, r * 24 + 24));
  // row 1 = block (0,0), merge cell (0,1): pixels y 0..1, x 2..3;
  // features ordered (channel, time, py, px)
  const r1 = row(1);
  assert.deepEqual(r1.slice(0, 4), [
    norm(0, 2, 0),
    norm(0, 3, 0),
    norm(1, 2, 0),
    norm(1, 3, 0),
  ]);
  assert.deepEqual(r1.slice(4, 8), r1.slice(0, 4)); // time copy
  assert.deepEqual(r1.slice(8, 12), [
    norm(0, 2, 1),
    norm(0, 3, 1),
    norm(1, 2, 1),
    norm(1, 3, 1),
  ]);
  // row 2 = block (0,0), merge cell (1,0): y 2..3, x 0..1 (not the next patch to the right)
  assert.deepEqual(row(2).slice(0, 4), [
    norm(2, 0, 0),
    norm(2, 1, 0),
    norm(3, 0, 0),
    norm(3, 1, 0),
  ]);
  // row 4 = block (1,0), merge cell (0,0): y 4..5, x 0..1
  assert.deepEqual(row(4).slice(0, 4), [
    norm(4, 0, 0),
    norm(4, 1, 0),
    norm(5, 0, 0),
    norm(5, 1, 0),
  ]);
  // row 3 = block (0,0), merge cell (1,1): y 2..3, x 2..3
  assert.deepEqual(row(3).slice(0, 4), [
    norm(2, 2, 0),
    norm(2, 3, 0),
    norm(3, 2, 0),
    norm(3, 3, 0),
  ]);
});

Deno.test("normalization uses mean/std 0.5: 0 -> -1, 255 -> 1", () => {
  const rgb = new Uint8Array(32 * 32 * 3);
  for (let i = 0; i < rgb.length; i += 2) rgb[i] = 255;
  const p = preprocessImage(rgb, 32, 32, { minPixels: 1024, maxPixels: 1024 });
  assert.deepEqual([...new Set(p.pixelValues)].sort(), [-1, 1]);
  assert.deepEqual(p.gridThw, [1, 2, 2]);
  assert.equal(p.mergedTokenCount, 1);
  assert.equal(
    QWEN3VL_VISION_DEFAULTS.patchSize * QWEN3VL_VISION_DEFAULTS.mergeSize,
    32,
  );
});

Deno.test("a 64x64 image is not resized with the tiny-run pixel limits", () => {
  const rgb = testImage(64, 64);
  const p = preprocessImage(rgb, 64, 64, { minPixels: 1024, maxPixels: 65536 });
  assert.deepEqual([p.resizedHeight, p.resizedWidth], [64, 64]);
  assert.equal(p.mergedTokenCount, 4);
  // with HF's default min_pixels (256*256) the same image is upscaled
  const big = preprocessImage(rgb, 64, 64);
  assert.deepEqual([big.resizedHeight, big.resizedWidth], [256, 256]);
  assert.equal(big.mergedTokenCount, 64);
});

Deno.test("doResize=false rejects sizes that are not a multiple of the factor", () => {
  assert.throws(
    () => preprocessImage(testImage(40, 40), 40, 40, { doResize: false }),
    /not a multiple of patch_size\*merge_size=32/,
  );
});

Deno.test("bicubic resize: identity, constants and a hand-computed Pillow tap set", () => {
  const rgb = testImage(5, 7);
  assert.deepEqual(resizeBicubicRgb(rgb, 5, 7, 5, 7), rgb);
  const flat = new Uint8Array(6 * 9 * 3).fill(77);
  assert.ok(resizeBicubicRgb(flat, 6, 9, 13, 4).every((v) => v === 77));
  // 4 -> 2 columns: support 4, taps at (x - 1 + 0.5)/2 for output 0 =
  // f(-.25)=.8671875, f(.25)=.8671875, f(.75)=.2265625, f(1.25)=-.0703125
  // (a=-0.5), normalized by their sum 1.890625.
  const row = new Uint8Array([0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]);
  const out = resizeBicubicRgb(row, 1, 4, 1, 2);
  const v0 = Math.round((255 * (0.2265625 - 0.0703125)) / 1.890625);
  assert.deepEqual(Array.from(out), [v0, v0, v0, 255 - v0, 255 - v0, 255 - v0]);
  assert.equal(v0, 21);
  // overshoot is clipped to 0..255, never wrapped
  const edge = new Uint8Array([0, 0, 0, 255, 255, 255, 0, 0, 0]);
  const up = resizeBicubicRgb(edge, 1, 3, 1, 9);
  assert.ok(up.every((v) => v >= 0 && v <= 255));
  assert.ok(Math.max(...up) === 255 && Math.min(...up) === 0);
});
