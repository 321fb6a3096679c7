import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  decodeSafetensors,
  Qwen3VLForConditionalGeneration,
} from "../../../trainer/model/mod.ts";

// A tiny checkpoint written by saveCheckpoint, its inputs (text + one 8x6-patch
// image, a non-square grid resampling a 4x4 learned position grid), and the
// logits Hugging Face transformers 5.17 (Qwen3VLForConditionalGeneration,
// eager attention, float32) computed from them with hf_golden.py.
const DIR = fileURLToPath(
  new URL("../../fixtures/model/hf_tiny", import.meta.url),
);

Deno.test("logits match Hugging Face transformers' Qwen3-VL on the same checkpoint and inputs", async () => {
  await initRuntime({ log: () => {} });
  const m = await Qwen3VLForConditionalGeneration.load(DIR);
  const read = async (f: string) =>
    decodeSafetensors(await Deno.readFile(`${DIR}/${f}`), f).tensors;
  const inp = await read("inputs.safetensors");
  const hf = (await read("hf_logits.safetensors")).get("logits")!;
  const ids = inp.get("input_ids")!;
  const grid = Array.from(inp.get("image_grid_thw")!.data);
  const out = m.forward({
    inputIds: tf.tensor2d(ids.data as Int32Array, [1, ids.shape[1]], "int32"),
    pixelValues: tf.tensor2d(
      inp.get("pixel_values")!.data as Float32Array,
      inp.get("pixel_values")!.shape as [number, number],
    ),
    imageGridThw: [grid],
  });
  assert.deepEqual(out.logits.shape, hf.shape);
  const got = out.logits.dataSync();
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - hf.data[i]));
  }
  assert.ok(worst < 1e-4, `max |ours - HF| = ${worst}`);
  m.dispose();
});
