/**
 * The rollout buffer's on-disk copy, so a run resumed inside a buffer window
 * replays exactly the rollouts it would have replayed without the restart.
 *
 * One JSON file per source step, `<run>/rollout_buffer/step-<s>.json`: the
 * window's samples (typed arrays as base64 of their bytes, so values are
 * exact) and each sample's generated response ids. Parsing and matching are
 * deterministic, so only the ids are stored and they are re-parsed on load.
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import type { JsonValue, RawSample } from "../variant/contract.ts";
import type { RolloutResult } from "./batch.ts";

/** Buffer files kept per run (older source steps are deleted). */
export const BUFFER_FILES_KEPT = 4;

export interface BufferedMicroBatch {
  samples: RawSample[];
  /** Per sample: the response cut at end-of-turn (`ParsedRollout.responseIds`). */
  responses: number[][];
}

interface SampleJson {
  index: number;
  record: RawSample["record"];
  inputIds: string;
  promptLength: number;
  roles: string;
  coordSlots: RawSample["coordSlots"];
  objects: RawSample["objects"];
  pixelValues: string;
  pixelShape: [number, number];
  imageGridThw: [number, number, number][];
}

interface FileJson {
  sourceStep: number;
  micro: { microBatch: number; samples: SampleJson[]; responses: number[][] }[];
}

const b64 = (a: ArrayBufferView) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");

function bytes(s: string): Uint8Array {
  const b = Buffer.from(s, "base64");
  // Copy into a fresh, aligned buffer for the typed-array views below.
  return new Uint8Array(b);
}

function sampleToJson(s: RawSample): SampleJson {
  return {
    index: s.index,
    record: s.record,
    inputIds: b64(s.inputIds),
    promptLength: s.promptLength,
    roles: b64(s.roles),
    coordSlots: s.coordSlots,
    objects: s.objects,
    pixelValues: b64(s.pixelValues),
    pixelShape: s.pixelShape,
    imageGridThw: s.imageGridThw,
  };
}

function sampleFromJson(j: SampleJson): RawSample {
  return {
    index: j.index,
    record: j.record,
    inputIds: new Int32Array(bytes(j.inputIds).buffer),
    promptLength: j.promptLength,
    roles: bytes(j.roles),
    coordSlots: j.coordSlots,
    objects: j.objects,
    pixelValues: new Float32Array(bytes(j.pixelValues).buffer),
    pixelShape: j.pixelShape,
    imageGridThw: j.imageGridThw,
  };
}

/** The buffer's folder at the top of a run folder. */
export const ROLLOUT_BUFFER_DIR = "rollout_buffer";

export function bufferDir(runDir: string): string {
  return join(runDir, ROLLOUT_BUFFER_DIR);
}

export function bufferFile(runDir: string, sourceStep: number): string {
  return join(bufferDir(runDir), `step-${sourceStep}.json`);
}

/**
 * Writes (atomically replaces) the file of `sourceStep` and deletes files of
 * all but the newest `BUFFER_FILES_KEPT` source steps.
 */
export async function saveBuffer(
  runDir: string,
  sourceStep: number,
  micro: Map<number, BufferedMicroBatch>,
): Promise<void> {
  const data: FileJson = {
    sourceStep,
    micro: [...micro.entries()].sort((a, b) => a[0] - b[0]).map((
      [microBatch, m],
    ) => ({
      microBatch,
      samples: m.samples.map(sampleToJson),
      responses: m.responses,
    })),
  };
  await writeFileAtomic(bufferFile(runDir, sourceStep), JSON.stringify(data));
  const steps: number[] = [];
  for await (const e of Deno.readDir(bufferDir(runDir))) {
    const m = /^step-(\d+)\.json$/.exec(e.name);
    if (m) steps.push(Number(m[1]));
  }
  steps.sort((a, b) => b - a);
  for (const s of steps.slice(BUFFER_FILES_KEPT)) {
    await Deno.remove(bufferFile(runDir, s)).catch(() => {});
  }
}

/** Reads the buffer of `sourceStep`; a clear error when it is missing. */
export async function loadBuffer(
  runDir: string,
  sourceStep: number,
): Promise<Map<number, BufferedMicroBatch>> {
  const path = bufferFile(runDir, sourceStep);
  let data: FileJson;
  try {
    data = JSON.parse(await Deno.readTextFile(path)) as FileJson;
  } catch (e) {
    throw new Error(
      `cannot resume inside a rollout-buffer window: ${path} is unreadable (${
        (e as Error).message
      }); resume from a checkpoint outside the window or disable custom.extra.rollout_matching.rollout_buffer`,
    );
  }
  if (data.sourceStep !== sourceStep) {
    throw new Error(
      `${path} holds the buffer of step ${data.sourceStep}, expected ${sourceStep}`,
    );
  }
  return new Map(
    data.micro.map((m) => [m.microBatch, {
      samples: m.samples.map(sampleFromJson),
      responses: m.responses,
    }]),
  );
}

/** One buffered micro-batch as the variant uses it: samples and their parsed, matched rollouts. */
export interface HeldMicroBatch {
  samples: RawSample[];
  rollouts: RolloutResult[];
}

/**
 * The rollout buffer of a run (`rollout_buffer.m_steps > 1`): the Channel-B
 * window whose rollouts the following reuse steps replay. It is held in
 * memory, or, after a resume, named by the checkpoint and read back from
 * its file on first use (responses are re-parsed and re-matched, which is
 * deterministic).
 */
export class RolloutBuffer {
  #window: { sourceStep: number; micro: Map<number, HeldMicroBatch> } | null =
    null;
  /** Source step of a buffer restored from a checkpoint, not loaded yet. */
  #pending: number | null = null;

  /** True when the window of `sourceStep` is held (in memory or restorable). */
  holds(sourceStep: number): boolean {
    return this.#window?.sourceStep === sourceStep ||
      this.#pending === sourceStep;
  }

  /** Micro-batch `microBatch` of the window of `sourceStep`, loading a restored window first. */
  async replay(
    runDir: string,
    sourceStep: number,
    microBatch: number,
    reparse: (s: RawSample, response: number[]) => RolloutResult,
  ): Promise<HeldMicroBatch> {
    if (
      this.#window?.sourceStep !== sourceStep && this.#pending === sourceStep
    ) {
      // Resumed inside a buffer window: replay the saved rollouts.
      const saved = await loadBuffer(runDir, sourceStep);
      this.#window = { sourceStep, micro: new Map() };
      for (const [mb, w] of saved) {
        this.#window.micro.set(mb, {
          samples: w.samples,
          rollouts: w.samples.map((x, i) => reparse(x, w.responses[i])),
        });
      }
      this.#pending = null;
    }
    const held = this.#window?.micro.get(microBatch);
    if (!held) {
      throw new Error(
        `rollout buffer holds no micro-batch ${microBatch} of step ${this.#window?.sourceStep}`,
      );
    }
    return held;
  }

  /** Adds a fresh micro-batch to the window of `sourceStep` and rewrites its file. */
  async store(
    runDir: string,
    sourceStep: number,
    microBatch: number,
    held: HeldMicroBatch,
  ): Promise<void> {
    if (!this.#window || this.#window.sourceStep !== sourceStep) {
      this.#window = { sourceStep, micro: new Map() };
    }
    this.#window.micro.set(microBatch, held);
    this.#pending = null;
    await saveBuffer(
      runDir,
      sourceStep,
      new Map(
        [...this.#window.micro].map(([mb, w]) => [mb, {
          samples: w.samples,
          responses: w.rollouts.map((r) => r.rollout.responseIds),
        }]),
      ),
    );
  }

  /** For `trainer_state.json`: the rollouts live in their file; the checkpoint names the source step. */
  state(): JsonValue {
    return { bufferSourceStep: this.#window?.sourceStep ?? this.#pending };
  }

  restore(state: JsonValue): void {
    this.#window = null;
    const s = (state as { bufferSourceStep?: unknown } | null)
      ?.bufferSourceStep;
    this.#pending = typeof s === "number" ? s : null;
  }
}
