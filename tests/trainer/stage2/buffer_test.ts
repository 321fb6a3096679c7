import assert from "node:assert/strict";
import {
  BUFFER_FILES_KEPT,
  bufferDir,
  bufferFile,
  loadBuffer,
  saveBuffer,
} from "../../../trainer/stage2/buffer.ts";
import { rawSample, SAMPLE_OBJECTS } from "../rollout/helpers.ts";

Deno.test("buffer files round-trip samples bit-exactly and keep the newest windows", async () => {
  const run = await Deno.makeTempDir({ prefix: "stage2-buf-" });
  try {
    const s = rawSample(SAMPLE_OBJECTS, 3);
    s.pixelValues[0] = -0; // bit patterns survive, not just values
    s.pixelValues[1] = 1 / 3;
    const micro = new Map([[1, { samples: [s], responses: [[5, 6, 7]] }]]);
    for (let step = 0; step < BUFFER_FILES_KEPT + 2; step++) {
      await saveBuffer(run, step, micro);
    }
    const names = [...Deno.readDirSync(bufferDir(run))].map((e) => e.name)
      .sort();
    assert.deepEqual(names, [
      "step-2.json",
      "step-3.json",
      "step-4.json",
      "step-5.json",
    ]);
    const back = await loadBuffer(run, 5);
    const got = back.get(1)!;
    assert.deepEqual(got.responses, [[5, 6, 7]]);
    const b = got.samples[0];
    assert.deepEqual(
      new Uint32Array(b.pixelValues.buffer),
      new Uint32Array(s.pixelValues.buffer.slice(0)),
    );
    assert.deepEqual(b.inputIds, s.inputIds);
    assert.deepEqual(b.roles, s.roles);
    assert.deepEqual(b.coordSlots, s.coordSlots);
    assert.deepEqual(b.record, s.record);
    assert.deepEqual(b.imageGridThw, s.imageGridThw);
    // Missing or mismatched files are clear errors.
    await assert.rejects(
      () => loadBuffer(run, 0),
      /cannot resume inside a rollout-buffer window/,
    );
    await Deno.copyFile(bufferFile(run, 5), bufferFile(run, 9));
    await assert.rejects(
      () => loadBuffer(run, 9),
      /holds the buffer of step 5, expected 9/,
    );
  } finally {
    await Deno.remove(run, { recursive: true });
  }
});
