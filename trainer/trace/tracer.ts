/**
 * What the model hands its tracer: per forward, the facts of its plan and
 * the tensors the compute really consumed and produced; per generation
 * call, what the call received, around the decode itself. The recorder
 * (`recorder.ts`) implements this; the model only reports.
 */
import type { tf } from "../runtime.ts";
import type { ForwardTraceInfo } from "./schema.ts";

/** The tensors of one forward, valid only during the tracer call. */
export interface ForwardTensors {
  /** The inputs_embeds the compute used [B, T, H]; null on the ids path. */
  inputsEmbeds: tf.Tensor3D | null;
  /** The input ids the compute used [B, T]; null on the embeddings path. */
  inputIds: tf.Tensor2D | null;
  /** The logits returned [B, T', V]. */
  logits: tf.Tensor3D;
  /** The embedding weights the compute reads [V, H] (the variable itself). */
  embedTable: tf.Tensor2D;
  /** The position ids received ([3|4, B, T]), or null. */
  positionIds: tf.Tensor3D | null;
  /** The pixel values received, or null. */
  pixelValues: tf.Tensor2D | null;
  /** The image grids the vision tower ran on. */
  imageGridThw: number[][];
}

/** What a generation call received. */
export interface GenerationFacts {
  requests: number;
  mode: "greedy" | "sample";
  /** The per-request seeds passed (null: none). */
  seeds: number[] | null;
  maxNewTokens: number;
}

/** A model's tracer: forwards, and optionally generation calls. */
export interface ModelTracer {
  forward(info: ForwardTraceInfo, tensors?: ForwardTensors): void;
  /** Wraps one generation call (`run`), which resolves to the new tokens per request. */
  generation?<R extends { tokens: ArrayLike<number>[] }>(
    facts: GenerationFacts,
    run: () => Promise<R>,
  ): Promise<R>;
}
