import assert from "node:assert/strict";
import { pixelBoxToBins } from "../../../trainer/coord/pixels.ts";
import { FreshSynthData } from "../../../trainer/data/fresh.ts";
import {
  synthLayoutAt,
  synthSampleAt,
  synthSplit,
} from "../../../trainer/data/synth.ts";

const OPTS = { imageSize: 64, maxObjects: 4 };

Deno.test("fresh sample i is a pure function of (seed, i): same bytes whatever else was drawn", () => {
  const a = new FreshSynthData(7, 12, OPTS);
  const b = new FreshSynthData(7, 40, OPTS); // a longer stream shares the prefix
  for (const i of [11, 0, 5]) { // out of order: no hidden stream state
    assert.deepEqual(a.records[i].objects, b.records[i].objects);
    assert.deepEqual(a.image(i).rgb, b.image(i).rgb);
    const s = synthSampleAt(7, "train", i, OPTS);
    assert.deepEqual(a.image(i).rgb, s.image.rgb);
    assert.deepEqual(
      a.records[i].objects.map((o) => o.bbox_2d),
      s.objects.map((o) => pixelBoxToBins(o.bbox, 64, 64)),
    );
    assert.deepEqual(
      a.records[i].objects.map((o) => o.desc),
      s.objects.map((o) => o.desc),
    );
  }
  // the layout alone (what the loop needs up front) matches the full sample
  assert.deepEqual(
    synthLayoutAt(7, "train", 3, OPTS),
    synthSampleAt(7, "train", 3, OPTS).objects,
  );
  // the fixed dataset is the prefix of the same stream
  assert.deepEqual(
    synthSplit(3, 7, "train", OPTS)[2].image.rgb,
    a.image(2).rgb,
  );
});

Deno.test("fresh samples differ across indices, seeds and from the validation split", () => {
  const key = (s: { image: { rgb: Uint8Array } }) =>
    Array.from(s.image.rgb).join(",");
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    seen.add(key(synthSampleAt(3, "train", i, OPTS)));
  }
  assert.equal(seen.size, 50, "50 draws, 50 different images");
  for (let i = 0; i < 50; i++) {
    assert.ok(
      !seen.has(key(synthSampleAt(3, "val", i, OPTS))),
      `val ${i} is not a train image`,
    );
  }
  assert.notEqual(
    key(synthSampleAt(4, "train", 0, OPTS)),
    key(synthSampleAt(3, "train", 0, OPTS)),
  );
});

Deno.test("fresh data rejects a bad count and out-of-range indices with a clear message", () => {
  assert.throws(() => new FreshSynthData(1, 0), /count >= 1, got 0/);
  const d = new FreshSynthData(1, 3, OPTS);
  assert.throws(() => d.image(3), /fresh sample 3 is outside 0\.\.2/);
  assert.equal(d.records[2].source, "synth://train/1/2");
});
