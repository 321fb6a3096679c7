/**
 * Trainer-side checkpoint files: `optimizer.safetensors` (AdamW moments,
 * fp32) and `trainer_state.json` (global step, data cursor, RNG streams,
 * partial logging sums, variant state). The model's own files
 * (`config.json`, `model.safetensors`) and `tokenizer.json` sit beside them.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import { InputError } from "../errors.ts";
import type { StateTensor } from "./adamw.ts";
import { decodeSafetensors, encodeSafetensors } from "../model/safetensors.ts";
import type { DataCursor } from "./data_order.ts";
import type { JsonValue } from "../variant/contract.ts";

export const OPTIMIZER_FILE = "optimizer.safetensors";
export const TRAINER_STATE_FILE = "trainer_state.json";
/** Resize bounds of a checkpoint (written and read by `infer.ts`). */
export const PREPROCESSOR_FILE = "preprocessor_config.json";

/** Everything besides weights and moments that resume needs. */
export interface TrainerState {
  /** Completed optimizer updates. */
  global_step: number;
  max_steps: number;
  training_seed: number;
  /** Hash of the resolved config (excluding output/trace/resume keys). */
  config_hash: string;
  data_cursor: DataCursor;
  rng: Record<string, number[]>;
  /** Partial sums of the current logging window. */
  log_window: Record<string, { total: number; n: number }>;
  /** Seconds of training before this checkpoint (for timing fields only). */
  elapsed_s: number;
  variant: string;
  variant_state: JsonValue;
}

export async function writeOptimizerState(
  dir: string,
  state: Map<string, StateTensor>,
  step: number,
): Promise<void> {
  await writeFileAtomic(
    join(dir, OPTIMIZER_FILE),
    encodeSafetensors(
      [...state].sort(([a], [b]) => a < b ? -1 : 1),
      { step: String(step), format: "adamw" },
    ),
  );
}

export async function readOptimizerState(
  dir: string,
): Promise<{ state: Map<string, StateTensor>; step: number }> {
  const path = join(dir, OPTIMIZER_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new InputError(
      `${path}: cannot read optimizer state (${
        (e as Error).message
      }); resume needs a checkpoint written by \`stage2 train\``,
      { cause: e },
    );
  }
  // A damaged file is bad input (resume from another checkpoint), not a bug.
  const damaged = (why: string) =>
    new InputError(
      `${path}: damaged optimizer state (${why}); resume from an earlier checkpoint`,
    );
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes, path);
  } catch (e) {
    throw damaged((e as Error).message.replace(`${path}: `, ""));
  }
  const state = new Map<string, StateTensor>();
  for (const [name, t] of decoded.tensors) {
    if (t.dtype !== "F32") {
      throw damaged(`tensor ${name} is ${t.dtype}, expected F32`);
    }
    const data = t.data as Float32Array;
    // Moments are finite in any state `stage2 train` saves (it stops before
    // a non-finite update); NaN here means damaged bytes.
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) {
      throw damaged(`tensor ${name} holds ${data[bad]} at index ${bad}`);
    }
    state.set(name, { shape: t.shape, data });
  }
  const step = Number(decoded.metadata.step);
  if (!Number.isInteger(step) || step < 0) {
    throw damaged(`metadata has no valid "step"`);
  }
  return { state, step };
}

export async function writeTrainerState(
  dir: string,
  s: TrainerState,
): Promise<void> {
  await writeFileAtomic(
    join(dir, TRAINER_STATE_FILE),
    JSON.stringify(s, null, 1) + "\n",
  );
}

export async function readTrainerState(dir: string): Promise<TrainerState> {
  const path = join(dir, TRAINER_STATE_FILE);
  let obj: unknown;
  try {
    obj = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new InputError(
      `${path}: cannot read trainer state (${(e as Error).message})`,
      { cause: e },
    );
  }
  const s = obj as Partial<TrainerState>;
  for (
    const k of [
      "global_step",
      "training_seed",
      "data_cursor",
      "rng",
      "log_window",
    ] as const
  ) {
    if (s[k] === undefined) throw new InputError(`${path}: missing "${k}"`);
  }
  return s as TrainerState;
}
