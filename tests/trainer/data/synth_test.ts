import assert from "node:assert/strict";
import { join } from "node:path";
import { pixelBoxToBins } from "../../../trainer/coord/pixels.ts";
import { loadRecordImage } from "../../../trainer/data/image.ts";
import { loadJsonl } from "../../../trainer/data/jsonl.ts";
import {
  COLORS,
  mulberry32,
  synthInMemory,
  synthSplit,
  writeSynthDataset,
} from "../../../trainer/data/synth.ts";

Deno.test("mulberry32 is the reference algorithm (pinned first outputs)", () => {
  const r = mulberry32(1);
  const first = [r(), r(), r()].map((v) => Math.round(v * 4294967296));
  // mulberry32(1) as uint32, from an independent Python port of the reference
  assert.deepEqual(first, [2693262067, 11749833, 2265367787]);
  const a = mulberry32(42), b = mulberry32(42), c = mulberry32(43);
  const sa = Array.from({ length: 5 }, a), sb = Array.from({ length: 5 }, b);
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, Array.from({ length: 5 }, c));
});

Deno.test("synthetic data is deterministic for a seed and differs across seeds and splits", () => {
  const a = synthSplit(8, 5, "train");
  const b = synthSplit(8, 5, "train");
  assert.deepEqual(a, b);
  const bytes = (s: typeof a) =>
    s.map((x) => Array.from(x.image.rgb).join(",")).join("|");
  assert.notEqual(bytes(synthSplit(8, 6, "train")), bytes(a));
  assert.notEqual(bytes(synthSplit(8, 5, "val")), bytes(a));
});

Deno.test("synthetic boxes tightly bound each shape and objects are 1..6 with overlaps", () => {
  const samples = synthSplit(120, 11, "train", { maxObjects: 6 });
  const counts = new Set<number>();
  let overlapping = 0;
  for (const s of samples) {
    const S = s.image.width;
    counts.add(s.objects.length);
    assert.ok(s.objects.length >= 1 && s.objects.length <= 6);
    // the last-drawn object is never occluded: its colour must touch all four box edges
    // and appear nowhere outside the box that the shape could reach
    const top = s.objects[s.objects.length - 1];
    const col = COLORS[top.color];
    const is = (x: number, y: number) =>
      [0, 1, 2].every((c) => s.image.rgb[(y * S + x) * 3 + c] === col[c]);
    const [x1, y1, x2, y2] = top.bbox;
    const colHas = (x: number) =>
      Array.from({ length: y2 - y1 + 1 }, (_, i) => y1 + i).some((y) =>
        is(x, y)
      );
    const rowHas = (y: number) =>
      Array.from({ length: x2 - x1 + 1 }, (_, i) => x1 + i).some((x) =>
        is(x, y)
      );
    assert.ok(
      colHas(x1) && colHas(x2) && rowHas(y1) && rowHas(y2),
      `tight box ${top.bbox}`,
    );
    for (let k = 0; k < s.objects.length; k++) {
      for (let j = k + 1; j < s.objects.length; j++) {
        const a = s.objects[k].bbox, b = s.objects[j].bbox;
        if (
          Math.min(a[2], b[2]) >= Math.max(a[0], b[0]) &&
          Math.min(a[3], b[3]) >= Math.max(a[1], b[1])
        ) {
          overlapping++;
        }
      }
      assert.match(
        s.objects[k].desc,
        /^[a-z]+ (circle|square|triangle|diamond|ring|cross)$/,
      );
    }
  }
  assert.deepEqual([...counts].sort(), [1, 2, 3, 4, 5, 6]);
  assert.ok(overlapping > 0, "some objects overlap");
});

Deno.test("written synth dataset round-trips through the JSONL loader and PNG decoder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const w = await writeSynthDataset(dir, { nTrain: 6, nVal: 3, seed: 9 });
    const train = await loadJsonl(w.trainJsonl);
    const val = await loadJsonl(w.valJsonl);
    assert.equal(train.length, 6);
    assert.equal(val.length, 3);
    const mem = synthInMemory(6, 9, "train");
    for (let i = 0; i < train.length; i++) {
      assert.equal(
        train[i].images[0],
        join(dir, `images/train_${String(i).padStart(5, "0")}.png`),
      );
      assert.deepEqual(train[i].objects, mem[i].record.objects);
      assert.deepEqual(
        train[i].objects.map((o) => o.bbox_2d),
        mem[i].pixelBoxes.map((b) => pixelBoxToBins(b, 64, 64)),
      );
      const img = await loadRecordImage(train[i]);
      assert.deepEqual(img.rgb, mem[i].image.rgb);
    }
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "synth.json")));
    assert.deepEqual(meta, {
      seed: 9,
      n_train: 6,
      n_val: 3,
      imageSize: 64,
      maxObjects: 6,
      noise: true,
      fresh: false,
    });
    // a second write with the same seed produces identical files
    const dir2 = await Deno.makeTempDir();
    try {
      await writeSynthDataset(dir2, { nTrain: 6, nVal: 3, seed: 9 });
      for (const f of ["train.jsonl", "val.jsonl", "images/val_00002.png"]) {
        assert.deepEqual(
          await Deno.readFile(join(dir2, f)),
          await Deno.readFile(join(dir, f)),
          f,
        );
      }
    } finally {
      await Deno.remove(dir2, { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an image whose size disagrees with the record is an error naming the record", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const w = await writeSynthDataset(dir, {
      nTrain: 1,
      nVal: 0,
      seed: 1,
      imageSize: 32,
    });
    const [r] = await loadJsonl(w.trainJsonl);
    await assert.rejects(
      () => loadRecordImage({ ...r, width: 64 }),
      /train\.jsonl:1: image .* is 32x32 but the record says width=64, height=32/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
