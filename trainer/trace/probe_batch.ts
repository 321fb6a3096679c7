/**
 * The replay batch of a run, `<run>/probe_batch.json`: one packed Channel-A
 * micro-batch exactly as the model consumed it on pass 0 (token ids read
 * back from the fed embeddings, 4-row position ids, pixel values, image
 * grids), written once by the recorder so `stage2 audit --probe` can replay
 * it on the run's checkpoint. No TF.js.
 */
import { Buffer } from "node:buffer";
import { InputError } from "../errors.ts";

export const PROBE_BATCH_FILE = "probe_batch.json";

/** A replayable packed micro-batch (flat arrays are row-major). */
export interface ProbeBatch {
  version: 1;
  globalStep: number;
  microBatch: number;
  /** Passes Channel A ran on it (`n_softctx_iter`). */
  nPasses: number;
  softctxTemperature: number;
  batch: number;
  seqLen: number;
  /** Token ids [B][T]. */
  inputIds: number[][];
  /** Position ids [4, B, T] flattened: text (row 0), t, h, w. */
  positionIds: number[];
  imageGridThw: number[][];
  /** pixel_values shape [N, D], and the float32 values, little-endian, base64. */
  pixelShape: [number, number];
  pixelValues: string;
}

/** Float32 values as little-endian base64 (the platform order of typed arrays here). */
export function encodeFloats(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength)
    .toString("base64");
}

export function decodeFloats(text: string): Float32Array {
  const bytes = Buffer.from(text, "base64");
  if (bytes.byteLength % 4 !== 0) {
    throw new Error(`${bytes.byteLength} bytes is not a float32 array`);
  }
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Reads and checks `<runDir>/probe_batch.json`; `InputError`s name the file. */
export async function readProbeBatch(runDir: string): Promise<ProbeBatch> {
  const path = `${runDir.replace(/\/$/, "")}/${PROBE_BATCH_FILE}`;
  let b: ProbeBatch;
  try {
    b = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new InputError(
      e instanceof Deno.errors.NotFound
        ? `${path} does not exist: the recorder writes it on the first detailed Channel-A step of a Stage-2 run with packing on and training.trace summary or full`
        : `cannot read ${path}: ${(e as Error).message}`,
    );
  }
  const { batch: B, seqLen: T } = b;
  const ok = b.version === 1 && Number.isInteger(B) && Number.isInteger(T) &&
    Array.isArray(b.inputIds) && b.inputIds.length === B &&
    b.inputIds.every((r) => r.length === T) &&
    b.positionIds?.length === 4 * B * T && Array.isArray(b.imageGridThw) &&
    typeof b.pixelValues === "string";
  if (!ok) {
    throw new InputError(
      `${path} is not a version-1 probe batch of [${B}, ${T}] (ids, 4-row position ids, pixels)`,
    );
  }
  return b;
}
