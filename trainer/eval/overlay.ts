/**
 * PNG overlays of ground truth vs predictions for one evaluated image:
 * matched predictions (with their GT as a thin line), false positives and
 * missed ground truth in distinct colours, each labelled with its desc, over
 * the image scaled up (nearest neighbour) so the small training images stay
 * legible, with a legend strip underneath.
 *
 * Drawing: npm `pureimage` (a pure-JS canvas: rectangles and TrueType text
 * through opentype.js, no native code); the font is DejaVu Sans from npm
 * `dejavu-fonts-ttf`, read from disk, so nothing is fetched at draw or view
 * time. The result is encoded with `pngjs` like every other PNG here.
 */
import { createRequire } from "node:module";
import * as PImage from "pureimage";
import pngjs from "pngjs";
import { Buffer } from "node:buffer";
import { binBoxToPixels, type Xyxy } from "../coord/pixels.ts";
import { loadRecordImage } from "../data/image.ts";
import type { RgbImage } from "../data/png.ts";
import type { EvalSampleRecord } from "./record.ts";

/** Box colours (also used by the report's legend). */
export const OVERLAY_COLOURS = {
  matched: "#16a34a",
  falsePositive: "#dc2626",
  missed: "#f59e0b",
} as const;

/** How many overlays an evaluation writes and a report embeds by default. */
export const DEFAULT_OVERLAYS = 8;

/** The long side of the scaled image is at least this many pixels. */
const TARGET_SIDE = 384;
const FONT = "DejaVuSans";
const FONT_PX = 13;
const FOOTER_PX = 46;

let fontReady = false;

/** Registers DejaVu Sans with pureimage once per process. */
function ensureFont(): void {
  if (fontReady) return;
  let path: string;
  try {
    path = createRequire(import.meta.url).resolve(
      "dejavu-fonts-ttf/ttf/DejaVuSans.ttf",
    );
  } catch (e) {
    throw new Error(
      `overlay font not found (npm dejavu-fonts-ttf; run \`deno install\`): ${
        (e as Error).message
      }`,
    );
  }
  PImage.registerFont(path, FONT).loadSync();
  fontReady = true;
}

/** Integer upscale factor for an image of `width` x `height`. */
export function overlayScale(width: number, height: number): number {
  return Math.max(1, Math.ceil(TARGET_SIDE / Math.max(width, height)));
}

/** One box to draw, in image pixels (edges inclusive). */
interface DrawBox {
  px: Xyxy;
  colour: string;
  thickness: number;
  label: string | null;
}

/** The boxes of a record, in drawing order (labels last on top). */
function overlayBoxes(rec: EvalSampleRecord): DrawBox[] {
  const px = (b: Xyxy) => binBoxToPixels(b, rec.width, rec.height);
  const matchedPred = new Map(rec.matches.map((m) => [m.pred, m]));
  const matchedGt = new Set(rec.matches.map((m) => m.gt));
  const boxes: DrawBox[] = [];
  for (const m of rec.matches) {
    boxes.push({
      px: px(rec.gts[m.gt].bbox_2d),
      colour: OVERLAY_COLOURS.matched,
      thickness: 1,
      label: null,
    });
  }
  rec.gts.forEach((g, j) => {
    if (matchedGt.has(j)) return;
    boxes.push({
      px: px(g.bbox_2d),
      colour: OVERLAY_COLOURS.missed,
      thickness: 2,
      label: g.desc,
    });
  });
  rec.preds.forEach((p, i) => {
    const m = matchedPred.get(i);
    boxes.push({
      px: px(p.bbox_2d),
      colour: m ? OVERLAY_COLOURS.matched : OVERLAY_COLOURS.falsePositive,
      thickness: 2,
      label: m ? `${p.desc} (IoU ${m.iou.toFixed(2)})` : p.desc,
    });
  });
  return boxes;
}

type Ctx = ReturnType<ReturnType<typeof PImage.make>["getContext"]>;

function frame(
  ctx: Ctx,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  t: number,
): void {
  ctx.fillRect(x0, y0, x1 - x0 + 1, t);
  ctx.fillRect(x0, y1 - t + 1, x1 - x0 + 1, t);
  ctx.fillRect(x0, y0, t, y1 - y0 + 1);
  ctx.fillRect(x1 - t + 1, y0, t, y1 - y0 + 1);
}

function tag(
  ctx: Ctx,
  text: string,
  x: number,
  y: number,
  colour: string,
  maxX: number,
): void {
  const w = Math.ceil(ctx.measureText(text).width) + 6;
  const h = FONT_PX + 5;
  const left = Math.max(0, Math.min(x, maxX - w));
  ctx.fillStyle = colour;
  ctx.fillRect(left, y, w, h);
  ctx.fillStyle = colour === OVERLAY_COLOURS.missed ? "#111111" : "#ffffff";
  ctx.fillText(text, left + 3, y + FONT_PX);
}

/**
 * The overlay of one evaluated image as PNG bytes.
 *
 * @example
 * const png = renderOverlay(record, await readPng(record.image));
 * await Deno.writeFile("overlay.png", png);
 */
export function renderOverlay(
  rec: EvalSampleRecord,
  img: RgbImage,
): Uint8Array {
  ensureFont();
  const s = overlayScale(img.width, img.height);
  const W = img.width * s, H = img.height * s;
  const bmp = PImage.make(W, H + FOOTER_PX);
  const data = bmp.data as Uint8Array; // RGBA, row-major
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const src = (Math.floor(y / s) * img.width + Math.floor(x / s)) * 3;
      const dst = (y * W + x) * 4;
      data[dst] = img.rgb[src];
      data[dst + 1] = img.rgb[src + 1];
      data[dst + 2] = img.rgb[src + 2];
      data[dst + 3] = 255;
    }
  }
  const ctx = bmp.getContext("2d");
  ctx.font = `${FONT_PX}px ${FONT}`;
  ctx.fillStyle = "#1f2937";
  ctx.fillRect(0, H, W, FOOTER_PX);
  const clamp = (v: number, hi: number) => Math.max(0, Math.min(hi, v));
  const boxes = overlayBoxes(rec);
  const placed = boxes.map((b) => {
    // pixels x1..x2 inclusive -> canvas [x1*s, (x2+1)*s - 1]
    const x0 = clamp(Math.round(b.px[0] * s), W - 1),
      y0 = clamp(Math.round(b.px[1] * s), H - 1),
      x1 = clamp(Math.round((b.px[2] + 1) * s) - 1, W - 1),
      y1 = clamp(Math.round((b.px[3] + 1) * s) - 1, H - 1);
    ctx.fillStyle = b.colour;
    frame(ctx, x0, y0, x1, y1, b.thickness);
    return { b, x0, y0 };
  });
  for (const { b, x0, y0 } of placed) {
    if (b.label === null) continue;
    const above = y0 - (FONT_PX + 5);
    tag(ctx, b.label, x0, above >= 0 ? above : y0, b.colour, W);
  }
  // footer: counts and the colour legend
  const fp = rec.preds.length - rec.matches.length;
  const fn = rec.gts.length - rec.matches.length;
  ctx.fillStyle = "#e5e7eb";
  ctx.fillText(
    `${rec.matches.length} matched, ${fp} false pos., ${fn} missed${
      rec.parsed ? "" : rec.invalid ? " (invalid rollout)" : " (not closed)"
    }`,
    6,
    H + FONT_PX + 4,
  );
  let x = 6;
  for (
    const [name, colour] of [
      ["matched", OVERLAY_COLOURS.matched],
      ["false positive", OVERLAY_COLOURS.falsePositive],
      ["missed GT", OVERLAY_COLOURS.missed],
    ] as const
  ) {
    ctx.fillStyle = colour;
    ctx.fillRect(x, H + FONT_PX + 12, 12, 12);
    ctx.fillStyle = "#e5e7eb";
    ctx.fillText(name, x + 16, H + 2 * FONT_PX + 10);
    x += 16 + Math.ceil(ctx.measureText(name).width) + 14;
  }
  const png = new pngjs.PNG({ width: W, height: H + FOOTER_PX });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = pngjs.PNG.sync.write(png);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Reads the record's image (checking its declared size) and renders its overlay. */
export async function overlayOf(rec: EvalSampleRecord): Promise<Uint8Array> {
  const img = await loadRecordImage({
    images: [rec.image],
    width: rec.width,
    height: rec.height,
    objects: [],
    source: rec.source,
  });
  return renderOverlay(rec, img);
}
