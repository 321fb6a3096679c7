import assert from "node:assert/strict";
import { decodePng } from "../../../trainer/data/png.ts";
import {
  type EvalSampleRecord,
  OVERLAY_COLOURS,
  renderOverlay,
} from "../../../trainer/eval/mod.ts";
import { overlayScale } from "../../../trainer/eval/overlay.ts";
import type { Xyxy } from "../../../trainer/coord/pixels.ts";

/** Bins of a pixel box on a 64-px axis (pixel = bin * 63 / 999). */
const bins = (px: Xyxy) => px.map((v) => Math.round((v * 999) / 63)) as Xyxy;

const record = (over: Partial<EvalSampleRecord>): EvalSampleRecord => ({
  index: 0,
  source: "val.jsonl:1",
  image: "unused.png",
  width: 64,
  height: 64,
  parsed: true,
  invalid: false,
  stop: "closed",
  truncated: false,
  drops: { poly: 0, unknown: 0, bbox_invalid: 0 },
  new_tokens: 10,
  gts: [],
  preds: [],
  matches: [],
  text: "",
  ...over,
});

const hex = (c: string) =>
  [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

Deno.test("overlay: matched, false-positive and missed boxes in their colours, scaled up with a legend strip", () => {
  const grey = new Uint8Array(64 * 64 * 3).fill(128);
  const rec = record({
    gts: [
      { desc: "red circle", bbox_2d: bins([10, 30, 20, 40]) }, // matched
      { desc: "blue square", bbox_2d: bins([40, 40, 50, 50]) }, // missed
    ],
    preds: [
      { desc: "red circle", bbox_2d: bins([10, 30, 20, 40]), score: -0.1 },
      { desc: "green ring", bbox_2d: bins([40, 5, 55, 20]), score: -2 }, // FP
    ],
    matches: [{ pred: 0, gt: 0, iou: 1 }],
  });
  const png = decodePng(
    renderOverlay(rec, { width: 64, height: 64, rgb: grey }),
  );
  const s = overlayScale(64, 64);
  assert.equal(s, 6);
  assert.equal(png.width, 64 * s);
  assert.ok(png.height > 64 * s, "legend strip below the image");
  const at = (x: number, y: number) => {
    const i = (y * png.width + x) * 3;
    return [png.rgb[i], png.rgb[i + 1], png.rgb[i + 2]];
  };
  // pixel box x1..x2 inclusive -> canvas [x1*s, (x2+1)*s - 1]; check the
  // middle of each box's bottom edge (labels sit above the top edge)
  const bottomMid = (b: Xyxy) =>
    at(Math.round(((b[0] + b[2] + 1) * s) / 2), (b[3] + 1) * s - 1);
  assert.deepEqual(bottomMid([10, 30, 20, 40]), hex(OVERLAY_COLOURS.matched));
  assert.deepEqual(
    bottomMid([40, 5, 55, 20]),
    hex(OVERLAY_COLOURS.falsePositive),
  );
  assert.deepEqual(bottomMid([40, 40, 50, 50]), hex(OVERLAY_COLOURS.missed));
  // inside a box the (scaled) image shows through
  assert.deepEqual(at(15 * s, 35 * s), [128, 128, 128]);
  // each labelled box has a filled label tag above its top edge
  const tagRow = (b: Xyxy, colour: string) => {
    const y = b[1] * s - 4;
    let n = 0;
    for (let x = b[0] * s; x < b[0] * s + 40; x++) {
      if (at(x, y).join() === hex(colour).join()) n++;
    }
    return n;
  };
  assert.ok(tagRow([40, 5, 55, 20], OVERLAY_COLOURS.falsePositive) > 10);
  assert.ok(tagRow([40, 40, 50, 50], OVERLAY_COLOURS.missed) > 10);
  // the label text is drawn inside the tag (white on red): some pixels are
  // neither the tag colour nor the image
  let text = 0;
  for (let y = 5 * s - 17; y < 5 * s - 2; y++) {
    for (let x = 40 * s + 2; x < 40 * s + 60; x++) {
      const p = at(x, y);
      if (p[0] > 200 && p[1] > 200 && p[2] > 200) text++;
    }
  }
  assert.ok(text > 20, `white label text pixels: ${text}`);
});

Deno.test("overlay: scale keeps small images legible and large ones at 1x", () => {
  assert.equal(overlayScale(128, 96), 3);
  assert.equal(overlayScale(64, 128), 3);
  assert.equal(overlayScale(1000, 700), 1);
});
