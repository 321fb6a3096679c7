/**
 * Model benchmarks (called by `bench/main.ts`; also runnable alone:
 * `deno run -A bench/model_bench.ts`): matmul peak, training forward+backward
 * throughput on packed rows against that peak, and KV-cached vs recomputed
 * generation. FLOPs are counted analytically from the config (useful work
 * only: causal attention counts the keys each query may see).
 */
import process from "node:process";
import { initRuntime, tf } from "../trainer/runtime.ts";
import { type Qwen3VLConfig, tinyConfig } from "../trainer/model/config.ts";
import { Qwen3VLForConditionalGeneration } from "../trainer/model/qwen3vl.ts";
import { packedPositionIds } from "../trainer/model/rope.ts";
import { weightedNll } from "../trainer/model/ops.ts";

/** Default benchmark vocabulary: ~1000 coord tokens + text pieces + specials. */
export const BENCH_VOCAB = 1280;
const IDS = {
  imageTokenId: 5,
  visionStartTokenId: 3,
  visionEndTokenId: 4,
  imEndTokenId: 2,
};

export function benchConfig(): Qwen3VLConfig {
  return tinyConfig(BENCH_VOCAB, IDS);
}

function seconds<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

/**
 * CPU seconds this process spent in `f` (user + system). On a machine shared
 * with other jobs, wall time also counts the time other processes held the
 * cores; CPU time does not, so it is reported next to it.
 */
function cpuSeconds(f: () => void): number {
  const c0 = process.cpuUsage();
  f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/** Best GFLOP/s of a square float32 matmul (1024^3) over a few repeats (wall time). */
export async function benchMatmulPeak(n = 1024, repeats = 5): Promise<number> {
  return (await benchMatmulPeakDetail(n, repeats)).wall;
}

/** Square matmul peak by wall time and by CPU time (GFLOP/s). */
export async function benchMatmulPeakDetail(
  n = 1024,
  repeats = 5,
): Promise<{ wall: number; cpu: number }> {
  return await benchMatmul(n, n, n, repeats);
}

/**
 * Best GFLOP/s of an [m, k] @ [k, n] float32 matmul on the active backend,
 * by wall time and by CPU time, over `repeats` runs after a warm-up.
 */
export async function benchMatmul(
  m: number,
  k: number,
  n: number,
  repeats = 5,
): Promise<{ wall: number; cpu: number }> {
  await initRuntime({ log: () => {} });
  const a = tf.randomNormal([m, k]), b = tf.randomNormal([k, n]);
  tf.matMul(a, b).dispose();
  let best = Infinity, bestCpu = Infinity;
  for (let i = 0; i < repeats; i++) {
    let wall = 0;
    const cpu = cpuSeconds(() => {
      const [c, s] = seconds(() => {
        const c = tf.matMul(a, b);
        c.dataSync();
        return c;
      });
      c.dispose();
      wall = s;
    });
    best = Math.min(best, wall);
    bestCpu = Math.min(bestCpu, cpu);
  }
  tf.dispose([a, b]);
  const flops = 2 * m * n * k;
  return { wall: flops / best / 1e9, cpu: flops / bestCpu / 1e9 };
}

/** Per-sample layout of the synthetic packed workload. */
export interface PackedWorkload {
  rows: number;
  /** Samples per row. */
  samplesPerRow: number;
  /** Tokens per sample (16 image tokens for a 64x64 image inside). */
  sampleLen: number;
}

export const DEFAULT_WORKLOAD: PackedWorkload = {
  rows: 8,
  samplesPerRow: 4,
  sampleLen: 128,
};

/** Analytic training FLOPs (forward x 3) of one step over the workload. */
export function trainFlops(
  cfg: Qwen3VLConfig,
  w: PackedWorkload,
  gridHw = 8,
): number {
  const tc = cfg.text_config, vc = cfg.vision_config;
  const H = tc.hidden_size,
    hd = tc.head_dim,
    nH = tc.num_attention_heads,
    nKV = tc.num_key_value_heads;
  const tokens = w.rows * w.samplesPerRow * w.sampleLen;
  const perToken = 2 *
    (H * (nH + 2 * nKV) * hd + nH * hd * H + 3 * H * tc.intermediate_size);
  // each query attends to i+1 keys of its own sample: sum over i = L(L+1)/2
  const attnPairs = w.rows * w.samplesPerRow *
    (w.sampleLen * (w.sampleLen + 1)) / 2;
  const text =
    tc.num_hidden_layers * (tokens * perToken + attnPairs * 4 * nH * hd) +
    tokens * 2 * H * tc.vocab_size;
  const images = w.rows * w.samplesPerRow;
  const P = gridHw * gridHw,
    dv = vc.hidden_size,
    m2 = vc.spatial_merge_size ** 2;
  const inDim = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2;
  const perPatch = 2 * (4 * dv * dv + 2 * dv * vc.intermediate_size);
  const vision = images * P * 2 * inDim * dv +
    vc.depth * images * (P * perPatch + 4 * P * P * dv) +
    (1 + vc.deepstack_visual_indexes.length) * images * (P / m2) * 2 *
      (m2 * dv * m2 * dv + m2 * dv * vc.out_hidden_size);
  return 3 * (text + vision);
}

/** Build the packed batch: rows of samples, one 8x8-patch image per sample. */
export function packedBatch(cfg: Qwen3VLConfig, w: PackedWorkload, seed = 1) {
  const V = cfg.text_config.vocab_size;
  const T = w.samplesPerRow * w.sampleLen;
  const ids = new Int32Array(w.rows * T);
  const pos = new Int32Array(4 * w.rows * T);
  let s = seed;
  const tok = () => 10 + ((s = (s * 1103515245 + 12345) >>> 0) % (V - 10));
  for (let r = 0; r < w.rows; r++) {
    const segs = [];
    for (let k = 0; k < w.samplesPerRow; k++) {
      const seg = new Int32Array(w.sampleLen).map(() => tok());
      seg[2] = cfg.vision_start_token_id;
      seg.fill(cfg.image_token_id, 3, 19);
      seg[19] = cfg.vision_end_token_id;
      segs.push({ inputIds: seg, imageGridThw: [[1, 8, 8]] });
      ids.set(seg, r * T + k * w.sampleLen);
    }
    const p = packedPositionIds(cfg, segs);
    for (let a = 0; a < 4; a++) {
      pos.set(p.subarray(a * T, (a + 1) * T), (a * w.rows + r) * T);
    }
  }
  const nImg = w.rows * w.samplesPerRow;
  const inDim = cfg.vision_config.in_channels *
    cfg.vision_config.temporal_patch_size * cfg.vision_config.patch_size ** 2;
  return {
    T,
    inputIds: tf.tensor2d(ids, [w.rows, T], "int32"),
    positionIds: tf.tensor3d(pos, [4, w.rows, T], "int32"),
    pixelValues: tf.randomUniform(
      [nImg * 64, inDim],
      -1,
      1,
      "float32",
      seed,
    ) as tf.Tensor2D,
    imageGridThw: Array.from({ length: nImg }, () => [1, 8, 8]),
    targets: ids,
  };
}

export interface TrainBenchResult {
  tokensPerStep: number;
  secondsPerStep: number;
  tokensPerSecond: number;
  gflopPerStep: number;
  gflops: number;
  /** Best CPU seconds of one step (process user+system time). */
  cpuSecondsPerStep: number;
  /** GFLOP per CPU second (comparable with `benchMatmulPeak(..).cpu` under load). */
  cpuGflops: number;
  /** Process resident set after the timed steps (the wasm heap never shrinks: ~peak). */
  rssMiB: number;
}

/**
 * A forward + backward (next-token CE) step over the packed workload on the
 * active backend, and a function that releases its tensors.
 */
export async function trainingStep(
  cfg: Qwen3VLConfig = benchConfig(),
  w: PackedWorkload = DEFAULT_WORKLOAD,
): Promise<{ step: () => void; tokens: number; dispose: () => void }> {
  await initRuntime({ log: () => {} });
  const model = Qwen3VLForConditionalGeneration.create(cfg, 1);
  const batch = packedBatch(cfg, w);
  const V = cfg.text_config.vocab_size;
  const n = w.rows * batch.T;
  const oneHot = tf.cast(
    tf.oneHot(tf.tensor1d(batch.targets, "int32"), V),
    "float32",
  ) as tf.Tensor2D; // [B*T, V]
  const step = () => {
    const { value, grads } = tf.variableGrads(() => {
      const { logits } = model.forward({
        inputIds: batch.inputIds,
        positionIds: batch.positionIds,
        pixelValues: batch.pixelValues,
        imageGridThw: batch.imageGridThw,
      });
      // mean next-token CE (targets = inputs: FLOPs identical)
      return tf.div(
        weightedNll(tf.reshape(logits, [n, V]) as tf.Tensor2D, oneHot),
        n,
      ) as tf.Scalar;
    });
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  return {
    step,
    tokens: n,
    dispose: () => {
      tf.dispose([
        oneHot,
        batch.inputIds,
        batch.positionIds,
        batch.pixelValues,
      ]);
      model.dispose();
    },
  };
}

/** Forward + backward (next-token CE) over a packed batch, timed after one warm-up step. */
export async function benchForwardBackward(
  cfg: Qwen3VLConfig = benchConfig(),
  w: PackedWorkload = DEFAULT_WORKLOAD,
  steps = 2,
): Promise<TrainBenchResult> {
  const { step, tokens: n, dispose } = await trainingStep(cfg, w);
  step();
  let best = Infinity, bestCpu = Infinity;
  for (let i = 0; i < steps; i++) {
    let wall = 0;
    bestCpu = Math.min(bestCpu, cpuSeconds(() => (wall = seconds(step)[1])));
    best = Math.min(best, wall);
  }
  const rss = Deno.memoryUsage().rss;
  const flops = trainFlops(cfg, w);
  dispose();
  return {
    tokensPerStep: n,
    secondsPerStep: best,
    tokensPerSecond: n / best,
    gflopPerStep: flops / 1e9,
    gflops: flops / best / 1e9,
    cpuSecondsPerStep: bestCpu,
    cpuGflops: flops / bestCpu / 1e9,
    rssMiB: rss / 2 ** 20,
  };
}

export interface KernelTime {
  kernel: string;
  ms: number;
  calls: number;
  share: number;
}

/**
 * Kernel time of one training step on the active backend, by kernel name
 * (best of `runs` profiled steps per kernel, after a warm-up step), largest
 * first. Kernels that run other kernels (custom-gradient ops) count their
 * inner kernels too.
 */
export async function profileStep(
  w: PackedWorkload = DEFAULT_WORKLOAD,
  runs = 2,
): Promise<{ totalMs: number; kernels: KernelTime[] }> {
  const { step, dispose } = await trainingStep(benchConfig(), w);
  step();
  const check = tf.env().getBool("CHECK_COMPUTATION_FOR_ERRORS");
  // profiling would otherwise read every kernel output back to check it
  tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
  const best = new Map<string, { ms: number; calls: number }>();
  try {
    for (let r = 0; r < runs; r++) {
      const prof = await tf.profile(step);
      const by = new Map<string, { ms: number; calls: number }>();
      for (const k of prof.kernels) {
        const e = by.get(k.name) ?? { ms: 0, calls: 0 };
        e.ms += k.kernelTimeMs as number;
        e.calls++;
        by.set(k.name, e);
      }
      for (const [k, v] of by) {
        const b = best.get(k);
        if (!b || v.ms < b.ms) best.set(k, v);
      }
    }
  } finally {
    tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", check);
    dispose();
  }
  const totalMs = [...best.values()].reduce((a, b) => a + b.ms, 0);
  const kernels = [...best.entries()]
    .map(([kernel, v]) => ({ kernel, ...v, share: v.ms / totalMs }))
    .sort((a, b) => b.ms - a.ms);
  return { totalMs, kernels };
}

export interface GenerationBenchResult {
  newTokens: number;
  cachedSeconds: number;
  recomputeSeconds: number;
  cachedTokensPerSecond: number;
  recomputeTokensPerSecond: number;
  speedup: number;
}

/**
 * `newTokens` greedy tokens after a 40-token image prompt: KV-cached
 * `generate` (prefill included) versus recomputing a full forward over the
 * whole sequence (image included) for every token; best of `repeats` runs
 * each, after a warm-up. Throws if the two disagree on any token.
 */
export async function benchGeneration(
  cfg: Qwen3VLConfig = benchConfig(),
  newTokens = 128,
  repeats = 2,
): Promise<GenerationBenchResult> {
  await initRuntime({ log: () => {} });
  const model = Qwen3VLForConditionalGeneration.create(cfg, 1);
  const prompt = new Int32Array(40).map((_, i) => 10 + ((i * 37) % 200));
  prompt[2] = cfg.vision_start_token_id;
  prompt.fill(cfg.image_token_id, 3, 19);
  prompt[19] = cfg.vision_end_token_id;
  const inDim = cfg.vision_config.in_channels *
    cfg.vision_config.temporal_patch_size * cfg.vision_config.patch_size ** 2;
  const px = tf.randomUniform([64, inDim], -1, 1, "float32", 3) as tf.Tensor2D;
  const grid = [[1, 8, 8]];
  const never = [cfg.text_config.vocab_size + 1]; // run all steps
  // warm-up: first-call kernel setup must not be charged to either side
  await model.generate({
    prompts: [prompt],
    pixelValues: px,
    imageGridThw: grid,
    maxNewTokens: 4,
    mode: "greedy",
  });
  const warmIds = tf.tensor2d(prompt, [1, prompt.length], "int32");
  model.forward({ inputIds: warmIds, pixelValues: px, imageGridThw: grid })
    .logits.dispose();
  warmIds.dispose();
  // best of `repeats` on both sides: the machine may be shared
  let cached = Infinity, recompute = Infinity;
  let res: Int32Array = new Int32Array(0);
  let seq: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    res = (await model.generate({
      prompts: [prompt],
      pixelValues: px,
      imageGridThw: grid,
      maxNewTokens: newTokens,
      mode: "greedy",
      stopTokenIds: never,
    })).tokens[0];
    cached = Math.min(cached, (performance.now() - t0) / 1000);
    seq = Array.from(prompt);
    const t1 = performance.now();
    for (let i = 0; i < newTokens; i++) {
      const ids = tf.tensor2d(Int32Array.from(seq), [1, seq.length], "int32");
      const out = model.forward({
        inputIds: ids,
        pixelValues: px,
        imageGridThw: grid,
        logitsToKeep: 1,
      });
      const row = out.logits.dataSync() as Float32Array;
      tf.dispose([ids, out.logits]);
      let best = 0;
      for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
      seq.push(best);
    }
    recompute = Math.min(recompute, (performance.now() - t1) / 1000);
  }
  const same = seq.slice(prompt.length).every((t, i) => t === res[i]);
  if (!same) {
    throw new Error(
      "benchGeneration: cached and recomputed greedy tokens differ",
    );
  }
  px.dispose();
  model.dispose();
  return {
    newTokens,
    cachedSeconds: cached,
    recomputeSeconds: recompute,
    cachedTokensPerSecond: newTokens / cached,
    recomputeTokensPerSecond: newTokens / recompute,
    speedup: recompute / cached,
  };
}

if (import.meta.main) {
  const peak = await benchMatmulPeakDetail();
  const train = await benchForwardBackward();
  const gen = await benchGeneration();
  console.log(JSON.stringify(
    {
      matmulPeakGflops: peak,
      train,
      fractionOfPeak: train.gflops / peak.wall,
      fractionOfPeakCpuTime: train.cpuGflops / peak.cpu,
      generation: gen,
    },
    null,
    2,
  ));
}
