/**
 * `stage2 data`: synthetic dataset generation and tiny-tokenizer building.
 */
import type { Command } from "commander";
import { UsageError, userPath } from "./common.ts";

function intArg(name: string, min: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new UsageError(
        `${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`,
      );
    }
    return n;
  };
}

export function register(program: Command): void {
  const data = program.command("data").description(
    "Build datasets and tokenizers for the built-in tiny model",
  );

  data.command("synth")
    .description(
      "Write a seeded synthetic dataset: PNGs + train.jsonl / val.jsonl",
    )
    .requiredOption("--out <dir>", "output folder")
    .option("--n-train <n>", "training images", intArg("--n-train", 0), 256)
    .option("--n-val <n>", "validation images", intArg("--n-val", 0), 32)
    .option("--seed <s>", "random seed", intArg("--seed", 0), 17)
    .option(
      "--size <px>",
      "image side in pixels (multiple of 32)",
      intArg("--size", 32),
      64,
    )
    .option(
      "--max-objects <n>",
      "objects per image are 1..n",
      intArg("--max-objects", 1),
      6,
    )
    .option("--no-noise", "never add background noise")
    .option(
      "--overwrite",
      "replace a dataset data synth wrote in --out before (other files stay)",
    )
    .action(async (o: {
      out: string;
      nTrain: number;
      nVal: number;
      seed: number;
      size: number;
      maxObjects: number;
      noise: boolean;
      overwrite?: boolean;
    }) => {
      if (o.size % 32 !== 0) {
        throw new UsageError(
          `--size must be a multiple of 32 (so Qwen3-VL preprocessing keeps the image size), got ${o.size}`,
        );
      }
      const { writeSynthDataset } = await import("../trainer/data/synth.ts");
      const { prepareSynthOut } = await import("../trainer/data/synth_dir.ts");
      const out = userPath(o.out);
      const kept = await prepareSynthOut(out, {
        overwrite: o.overwrite ?? false,
      });
      if (kept.length > 0) {
        console.error(
          `note: kept ${kept.length} file(s) in ${out} that data synth did not write (${
            kept.slice(0, 3).join(", ")
          }${kept.length > 3 ? ", ..." : ""})`,
        );
      }
      const w = await writeSynthDataset(out, {
        nTrain: o.nTrain,
        nVal: o.nVal,
        seed: o.seed,
        imageSize: o.size,
        maxObjects: o.maxObjects,
        noise: o.noise,
      });
      console.log(
        `wrote ${w.nTrain} train + ${w.nVal} val images (${o.size}x${o.size}, seed ${o.seed}) to ${out}`,
      );
    });

  data.command("tokenizer")
    .description(
      "Build a small byte-level BPE tokenizer.json from JSONL records (chat prompt + answers)",
    )
    .requiredOption(
      "--jsonl <files...>",
      "JSONL record files (the training corpus)",
    )
    .requiredOption("--out <file>", "tokenizer.json to write")
    .option(
      "--vocab-size <n>",
      "BPE vocabulary size before added tokens",
      intArg("--vocab-size", 256),
      512,
    )
    .action(async (o: { jsonl: string[]; out: string; vocabSize: number }) => {
      const { loadJsonl } = await import("../trainer/data/jsonl.ts");
      const { renderChatText } = await import("../trainer/tokenizer/chat.ts");
      const { buildTinyTokenizer } = await import(
        "../trainer/tokenizer/build.ts"
      );
      const { writeFileAtomic } = await import("../trainer/data/atomic.ts");
      const out = userPath(o.out);
      if ((await Deno.stat(out).catch(() => null))?.isDirectory) {
        throw new UsageError(
          `--out ${o.out} is a folder; name the file to write, e.g. ${
            o.out.replace(/\/$/, "")
          }/tokenizer.json`,
        );
      }
      const texts: string[] = [];
      for (const f of o.jsonl) {
        const recs = await loadJsonl(userPath(f), { checkImages: false });
        // the same corpus the trainer builds its tokenizer from
        // (the image-pad count is irrelevant: added tokens skip BPE)
        for (const r of recs) texts.push(renderChatText(r.objects, 1));
      }
      if (texts.length === 0) {
        throw new UsageError(`no records in ${o.jsonl.join(", ")}`);
      }
      const tok = buildTinyTokenizer(texts, { vocabSize: o.vocabSize });
      await writeFileAtomic(out, JSON.stringify(tok, null, 2) + "\n");
      console.log(`wrote ${out} (trained on ${texts.length} records)`);
    });
}
