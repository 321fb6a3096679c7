/**
 * `deno task bench --big`: a Qwen3-VL-2B-shaped model (random weights) is
 * loaded from a Hugging Face-layout sharded bf16 checkpoint and greedily
 * generates tokens for a prompt with one 64x64 image; prints the load time,
 * generation tokens/s and the peak resident memory. This is the path a
 * real released checkpoint takes (past the wasm heap's 4 GiB).
 *
 * The checkpoint (4.3 GB) is written once by the project's own writer into
 * `--big-dir DIR` (default `runs/bench-2b/`, git-ignored) and reused.
 * `--big-tokens N` sets the number of new tokens (default 16). Never part
 * of the test suite.
 */
import { join } from "node:path";
import { tf } from "../trainer/runtime.ts";
import { type Qwen3VLConfig, tinyConfig } from "../trainer/model/config.ts";
import { writeRandomCheckpoint } from "../trainer/model/checkpoint.ts";
import { Qwen3VLForConditionalGeneration } from "../trainer/model/qwen3vl.ts";
import { paramSpecs } from "../trainer/model/params.ts";
import { peakRssBytes, resetPeakRss } from "./rss.ts";

/**
 * Qwen3-VL-2B's shapes (text hidden 2048, 28 layers, 16/8 heads of 128,
 * vocabulary 151,936, tied head; vision depth 24, hidden 1024, patch 16,
 * deepstack after blocks 5, 11, 17) and its special token ids.
 */
export function qwen3vl2bConfig(): Qwen3VLConfig {
  const base = tinyConfig(151936, {
    imageTokenId: 151655,
    videoTokenId: 151656,
    visionStartTokenId: 151652,
    visionEndTokenId: 151653,
    imEndTokenId: 151645,
    bosTokenId: 151643,
  });
  return {
    ...base,
    text_config: {
      ...base.text_config,
      hidden_size: 2048,
      intermediate_size: 6144,
      num_hidden_layers: 28,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 128,
      max_position_embeddings: 262144,
      rope_scaling: {
        rope_type: "default",
        mrope_section: [24, 20, 20],
        mrope_interleaved: true,
      },
    },
    vision_config: {
      ...base.vision_config,
      depth: 24,
      hidden_size: 1024,
      intermediate_size: 4096,
      num_heads: 16,
      patch_size: 16,
      out_hidden_size: 2048,
      num_position_embeddings: 2304,
      deepstack_visual_indexes: [5, 11, 17],
    },
  };
}

export interface BigBench {
  params: number;
  dir: string;
  writeSeconds: number | null;
  loadSeconds: number;
  newTokens: number;
  generateSeconds: number;
  tokensPerSecond: number;
  peakRssGiB: number | null;
}

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
}

export async function runBigBench(
  args: string[],
  say: (s: string) => void,
  jsonOnly: boolean,
): Promise<BigBench> {
  if (tf.getBackend() === "wasm") {
    throw new Error(
      "bench --big needs the blas backend (the wasm heap stops at 4 GiB); install libopenblas0-pthread or set STAGE2_BLAS",
    );
  }
  const dir = flag(args, "--big-dir", "runs/bench-2b");
  const newTokens = Number(flag(args, "--big-tokens", "16"));
  const cfg = qwen3vl2bConfig();
  const params = paramSpecs(cfg).reduce(
    (n, s) => n + s.hfShape.reduce((a, b) => a * b, 1),
    0,
  );
  let writeSeconds: number | null = null;
  try {
    await Deno.stat(join(dir, "config.json"));
  } catch {
    say(
      `writing a random ${
        (params / 1e9).toFixed(2)
      }B-parameter bf16 checkpoint to ${dir} (once) ...`,
    );
    const t0 = performance.now();
    await writeRandomCheckpoint(cfg, dir, 1, {
      dtype: "BF16",
      maxShardBytes: 2e9,
    });
    writeSeconds = (performance.now() - t0) / 1000;
  }

  say(`loading ${dir} ...`);
  resetPeakRss();
  const t0 = performance.now();
  const model = await Qwen3VLForConditionalGeneration.load(dir);
  const loadSeconds = (performance.now() - t0) / 1000;

  // one 64x64 image: 4x4 patches of 16 (temporal 2) -> 2x2 merged tokens
  const vc = cfg.vision_config;
  const grid = [1, 64 / vc.patch_size, 64 / vc.patch_size];
  const nPatch = grid[1] * grid[2];
  const merged = nPatch / vc.spatial_merge_size ** 2;
  const inDim = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2;
  const prompt = Int32Array.from([
    151644, // <|im_start|>
    872, // user
    198,
    cfg.vision_start_token_id,
    ...new Array(merged).fill(cfg.image_token_id),
    cfg.vision_end_token_id,
    74785,
    279,
    6171,
    13,
    151645,
    198,
    151644,
    77091,
    198,
  ]);
  const pixelValues = tf.randomUniform(
    [nPatch, inDim],
    -1,
    1,
    "float32",
    7,
  ) as tf.Tensor2D;
  say(`generating ${newTokens} tokens (greedy, KV cache) ...`);
  const t1 = performance.now();
  const out = await model.generate({
    prompts: [prompt],
    pixelValues,
    imageGridThw: [grid],
    maxNewTokens: newTokens,
    mode: "greedy",
    stopTokenIds: [cfg.text_config.vocab_size + 1], // never: time every token
  });
  const generateSeconds = (performance.now() - t1) / 1000;
  const produced = out.tokens[0].length;
  const rss = peakRssBytes();
  const result: BigBench = {
    params,
    dir,
    writeSeconds,
    loadSeconds,
    newTokens: produced,
    generateSeconds,
    tokensPerSecond: produced / generateSeconds,
    peakRssGiB: rss === null ? null : rss / 2 ** 30,
  };
  pixelValues.dispose();
  model.dispose();
  if (jsonOnly) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(
      [
        `2B-shaped Qwen3-VL (${
          (params / 1e9).toFixed(2)
        }B parameters, bf16 shards in ${dir})`,
        ...(writeSeconds === null
          ? []
          : [`checkpoint written in   ${writeSeconds.toFixed(1)} s`]),
        `load                    ${loadSeconds.toFixed(1)} s`,
        `generate ${produced} tokens      ${generateSeconds.toFixed(1)} s (${
          result.tokensPerSecond.toFixed(2)
        } tokens/s, prefill included)`,
        `peak RSS                ${
          result.peakRssGiB === null
            ? "n/a"
            : `${result.peakRssGiB.toFixed(2)} GiB`
        } (load + generation)`,
      ].join("\n"),
    );
    console.log(JSON.stringify(result));
  }
  return result;
}
