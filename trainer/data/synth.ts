/**
 * Seeded synthetic detection data: coloured shapes ("red circle", "blue
 * triangle", ...; 4 shapes x 6 colours) on flat or gradient grey backgrounds
 * with optional noise, 1..N objects per image, each 15%..50% of the image
 * side, with partial overlaps. Boxes are the inclusive pixel extent of each
 * shape's full mask (occlusion by a later shape does not shrink the box, as
 * in usual detection labels).
 *
 * Sample i of a split is a pure function of (seed, split, i): its layout and
 * its pixels come from PRNG streams seeded by those alone, so a fixed
 * dataset is the prefix of an endless stream of fresh samples.
 */
import { join } from "node:path";
import type { Xyxy } from "../coord/pixels.ts";
import { writeFileAtomic } from "./atomic.ts";
import { validateRecord } from "./jsonl.ts";
import { encodePngRgb, type RgbImage } from "./png.ts";
import type { DetectionRecord } from "./types.ts";

/**
 * mulberry32: a tiny 32-bit PRNG. Hand-written (6 lines) rather than an npm
 * dependency because dataset bytes must never change with a library update,
 * and the algorithm is fully specified here. Returns floats in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The task's classes: 4 shapes x 6 colours (24 descs). Shapes and colours
 * were chosen to stay distinguishable at 8-30 pixels: a ring or a diamond
 * of 8 pixels is hard to tell from a circle even for a person.
 */
export const SHAPES = ["circle", "square", "triangle", "cross"] as const;
export type Shape = typeof SHAPES[number];

/** Saturated object colours; backgrounds are low-saturation greys. */
export const COLORS: Readonly<
  Record<string, readonly [number, number, number]>
> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [235, 210, 40],
  purple: [150, 60, 190],
  orange: [240, 140, 30],
};
const COLOR_NAMES = Object.keys(COLORS);

export interface SynthOptions {
  /** Square image side in pixels; a multiple of 32 keeps Qwen3-VL resizing the identity. */
  imageSize: number;
  /** Objects per image are drawn uniformly from 1..maxObjects. */
  maxObjects: number;
  /** Add per-pixel background noise to about a third of the images. */
  noise: boolean;
}

export const SYNTH_DEFAULTS: Readonly<SynthOptions> = {
  imageSize: 64,
  maxObjects: 6,
  noise: true,
};

/**
 * Shape diameter (2r) as a fraction of the image side, drawn uniformly in
 * [MIN_SIZE, MAX_SIZE]; a triangle's box is as wide as it is tall, the
 * other shapes' boxes are the diameter (up to a pixel of rasterization).
 */
export const MIN_SIZE = 0.15;
export const MAX_SIZE = 0.5;

/** One object of a layout: what is drawn where (pixels, inclusive box). */
export interface SynthObject {
  desc: string;
  shape: Shape;
  color: string;
  bbox: Xyxy;
  /** Centre and radius of the drawn shape (pixels). */
  cx: number;
  cy: number;
  r: number;
}

/** One synthetic image with its objects in pixel coordinates (inclusive). */
export interface SynthSample {
  image: RgbImage;
  objects: SynthObject[];
}

/** One in-memory item: a validated record (bins) plus its decoded image. */
export interface SynthItem {
  record: DetectionRecord;
  image: RgbImage;
  /** Pixel boxes, parallel to `record.objects`. */
  pixelBoxes: Xyxy[];
}

function inside(shape: Shape, dx: number, dy: number, r: number): boolean {
  const ax = Math.abs(dx), ay = Math.abs(dy);
  switch (shape) {
    case "circle":
      return dx * dx + dy * dy <= r * r;
    case "square":
      return ax <= r && ay <= r;
    case "triangle": {
      // apex up: half-width grows linearly from 0 at the top to r at the bottom
      if (dy < -r || dy > r) return false;
      return ax <= (r * (dy + r)) / (2 * r);
    }
    case "cross":
      return (ax <= 0.35 * r && ay <= r) || (ay <= 0.35 * r && ax <= r);
  }
}

/** Pixel indices (y*S + x) covered by a shape. */
function shapeMask(
  shape: Shape,
  cx: number,
  cy: number,
  r: number,
  S: number,
): number[] {
  const mask: number[] = [];
  for (
    let y = Math.max(0, Math.floor(cy - r));
    y <= Math.min(S - 1, Math.ceil(cy + r));
    y++
  ) {
    for (
      let x = Math.max(0, Math.floor(cx - r));
      x <= Math.min(S - 1, Math.ceil(cx + r));
      x++
    ) {
      if (inside(shape, x - cx, y - cy, r)) mask.push(y * S + x);
    }
  }
  return mask;
}

function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function background(
  rng: () => number,
  size: number,
  noise: boolean,
): Uint8Array {
  const rgb = new Uint8Array(size * size * 3);
  // a grey level with a slight tint: varied, but never the colour of an object
  const tone = () => {
    const g = randInt(rng, 80, 175);
    return [0, 1, 2].map(() => g + randInt(rng, -10, 10));
  };
  const c0 = tone();
  const gradient = rng() < 0.5;
  const c1 = gradient ? tone() : c0;
  const horizontal = rng() < 0.5;
  const amp = noise && rng() < 1 / 3 ? 12 : 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = (horizontal ? x : y) / Math.max(1, size - 1);
      for (let c = 0; c < 3; c++) {
        let v = c0[c] + (c1[c] - c0[c]) * t;
        if (amp > 0) v += (rng() * 2 - 1) * amp;
        rgb[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return rgb;
}

function overlapTooMuch(a: Xyxy, boxes: Xyxy[]): boolean {
  const area = (b: Xyxy) => (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
  for (const b of boxes) {
    const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + 1;
    const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + 1;
    if (iw <= 0 || ih <= 0) continue;
    // partial overlap is wanted; near-total occlusion would make bad labels
    if ((iw * ih) / Math.min(area(a), area(b)) > 0.4) return true;
  }
  return false;
}

function checkOptions(opts: SynthOptions): void {
  const S = opts.imageSize;
  if (!Number.isInteger(S) || S < 16) {
    throw new RangeError(
      `synthetic image size must be an integer >= 16, got ${S}`,
    );
  }
  if (!Number.isInteger(opts.maxObjects) || opts.maxObjects < 1) {
    throw new RangeError(
      `synthetic max objects must be an integer >= 1, got ${opts.maxObjects}`,
    );
  }
}

/**
 * Where the objects go, drawn from `rng`: cheap (no background, no paint),
 * so a data pipeline can know every sample's answer before rendering it.
 * Objects are in drawing order (a later one may partly cover an earlier one).
 */
export function synthLayout(
  rng: () => number,
  opts: SynthOptions,
): SynthObject[] {
  checkOptions(opts);
  const S = opts.imageSize;
  const n = randInt(rng, 1, opts.maxObjects);
  const objects: SynthObject[] = [];
  const boxes: Xyxy[] = [];
  const minR = Math.max(3, (S * MIN_SIZE) / 2);
  const maxR = Math.max(minR, (S * MAX_SIZE) / 2);
  for (let i = 0; i < n; i++) {
    for (let attempt = 0; attempt < 30; attempt++) {
      const shape = SHAPES[randInt(rng, 0, SHAPES.length - 1)];
      const color = COLOR_NAMES[randInt(rng, 0, COLOR_NAMES.length - 1)];
      const r = minR + rng() * (maxR - minR);
      const cx = r + rng() * (S - 1 - 2 * r);
      const cy = r + rng() * (S - 1 - 2 * r);
      const mask = shapeMask(shape, cx, cy, r, S);
      if (mask.length < 6) continue;
      let x1 = S, y1 = S, x2 = -1, y2 = -1;
      for (const p of mask) {
        const x = p % S, y = (p - x) / S;
        x1 = Math.min(x1, x), y1 = Math.min(y1, y);
        x2 = Math.max(x2, x), y2 = Math.max(y2, y);
      }
      const box: Xyxy = [x1, y1, x2, y2];
      if (overlapTooMuch(box, boxes)) continue;
      boxes.push(box);
      objects.push({
        desc: `${color} ${shape}`,
        shape,
        color,
        bbox: box,
        cx,
        cy,
        r,
      });
      break;
    }
  }
  return objects;
}

/** Paints a layout over a background drawn from `rng`. */
export function renderLayout(
  objects: readonly SynthObject[],
  rng: () => number,
  opts: SynthOptions,
): RgbImage {
  checkOptions(opts);
  const S = opts.imageSize;
  const rgb = background(rng, S, opts.noise);
  for (const o of objects) {
    const col = COLORS[o.color];
    for (const p of shapeMask(o.shape, o.cx, o.cy, o.r, S)) {
      rgb[p * 3] = col[0], rgb[p * 3 + 1] = col[1], rgb[p * 3 + 2] = col[2];
    }
  }
  return { width: S, height: S, rgb };
}

/**
 * 32-bit integer mix (the murmur3 finalizer over a running combination):
 * derives independent PRNG seeds from (seed, split, index, stream).
 * Hand-written for the same reason as `mulberry32`.
 */
export function mixSeeds(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h ^= h >>> 16;
  }
  return h >>> 0;
}

const SPLIT_KEY = { train: 0x1234567, val: 0x7654321 } as const;
const LAYOUT_STREAM = 1, PIXEL_STREAM = 2;

/**
 * The layout of sample `index` of a split: a pure function of
 * (seed, split, index, opts), independent of every other sample, so an
 * endless stream of fresh images can be addressed by index.
 */
export function synthLayoutAt(
  seed: number,
  split: "train" | "val",
  index: number,
  opts: Partial<SynthOptions> = {},
): SynthObject[] {
  const o = { ...SYNTH_DEFAULTS, ...opts };
  return synthLayout(
    mulberry32(mixSeeds(seed, SPLIT_KEY[split], index, LAYOUT_STREAM)),
    o,
  );
}

/**
 * Sample `index` of a split (layout + image), a pure function of its arguments.
 *
 * @example
 * const { objects, image } = synthSampleAt(17, "train", 0);
 * objects[0].desc; // e.g. "red circle"; image.width === 64
 */
export function synthSampleAt(
  seed: number,
  split: "train" | "val",
  index: number,
  opts: Partial<SynthOptions> = {},
): SynthSample {
  const o = { ...SYNTH_DEFAULTS, ...opts };
  const objects = synthLayoutAt(seed, split, index, o);
  const image = renderLayout(
    objects,
    mulberry32(mixSeeds(seed, SPLIT_KEY[split], index, PIXEL_STREAM)),
    o,
  );
  return { image, objects };
}

/** The first `n` samples of one split (train and val never share an image). */
export function synthSplit(
  n: number,
  seed: number,
  split: "train" | "val",
  opts: Partial<SynthOptions> = {},
): SynthSample[] {
  return Array.from(
    { length: n },
    (_, i) => synthSampleAt(seed, split, i, opts),
  );
}

/** Pixel-coordinate JSONL record for one sample whose PNG lives at `imagePath`. */
export function synthRecordJson(
  s: SynthSample,
  imagePath: string,
): Record<string, unknown> {
  return {
    images: [imagePath],
    width: s.image.width,
    height: s.image.height,
    objects: s.objects.map((o) => ({ desc: o.desc, bbox_2d: o.bbox })),
  };
}

/**
 * In-memory dataset for tests and benchmarks: records go through the same
 * validation as the JSONL loader; image paths are virtual (`synth://...`).
 */
export function synthInMemory(
  n: number,
  seed: number,
  split: "train" | "val" = "train",
  opts: Partial<SynthOptions> = {},
): SynthItem[] {
  return synthSplit(n, seed, split, opts).map((s, i) => {
    const name = `synth://${split}/${seed}/${i}`;
    const record = validateRecord(synthRecordJson(s, name), `${name}`, "/");
    record.images = [name];
    return { record, image: s.image, pixelBoxes: s.objects.map((o) => o.bbox) };
  });
}

export interface WrittenSynth {
  trainJsonl: string;
  valJsonl: string;
  nTrain: number;
  nVal: number;
}

/**
 * Write `<outDir>/images/{train,val}_NNNNN.png`, `train.jsonl`, `val.jsonl`
 * (pixel boxes, image paths relative to the JSONL) and `synth.json` (the
 * generator settings). Every file is written atomically.
 */
export async function writeSynthDataset(
  outDir: string,
  args:
    & {
      nTrain: number;
      nVal: number;
      seed: number;
      /** Recorded in synth.json: training images are drawn fresh in memory. */
      fresh?: boolean;
    }
    & Partial<SynthOptions>,
): Promise<WrittenSynth> {
  const opts: SynthOptions = {
    imageSize: args.imageSize ?? SYNTH_DEFAULTS.imageSize,
    maxObjects: args.maxObjects ?? SYNTH_DEFAULTS.maxObjects,
    noise: args.noise ?? SYNTH_DEFAULTS.noise,
  };
  for (
    const [k, v] of [["nTrain", args.nTrain], ["nVal", args.nVal]] as const
  ) {
    if (!Number.isInteger(v) || v < 0) {
      throw new RangeError(
        `${k} must be an integer >= 0, got ${v}`,
      );
    }
  }
  if (!Number.isInteger(args.seed)) {
    throw new RangeError(`seed must be an integer, got ${args.seed}`);
  }
  const paths: Record<"train" | "val", string> = {
    train: join(outDir, "train.jsonl"),
    val: join(outDir, "val.jsonl"),
  };
  for (const split of ["train", "val"] as const) {
    const n = split === "train" ? args.nTrain : args.nVal;
    const lines: string[] = [];
    const samples = synthSplit(n, args.seed, split, opts);
    for (let i = 0; i < samples.length; i++) {
      const rel = `images/${split}_${String(i).padStart(5, "0")}.png`;
      await writeFileAtomic(join(outDir, rel), encodePngRgb(samples[i].image));
      lines.push(JSON.stringify(synthRecordJson(samples[i], rel)));
    }
    await writeFileAtomic(paths[split], lines.map((l) => l + "\n").join(""));
  }
  await writeFileAtomic(
    join(outDir, "synth.json"),
    JSON.stringify(
      {
        seed: args.seed,
        n_train: args.nTrain,
        n_val: args.nVal,
        ...opts,
        fresh: args.fresh ?? false,
      },
      null,
      2,
    ) +
      "\n",
  );
  return {
    trainJsonl: paths.train,
    valJsonl: paths.val,
    nTrain: args.nTrain,
    nVal: args.nVal,
  };
}
