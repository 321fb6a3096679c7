/**
 * Pixel <-> bin conversion. Pixels run over 0..W-1, so a normalized
 * coordinate is `x / (W - 1)` and bin (999, 999) is the bottom-right pixel.
 */
import { MAX_BIN } from "./codec.ts";

export type Xyxy = [number, number, number, number];

function span(size: number, what: string): number {
  if (!Number.isFinite(size) || size < 1) {
    throw new RangeError(`${what} must be >= 1, got ${size}`);
  }
  return Math.max(1, size - 1);
}

/** Bin -> pixel coordinate on an axis of `size` pixels (float). */
export function binToPixel(k: number, size: number): number {
  return (k / MAX_BIN) * span(size, "image size");
}

/**
 * Ground-truth pixel box -> bin box. x1/y1 round down and x2/y2 round up so
 * a box never collapses to nothing.
 */
export function pixelBoxToBins(box: Xyxy, width: number, height: number): Xyxy {
  const sx = span(width, "width");
  const sy = span(height, "height");
  const lo = (v: number, s: number) =>
    Math.min(MAX_BIN, Math.max(0, Math.floor((MAX_BIN * v) / s + 1e-9)));
  const hi = (v: number, s: number) =>
    Math.min(MAX_BIN, Math.max(0, Math.ceil((MAX_BIN * v) / s - 1e-9)));
  return [lo(box[0], sx), lo(box[1], sy), hi(box[2], sx), hi(box[3], sy)];
}

/** Bin box -> pixel box (floats) on a W x H image. */
export function binBoxToPixels(box: Xyxy, width: number, height: number): Xyxy {
  return [
    binToPixel(box[0], width),
    binToPixel(box[1], height),
    binToPixel(box[2], width),
    binToPixel(box[3], height),
  ];
}
