/**
 * `stage2 infer --checkpoint DIR --image FILE [--max-new-tokens N] [--json]
 * [--dump FILE.safetensors]`: detections of one image from a checkpoint.
 */
import type { Command } from "commander";
import { UsageError, userPath } from "./common.ts";

interface InferFlags {
  checkpoint: string;
  image: string;
  maxNewTokens: number;
  json?: boolean;
  dump?: string;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(
      `--max-new-tokens must be an integer >= 1, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function runInfer(f: InferFlags): Promise<void> {
  const checkpoint = userPath(f.checkpoint);
  const image = userPath(f.image);
  for (const file of ["config.json", "tokenizer.json"]) {
    if (!(await exists(`${checkpoint}/${file}`))) {
      throw new UsageError(
        `--checkpoint ${f.checkpoint}: no ${file} there; pass a checkpoint-<step> folder of a run`,
      );
    }
  }
  if (!(await exists(image))) {
    throw new UsageError(`--image ${f.image}: no such file`);
  }
  if (f.dump !== undefined && !f.dump.endsWith(".safetensors")) {
    throw new UsageError(
      `--dump must name a .safetensors file, got ${JSON.stringify(f.dump)}`,
    );
  }
  const { initRuntime } = await import("../trainer/runtime.ts");
  await initRuntime({ log: () => {} });
  const { inferImage } = await import("../trainer/loop/infer.ts");
  const r = await inferImage({
    checkpoint,
    image,
    maxNewTokens: f.maxNewTokens,
    dump: f.dump === undefined ? undefined : userPath(f.dump),
  });
  if (f.json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  console.log(`answer: ${r.answer}`);
  console.log(
    `${
      r.parsed ? "parsed" : "NOT a complete JSON answer"
    }: ${r.detections.length} detection(s) in ${r.width}x${r.height}`,
  );
  for (const d of r.detections) {
    console.log(
      `  ${d.desc}: [${
        d.bbox_px.map((v) => v.toFixed(1)).join(", ")
      }] px (bins ${d.bbox_2d.join(", ")})`,
    );
  }
  const dropped = r.drops.poly + r.drops.unknown + r.drops.bbox_invalid;
  if (dropped > 0) {
    console.log(
      `  dropped: ${r.drops.poly} poly, ${r.drops.unknown} unknown, ${r.drops.bbox_invalid} invalid bbox`,
    );
  }
  if (r.dump) console.log(`dump: ${r.dump}`);
}

export function register(program: Command): void {
  program.command("infer")
    .description("Detect objects in one image with a trained checkpoint")
    .requiredOption(
      "--checkpoint <dir>",
      "checkpoint folder (checkpoint-<step>)",
    )
    .requiredOption("--image <file>", "PNG image")
    .option(
      "--max-new-tokens <n>",
      "generation limit",
      positiveInt,
      256,
    )
    .option("--json", "machine-readable output")
    .option(
      "--dump <file.safetensors>",
      "write input_ids, pixel_values, image_grid_thw, position_ids and logits of the final full forward",
    )
    .action(runInfer);
}
