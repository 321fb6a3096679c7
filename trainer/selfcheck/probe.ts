/**
 * Numerical probes on a run's latest checkpoint and its replay batch
 * (`<run>/probe_batch.json`, one packed Channel-A micro-batch as the model
 * consumed it), for `stage2 audit --run DIR --probe`. Each probe measures;
 * `audit/probe.ts` judges the measurements against its tolerances.
 *
 * (a) segment isolation: perturbing one packed segment's tokens leaves the
 *     logits of every other segment unchanged;
 * (b) KV cache: cached greedy decode steps give the uncached logits;
 * (c) embeddings path: `inputsEmbeds = embedTokens(ids)` gives the logits
 *     of the `inputIds` path;
 * (d) soft rows: the trainer's soft-context code feeds, at every coord
 *     slot of pass k, the row recomputed here (float64) from pass k-1's
 *     logits at p - 1, and leaves every other row at the base embedding.
 */
import { join } from "node:path";
import { segmentSpans, type Span } from "../common/segments.ts";
import { float32Bits, rowBitsEqual } from "../common/rows.ts";
import { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { InputError } from "../errors.ts";
import { initRuntime, tf } from "../runtime.ts";
import { softContextEmbeddings } from "../stage2/softctx.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { latestCheckpoint } from "../loop/run_dir.ts";
import {
  decodeFloats,
  type ProbeBatch,
  readProbeBatch,
} from "../trace/probe_batch.ts";
import { softRow } from "../trace/observe.ts";

/** (a): one perturbed segment. */
export interface IsolationMeasure {
  row: number;
  segment: Span;
  /** Largest |logit change| outside the perturbed segment (must be 0). */
  outside: number;
  /** Largest |logit change| inside it (must be > 0: the perturbation bit). */
  inside: number;
}

/** (b): one cached decode step. */
export interface CacheStepMeasure {
  position: number;
  maxDiff: number;
  greedyUncached: number;
  greedyCached: number;
  /** Gap between the uncached top-2 logits (a tie makes greedy ambiguous). */
  top2Gap: number;
}

/** (d): one soft-context pass k >= 1. */
export interface SoftPassMeasure {
  pass: number;
  slots: number;
  /** Largest |fed - recomputed| over slot rows, relative to the largest row norm. */
  maxRelDiff: number;
  /** Positions outside the slots whose row is not bitwise the base embedding. */
  changedOutside: number;
}

export interface ProbeMeasurements {
  checkpoint: string;
  batch: { rows: number; length: number; segments: number; step: number };
  /** Largest |logit| of the baseline forward (the scale of (a) to (c)). */
  logitScale: number;
  isolation: IsolationMeasure[];
  cache: CacheStepMeasure[];
  embedsPath: { maxDiff: number };
  softRows: SoftPassMeasure[];
}

/** Token ids that are not perturbed: image structure keeps the visual rows aligned. */
function frozenIds(model: Qwen3VLForConditionalGeneration): Set<number> {
  const c = model.config;
  return new Set([
    c.image_token_id,
    c.vision_start_token_id,
    c.vision_end_token_id,
  ]);
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** The model inputs of the replay batch. */
function batchInputs(b: ProbeBatch) {
  const px = decodeFloats(b.pixelValues);
  return {
    inputIds: tf.tensor2d(b.inputIds.flat(), [b.batch, b.seqLen], "int32"),
    positionIds: tf.tensor3d(b.positionIds, [4, b.batch, b.seqLen], "int32"),
    pixelValues: b.pixelShape[0] > 0
      ? tf.tensor2d(px, b.pixelShape)
      : undefined,
    imageGridThw: b.pixelShape[0] > 0 ? b.imageGridThw : undefined,
  };
}

function logitsOf(
  model: Qwen3VLForConditionalGeneration,
  args: Parameters<Qwen3VLForConditionalGeneration["forward"]>[0],
): Float32Array {
  const out = model.forward(args);
  const d = out.logits.dataSync() as Float32Array;
  out.logits.dispose();
  return d;
}

function isolation(
  model: Qwen3VLForConditionalGeneration,
  b: ProbeBatch,
  base: Float32Array,
  segments: Span[][],
): IsolationMeasure[] {
  const V = model.config.text_config.vocab_size;
  const frozen = frozenIds(model);
  const T = b.seqLen;
  // the first, a middle and the last segment of every row with several
  const picks = segments.flatMap((segs, row) =>
    segs.length < 2
      ? []
      : [...new Set([0, segs.length >> 1, segs.length - 1])].map((k) => ({
        row,
        segment: segs[k],
      }))
  );
  return picks.map(({ row, segment: [start, len] }) => {
    const ids = b.inputIds.map((r) => [...r]);
    for (let t = start; t < start + len; t++) {
      const id = ids[row][t];
      if (frozen.has(id)) continue;
      let next = (id + 1) % V;
      while (frozen.has(next)) next = (next + 1) % V;
      ids[row][t] = next;
    }
    const inp = batchInputs({ ...b, inputIds: ids });
    const got = logitsOf(model, inp);
    tf.dispose([inp.inputIds, inp.positionIds, inp.pixelValues ?? []]);
    let outside = 0, inside = 0;
    for (let r = 0; r < b.batch; r++) {
      for (let t = 0; t < T; t++) {
        const own = r === row && t >= start && t < start + len;
        const off = (r * T + t) * V;
        for (let v = 0; v < V; v++) {
          const d = Math.abs(got[off + v] - base[off + v]);
          if (own) inside = Math.max(inside, d);
          else outside = Math.max(outside, d);
        }
      }
    }
    return { row, segment: [start, len] as Span, outside, inside };
  });
}

/** Patch rows of the images of `grids[first .. first + n)`. */
function patchRange(
  grids: number[][],
  first: number,
  n: number,
): [number, number] {
  const count = (g: number[]) => g[0] * g[1] * g[2];
  const start = grids.slice(0, first).reduce((s, g) => s + count(g), 0);
  return [
    start,
    grids.slice(first, first + n).reduce((s, g) => s + count(g), 0),
  ];
}

function kvCache(
  model: Qwen3VLForConditionalGeneration,
  b: ProbeBatch,
  segments: Span[][],
  steps = 3,
): CacheStepMeasure[] {
  const [start, len] = segments[0][0];
  const ids = b.inputIds[0].slice(start, start + len);
  const nImages = ids.filter((x) => x === model.config.vision_start_token_id)
    .length;
  const px = decodeFloats(b.pixelValues);
  const D = b.pixelShape[1];
  const [p0, pn] = patchRange(b.imageGridThw, 0, nImages);
  const pixelValues = pn > 0
    ? tf.tensor2d(px.subarray(p0 * D, (p0 + pn) * D), [pn, D])
    : undefined;
  const imageGridThw = pn > 0 ? b.imageGridThw.slice(0, nImages) : undefined;
  const n = Math.min(steps, len - 1);
  const V = model.config.text_config.vocab_size;
  const full = tf.tensor2d(ids, [1, len], "int32");
  const uncached = logitsOf(model, {
    inputIds: full,
    pixelValues,
    imageGridThw,
  });
  const prefix = tf.tensor2d(ids.slice(0, len - n), [1, len - n], "int32");
  const first = model.forward({
    inputIds: prefix,
    pixelValues,
    imageGridThw,
    useCache: true,
  });
  first.logits.dispose();
  const cache = first.pastKeyValues!;
  const out: CacheStepMeasure[] = [];
  try {
    for (let t = len - n; t < len; t++) {
      const one = tf.tensor2d([ids[t]], [1, 1], "int32");
      const step = model.forward({
        inputIds: one,
        pastKeyValues: cache,
        useCache: true,
      });
      const got = step.logits.dataSync() as Float32Array;
      step.logits.dispose();
      one.dispose();
      const want = uncached.subarray(t * V, (t + 1) * V);
      let maxDiff = 0;
      for (let v = 0; v < V; v++) {
        maxDiff = Math.max(maxDiff, Math.abs(got[v] - want[v]));
      }
      const sorted = [...want].sort((x, y) => y - x);
      out.push({
        position: t,
        maxDiff,
        greedyUncached: argmax(want),
        greedyCached: argmax(got),
        top2Gap: sorted[0] - sorted[1],
      });
    }
  } finally {
    cache.dispose();
    tf.dispose([full, prefix, pixelValues ?? []]);
  }
  return out;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function softRows(
  model: Qwen3VLForConditionalGeneration,
  b: ProbeBatch,
  coordIds: Int32Array,
): SoftPassMeasure[] {
  const T = b.seqLen, B = b.batch;
  const H = model.config.text_config.hidden_size;
  const coord = new Set(coordIds);
  const slots: number[] = [];
  b.inputIds.forEach((r, row) =>
    r.forEach((id, t) => coord.has(id) && slots.push(row * T + t))
  );
  const inp = batchInputs(b);
  const embed = (x: tf.Tensor2D) => model.embedTokens(x);
  const table = model.param("model.language_model.embed_tokens.weight")
    .dataSync() as Float32Array;
  const base = embed(inp.inputIds);
  const baseBits = float32Bits(base.dataSync() as Float32Array);
  base.dispose();
  const out: SoftPassMeasure[] = [];
  let logits: tf.Tensor3D | null = null;
  try {
    const passes = Math.max(b.nPasses, 2);
    for (let k = 0; k < passes; k++) {
      const embeds = softContextEmbeddings({
        embedTokens: embed,
        inputIds: inp.inputIds,
        coordSlots: slots,
        coordTokenIds: coordIds,
        prevLogits: logits,
        temperature: b.softctxTemperature,
      });
      if (logits !== null) {
        const fed = embeds.dataSync() as Float32Array;
        const z = logits.dataSync() as Float32Array;
        const V = logits.shape[2];
        const isSlot = new Set(slots);
        let maxRel = 0, changed = 0;
        for (const f of slots) {
          const prev = new Float32Array(coordIds.length);
          for (let c = 0; c < coordIds.length; c++) {
            prev[c] = z[(f - 1) * V + coordIds[c]];
          }
          const want = softRow(prev, table, H, coordIds, b.softctxTemperature);
          // scale: the largest value of the rows involved, the slot's own
          // table row E(id) included (a soft row, a mean of table rows, can
          // be much smaller than they are)
          const idRow = b.inputIds[Math.floor(f / T)][f % T] * H;
          let diff = 0, norm = 0;
          for (let h = 0; h < H; h++) {
            diff = Math.max(diff, Math.abs(fed[f * H + h] - want[h]));
            norm = Math.max(
              norm,
              Math.abs(want[h]),
              Math.abs(fed[f * H + h]),
              Math.abs(table[idRow + h]),
            );
          }
          maxRel = Math.max(maxRel, diff / Math.max(norm, 1e-30));
        }
        const fedBits = float32Bits(fed);
        for (let f = 0; f < B * T; f++) {
          if (
            !isSlot.has(f) && !rowBitsEqual(baseBits, f * H, fedBits, f * H, H)
          ) {
            changed++;
          }
        }
        out.push({
          pass: k,
          slots: slots.length,
          maxRelDiff: maxRel,
          changedOutside: changed,
        });
      }
      const next = k + 1 < passes
        ? model.forward({
          inputsEmbeds: embeds,
          positionIds: inp.positionIds,
          pixelValues: inp.pixelValues,
          imageGridThw: inp.imageGridThw,
        }).logits
        : null;
      embeds.dispose();
      logits?.dispose();
      logits = next;
    }
  } finally {
    logits?.dispose();
    tf.dispose([inp.inputIds, inp.positionIds, inp.pixelValues ?? []]);
  }
  return out;
}

/**
 * Loads the run's latest checkpoint and replay batch and runs the four
 * probes. Throws an `InputError` (one line) when either is missing or
 * unusable.
 */
export async function probeRun(runDir: string): Promise<ProbeMeasurements> {
  const batch = await readProbeBatch(runDir);
  const ckpt = await latestCheckpoint(runDir);
  if (ckpt === null) {
    throw new InputError(`${runDir} has no checkpoint to probe`);
  }
  // the start-up line says which compute path the probes replay on
  await initRuntime();
  const tok = await Tokenizer.fromFile(join(ckpt, "tokenizer.json"));
  const model = await Qwen3VLForConditionalGeneration.load(ckpt);
  try {
    const segments = Array.from({ length: batch.batch }, (_, r) =>
      segmentSpans(
        batch.positionIds.slice(r * batch.seqLen, (r + 1) * batch.seqLen),
      ));
    const inp = batchInputs(batch);
    const baseline = logitsOf(model, inp);
    const viaEmbeds = tf.tidy(() => model.embedTokens(inp.inputIds));
    const embedsLogits = logitsOf(model, {
      inputsEmbeds: viaEmbeds,
      positionIds: inp.positionIds,
      pixelValues: inp.pixelValues,
      imageGridThw: inp.imageGridThw,
    });
    viaEmbeds.dispose();
    tf.dispose([inp.inputIds, inp.positionIds, inp.pixelValues ?? []]);
    let embedsDiff = 0;
    for (let i = 0; i < baseline.length; i++) {
      embedsDiff = Math.max(
        embedsDiff,
        Math.abs(baseline[i] - embedsLogits[i]),
      );
    }
    return {
      checkpoint: ckpt,
      batch: {
        rows: batch.batch,
        length: batch.seqLen,
        segments: segments.reduce((n, s) => n + s.length, 0),
        step: batch.globalStep,
      },
      logitScale: maxAbs(baseline),
      isolation: isolation(model, batch, baseline, segments),
      cache: kvCache(model, batch, segments),
      embedsPath: { maxDiff: embedsDiff },
      softRows: softRows(model, batch, tok.coordIds),
    };
  } finally {
    model.dispose();
  }
}
