import assert from "node:assert/strict";
import { tf } from "../../../trainer/runtime.ts";
import { visionForward } from "../../../trainer/model/vision.ts";
import { maxAbsDiff, tinyModel } from "./helpers.ts";

Deno.test("vision tower: images batched together (several attention groups) equal images run alone", async () => {
  const m = await tinyModel(4);
  const grids = [[1, 8, 8], [1, 4, 8], [1, 8, 8], [1, 8, 4], [1, 8, 8], [
    1,
    8,
    8,
  ]];
  const imgs = grids.map(([t, h, w], i) =>
    tf.randomUniform([t * h * w, 384], -1, 1, "float32", 100 + i) as tf.Tensor2D
  );
  const p = (n: string) => m.param(n);
  const all = visionForward(m.config, p, tf.concat(imgs) as tf.Tensor2D, grids);
  const n = grids.reduce((s, [t, h, w]) => s + (t * h * w) / 4, 0);
  assert.deepEqual(all.embeds.shape, [n, 128]);
  assert.equal(all.deepstack.length, 1);
  let off = 0;
  for (const [i, g] of grids.entries()) {
    const one = visionForward(m.config, p, imgs[i], [g]);
    const rows = (g[0] * g[1] * g[2]) / 4;
    const got = all.embeds.slice([off, 0], [rows, 128]).dataSync();
    assert.ok(maxAbsDiff(got, one.embeds.dataSync()) < 1e-5, `image ${i}`);
    assert.ok(
      maxAbsDiff(
        all.deepstack[0].slice([off, 0], [rows, 128]).dataSync(),
        one.deepstack[0].dataSync(),
      ) < 1e-5,
    );
    off += rows;
  }
  assert.throws(
    () => visionForward(m.config, p, imgs[0], [[1, 8, 4]]),
    /pixelValues is \[64,384\].*needs \[32, 384\]/,
  );
  assert.throws(
    () => visionForward(m.config, p, imgs[0], [[1, 7, 8]]),
    /multiples of spatial_merge_size 2/,
  );
});
