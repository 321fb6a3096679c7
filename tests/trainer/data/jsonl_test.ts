import assert from "node:assert/strict";
import { join } from "node:path";
import { DataError, loadJsonl } from "../../../trainer/data/jsonl.ts";
import { pixelBoxToBins } from "../../../trainer/coord/pixels.ts";
import { encodePngRgb } from "../../../trainer/data/png.ts";

/** A real 64x32 PNG (the size GOOD declares): images are checked up front. */
const PNG_64x32 = encodePngRgb({
  width: 64,
  height: 32,
  rgb: new Uint8Array(64 * 32 * 3),
});

const GOOD = {
  images: ["img/a.png"],
  width: 64,
  height: 32,
  objects: [{ desc: "red circle", bbox_2d: [1, 2, 30, 20] }],
};

async function withJsonl(
  lines: string[],
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "img"));
    await Deno.writeFile(join(dir, "img/a.png"), PNG_64x32);
    const path = join(dir, "data.jsonl");
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function rec(
  patch: Record<string, unknown>,
  obj?: Record<string, unknown>,
): string {
  const r: Record<string, unknown> = { ...structuredClone(GOOD), ...patch };
  if (obj) r.objects = [{ desc: "ok square", bbox_2d: [0, 0, 1, 1] }, obj];
  for (const [k, v] of Object.entries(r)) if (v === undefined) delete r[k];
  return JSON.stringify(r);
}

Deno.test("valid pixel, coord-token and explicit-bins records load as bins", async () => {
  await withJsonl([
    rec({}),
    "",
    rec({
      objects: [{
        desc: "blue square",
        bbox_2d: [
          "<|coord_0|>",
          "<|coord_5|>",
          "<|coord_999|>",
          "<|coord_500|>",
        ],
      }],
    }),
    rec({
      coord_mode: "bins",
      objects: [{ desc: "x", bbox_2d: [10.5, 11.5, 12, 13] }],
    }),
  ], async (path) => {
    const recs = await loadJsonl(path);
    assert.equal(recs.length, 3);
    assert.deepEqual(
      recs[0].objects[0].bbox_2d,
      pixelBoxToBins([1, 2, 30, 20], 64, 32),
    );
    assert.equal(recs[0].images[0], join(path, "..", "img/a.png"));
    assert.equal(recs[0].source, `${path}:1`);
    assert.equal(recs[1].source, `${path}:3`); // blank line keeps numbering
    assert.deepEqual(recs[1].objects[0].bbox_2d, [0, 5, 999, 500]);
    assert.deepEqual(recs[2].objects[0].bbox_2d, [10, 12, 12, 13]); // half-to-even
  });
});

Deno.test("pixel boxes convert x1/y1 down and x2/y2 up; a 1-pixel box never collapses", async () => {
  await withJsonl([
    rec({ objects: [{ desc: "dot", bbox_2d: [10, 10, 10, 10] }] }),
  ], async (path) => {
    const [r] = await loadJsonl(path);
    const b = r.objects[0].bbox_2d;
    assert.ok(b[0] < b[2] && b[1] < b[3]);
    assert.equal(b[0], Math.floor((999 * 10) / 63));
    assert.equal(b[1], Math.floor((999 * 10) / 31));
  });
});

/** [name, bad line, expected message fragment] — every kind must be its own error. */
const BAD: [string, string, RegExp][] = [
  ["bad JSON", `{"images": ["img/a.png"], "width": 64,`, /bad JSON line/],
  ["not an object", `[1, 2]`, /record must be a JSON object/],
  ["missing width", rec({ width: undefined }), /missing "width"/],
  [
    "bad height",
    rec({ height: 0 }),
    /"height" must be a positive integer, got 0/,
  ],
  [
    "fractional width",
    rec({ width: 64.5 }),
    /"width" must be a positive integer, got 64.5/,
  ],
  ["missing images", rec({ images: undefined }), /missing "images"/],
  ["empty images", rec({ images: [] }), /"images" must be a non-empty list/],
  [
    "two images",
    rec({ images: ["img/a.png", "img/a.png"] }),
    /exactly one image/,
  ],
  [
    "image not found",
    rec({ images: ["img/nope.png"] }),
    /image not found: .*img\/nope\.png/,
  ],
  ["missing objects", rec({ objects: undefined }), /missing "objects"/],
  [
    "bad coord_mode",
    rec({ coord_mode: "norm" }),
    /"coord_mode" must be "pixel" or "bins"/,
  ],
  [
    "poly geometry",
    rec({}, { desc: "p", poly: [0, 0, 5, 0, 5, 5] }),
    /objects\[1\]: "poly" geometry is not supported .*filter polygons/,
  ],
  [
    "two geometries",
    rec({}, { desc: "p", bbox_2d: [0, 0, 1, 1], poly: [0, 0, 1, 1] }),
    /objects\[1\]: has 2 geometries \(bbox_2d, poly\)/,
  ],
  ["no geometry", rec({}, { desc: "p" }), /objects\[1\]: missing "bbox_2d"/],
  [
    "unknown key",
    rec({}, { desc: "p", bbox_2d: [0, 0, 1, 1], score: 1 }),
    /objects\[1\]: unknown key "score"/,
  ],
  [
    // a typo that would otherwise read these bins as pixels
    "unknown record key",
    rec({ coordmode: "bins" }),
    /:3: unknown key "coordmode" \(did you mean coord_mode\?\); allowed keys: images, width, height, objects, coord_mode$/,
  ],
  [
    "empty desc",
    rec({}, { desc: "  ", bbox_2d: [0, 0, 1, 1] }),
    /objects\[1\]: "desc" is empty/,
  ],
  [
    "missing desc",
    rec({}, { bbox_2d: [0, 0, 1, 1] }),
    /objects\[1\]: missing "desc"/,
  ],
  [
    "three values",
    rec({}, { desc: "p", bbox_2d: [0, 0, 1] }),
    /objects\[1\]: bbox_2d must be a list of 4 values/,
  ],
  [
    "pixel out of range",
    rec({}, { desc: "p", bbox_2d: [0, 0, 64, 5] }),
    /objects\[1\]: bbox out of range: bbox_2d\[2\] = 64 is outside \[0, 63\]/,
  ],
  [
    "negative pixel",
    rec({}, { desc: "p", bbox_2d: [0, -1, 4, 5] }),
    /objects\[1\]: bbox out of range: bbox_2d\[1\] = -1/,
  ],
  [
    "bin out of range",
    rec({ coord_mode: "bins" }, { desc: "p", bbox_2d: [0, 0, 1000, 5] }),
    /objects\[1\]: bbox_2d\[2\]: .*outside \[0, 999\]/,
  ],
  [
    "bad coord token",
    rec({ coord_mode: "bins" }, {
      desc: "p",
      bbox_2d: ["<|coord_1|>", "<|coord_x|>", "<|coord_3|>", "<|coord_4|>"],
    }),
    /objects\[1\]: bbox_2d\[1\]: .*is not a number/,
  ],
  [
    "x2 < x1",
    rec({}, { desc: "p", bbox_2d: [20, 0, 10, 5] }),
    /objects\[1\]: bbox_2d x2 \(10\) < x1 \(20\)/,
  ],
  [
    "y2 < y1",
    rec({}, { desc: "p", bbox_2d: [0, 9, 10, 5] }),
    /objects\[1\]: bbox_2d y2 \(5\) < y1 \(9\)/,
  ],
  [
    "token under pixel mode",
    rec({ coord_mode: "pixel" }, {
      desc: "p",
      bbox_2d: ["<|coord_1|>", 0, 3, 4],
    }),
    /coord token .* "coord_mode": "pixel"/,
  ],
  [
    "mixed units",
    rec({}, {
      desc: "p",
      bbox_2d: ["<|coord_1|>", "<|coord_2|>", "<|coord_3|>", "<|coord_4|>"],
    }),
    /objects\[0\]: bbox_2d mixes plain numbers with <\|coord_k\|> tokens/,
  ],
  [
    "numeric string",
    rec({}, { desc: "p", bbox_2d: ["1", 0, 3, 4] }),
    /objects\[1\]: bbox_2d\[0\] must be a number, got "1"/,
  ],
];

Deno.test("each malformed record kind gets its own error naming file:line and object", async () => {
  const messages = new Set<string>();
  for (const [name, line, want] of BAD) {
    // the bad record sits on line 3, after a good record and a blank line
    await withJsonl([rec({}), "", line], async (path) => {
      const err = await loadJsonl(path).then(() => undefined, (e) => e);
      assert.ok(
        err instanceof DataError,
        `${name}: expected a DataError, got ${err}`,
      );
      assert.ok(
        err.message.startsWith(`${path}:3: `),
        `${name}: ${err.message}`,
      );
      assert.match(err.message, want, name);
      assert.ok(!err.message.includes("\n"), `${name}: one line`);
      messages.add(err.message.slice(path.length));
    });
  }
  assert.equal(messages.size, BAD.length);
});

Deno.test("missing JSONL file is a DataError naming the path", async () => {
  await assert.rejects(
    () => loadJsonl("/nonexistent/x.jsonl"),
    (e: Error) =>
      e instanceof DataError &&
      /\/nonexistent\/x\.jsonl: cannot read JSONL/.test(e.message),
  );
});

Deno.test("a UTF-8 byte-order mark at the start of a JSONL file is accepted", async () => {
  await withJsonl([rec({}), rec({})], async (path) => {
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, "\uFEFF" + text);
    const recs = await loadJsonl(path);
    assert.equal(recs.length, 2);
    assert.equal(recs[0].source, `${path}:1`);
  });
});

Deno.test("every image is checked up front: a bad image at record 6 is reported by file:line and path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "img"));
    await Deno.writeFile(join(dir, "img/a.png"), PNG_64x32);
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46]);
    const cases: [string, Uint8Array, RegExp][] = [
      ["jpeg.png", jpeg, /is a JPEG file, not a PNG/],
      ["cut.png", PNG_64x32.slice(0, -20), /PNG .*cut\.png is truncated/],
      [
        "big.png",
        encodePngRgb({
          width: 32,
          height: 64,
          rgb: new Uint8Array(32 * 64 * 3),
        }),
        /image .*big\.png is 32x64 but the record says width=64, height=32/,
      ],
    ];
    for (const [name, bytes, want] of cases) {
      await Deno.writeFile(join(dir, "img", name), bytes);
      const lines = Array.from(
        { length: 8 },
        (_, i) => i === 5 ? rec({ images: [`img/${name}`] }) : rec({}),
      );
      const path = join(dir, "data.jsonl");
      await Deno.writeTextFile(path, lines.join("\n") + "\n");
      const err = await loadJsonl(path).then(() => null, (e) => e);
      assert.ok(err instanceof DataError, `${name}: ${err}`);
      assert.ok(err.message.startsWith(`${path}:6: `), err.message);
      assert.match(err.message, want);
      assert.ok(!err.message.includes("\n"));
      // the tokenizer builder does not need the images
      assert.equal((await loadJsonl(path, { checkImages: false })).length, 8);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
