import assert from "node:assert/strict";
import pngjs from "pngjs";
import {
  checkPngFile,
  decodePng,
  encodePngRgb,
  MAX_IMAGE_PIXELS,
  readPng,
} from "../../../trainer/data/png.ts";

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
      new RegExp(`^InputError: ${f} is not a PNG file \\(no PNG signature\\)$`),
    );
  } finally {
    await Deno.remove(f);
  }
});

/** A valid PNG whose IHDR declares `width` x `height` (pixel data: 1 row). */
function declaring(width: number, height: number): Uint8Array {
  const small = encodePngRgb({ width: 1, height: 1, rgb: new Uint8Array(3) });
  const out = small.slice();
  const v = new DataView(out.buffer);
  v.setUint32(16, width);
  v.setUint32(20, height);
  return out;
}

Deno.test("a PNG declaring 30000x30000 pixels is refused from its header, before decoding", async () => {
  const bomb = declaring(30000, 30000);
  assert.ok(bomb.length < 100, "a tiny file");
  assert.throws(
    () => decodePng(bomb, "bomb.png"),
    /PNG bomb\.png declares 30000x30000 = 900000000 pixels, over the limit of 89478485/,
  );
  const f = await Deno.makeTempFile({ suffix: ".png" });
  try {
    await Deno.writeFile(f, bomb);
    await assert.rejects(() => checkPngFile(f), /over the limit/);
    await assert.rejects(() => readPng(f), /over the limit/);
    // the limit is Pillow's; an image just under it passes the header check
    const side = Math.floor(Math.sqrt(MAX_IMAGE_PIXELS));
    await Deno.writeFile(f, declaring(side, side));
    assert.deepEqual(await checkPngFile(f), { width: side, height: side });
  } finally {
    await Deno.remove(f);
  }
});

Deno.test("JPEG named .png and truncated PNGs get a clear message, not a decoder-internal one", () => {
  const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xdb, 0, 0x43, 0, 0]);
  assert.throws(
    () => decodePng(jpeg, "photo.png"),
    /^InputError: photo\.png is a JPEG file, not a PNG; convert it to PNG/,
  );
  const good = encodePngRgb({ width: 8, height: 8, rgb: new Uint8Array(192) });
  assert.throws(
    () => decodePng(good.slice(0, 20), "cut.png"),
    /PNG cut\.png is truncated or damaged \(no IHDR header\)/,
  );
  assert.throws(
    () => decodePng(good.slice(0, good.length - 16), "cut.png"),
    /PNG cut\.png is damaged or truncated/,
  );
});
