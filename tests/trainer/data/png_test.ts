import assert from "node:assert/strict";
import pngjs from "pngjs";
import { decodePng, encodePngRgb, readPng } from "../../../trainer/data/png.ts";

Deno.test("RGB PNG encode/decode is lossless", () => {
  const rgb = new Uint8Array(5 * 3 * 3).map((_, i) => (i * 53) % 256);
  const back = decodePng(encodePngRgb({ width: 5, height: 3, rgb }));
  assert.equal(back.width, 5);
  assert.equal(back.height, 3);
  assert.deepEqual(back.rgb, rgb);
  assert.throws(
    () => encodePngRgb({ width: 5, height: 4, rgb }),
    /expected 60/,
  );
});

Deno.test("RGBA PNGs are composited over white", () => {
  const png = new pngjs.PNG({ width: 3, height: 1 });
  png.data.set([0, 0, 0, 0, 0, 0, 0, 128, 10, 20, 30, 255]);
  const bytes = pngjs.PNG.sync.write(png);
  const { rgb } = decodePng(new Uint8Array(bytes));
  assert.deepEqual(Array.from(rgb), [255, 255, 255, 127, 127, 127, 10, 20, 30]);
});

Deno.test("unreadable or corrupt PNGs name the path", async () => {
  await assert.rejects(
    () => readPng("/nonexistent/a.png"),
    /cannot read image \/nonexistent\/a\.png/,
  );
  const f = await Deno.makeTempFile({ suffix: ".png" });
  try {
    await Deno.writeTextFile(f, "not a png");
    await assert.rejects(
      () => readPng(f),
      new RegExp(`cannot decode PNG ${f}`),
    );
  } finally {
    await Deno.remove(f);
  }
});
