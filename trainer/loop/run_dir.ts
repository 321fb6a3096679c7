/**
 * Run-folder layout and safety rules.
 *
 * Layout: `checkpoint-<step>/` folders built in a `.tmp-checkpoint-*`
 * folder and renamed into place (the rename is the commit point: a
 * checkpoint folder is complete or absent), a `latest` pointer naming the
 * newest one (for people and other tools), rotation down to
 * `save_total_limit`, and the run's files (`RUN_FILES`).
 *
 * Safety rules (`prepareRunDir`):
 * - a fresh start needs an empty (or missing) folder; `overwrite` removes
 *   what stage2 wrote there and nothing else;
 * - `resume: "auto"` continues from the newest complete, verified
 *   checkpoint (whatever `latest` says), starts fresh only in a folder
 *   without any run in it, and otherwise refuses;
 * - a checkpoint folder stage2 did not write (e.g. an HF `checkpoint-500/`
 *   with `pytorch_model.bin`) is never deleted, rotated or replaced;
 * - resuming with another trainer variant refuses.
 */
import { basename, dirname, join, resolve } from "node:path";
import { RESOLVED_CONFIG_FILE } from "../config/mod.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import { InputError, printable } from "../errors.ts";
import {
  CHECKPOINT_EVAL_DIR,
  EVAL_SAMPLES_FILE,
  EVAL_SUMMARY_FILE,
  OVERLAYS_DIR,
} from "../eval/summary.ts";
import { ROLLOUT_BUFFER_DIR } from "../stage2/buffer.ts";
import { PROBE_BATCH_FILE } from "../trace/probe_batch.ts";
import { TRACE_FILE } from "../trace/schema.ts";
import {
  OPTIMIZER_FILE,
  PREPROCESSOR_FILE,
  readTrainerState,
  TRAINER_STATE_FILE,
  type TrainerState,
} from "./checkpoint.ts";
import { METRICS_FILE } from "./metrics.ts";
import { LOCK_FILE } from "./run_lock.ts";

export const LATEST_FILE = "latest";
/** The completion marker: the run finished all its steps. */
export const RUN_COMPLETE_FILE = "run_complete.json";
/** The run's report page (written by `trainer/report`, a layer above the loop). */
export const REPORT_FILE = "report.html";
const CKPT_RE = /^checkpoint-(\d+)$/;
const TMP_CKPT_PREFIX = ".tmp-checkpoint-";

/**
 * Everything stage2 writes at the top of a run folder besides the
 * checkpoints and the built-in synthetic data (`overlays` and
 * `rollout_buffer` are folders). A fresh start with `overwrite` removes
 * these and nothing else.
 */
export const RUN_FILES: readonly string[] = [
  RESOLVED_CONFIG_FILE,
  METRICS_FILE,
  TRACE_FILE,
  PROBE_BATCH_FILE,
  EVAL_SUMMARY_FILE,
  EVAL_SAMPLES_FILE,
  OVERLAYS_DIR,
  REPORT_FILE,
  RUN_COMPLETE_FILE,
  LATEST_FILE,
  ROLLOUT_BUFFER_DIR,
];

/**
 * Files of a stage2 checkpoint folder; the optional ones include the
 * default output folder of `stage2 eval --checkpoint` (`eval/`).
 */
const CHECKPOINT_REQUIRED = [
  "config.json",
  "tokenizer.json",
  OPTIMIZER_FILE,
  TRAINER_STATE_FILE,
];
const CHECKPOINT_OPTIONAL = [
  PREPROCESSOR_FILE,
  "model.safetensors",
  "model.safetensors.index.json",
  CHECKPOINT_EVAL_DIR,
];
const SHARD_RE = /^model-\d+-of-\d+\.safetensors$/;
/** Keys only a stage2 `trainer_state.json` has (HF's has none of them). */
const OWN_STATE_KEYS = ["config_hash", "data_cursor", "rng", "log_window"];

/**
 * Leftover of an interrupted atomic write (`writeFileAtomic`, or the
 * `<file>.tmp-<pid>` of a resume truncating metrics.jsonl / trace.jsonl).
 */
const isAtomicTemp = (name: string) =>
  /\.tmp-\d+(-[0-9a-f]{8})?$/.test(name) &&
  RUN_FILES.some((f) => name.startsWith(`${f}.tmp-`));

/** What a `checkpoint-<step>` folder is. */
export type CheckpointKind =
  /** Written by stage2 and verified complete. */
  | "complete"
  /** Written by stage2 but damaged (a file missing or truncated). */
  | "damaged"
  /** Not written by stage2: never deleted, rotated or replaced. */
  | "foreign";

export interface CheckpointEntry {
  step: number;
  dir: string;
  kind: CheckpointKind;
  /** Why it is damaged or foreign (empty when complete). */
  why: string;
}

/** Size check of a safetensors file: header length + data end = file size. */
async function safetensorsProblem(path: string): Promise<string | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path);
  } catch {
    return `missing ${basename(path)}`;
  }
  try {
    const size = (await file.stat()).size;
    const head = new Uint8Array(8);
    if (size < 8 || (await file.read(head)) !== 8) {
      return `${basename(path)} is truncated`;
    }
    const hlen = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (hlen > size - 8) return `${basename(path)} is truncated`;
    const buf = new Uint8Array(hlen);
    let got = 0;
    while (got < hlen) {
      const n = await file.read(buf.subarray(got));
      if (n === null) return `${basename(path)} is truncated`;
      got += n;
    }
    let end = 0;
    const header = JSON.parse(new TextDecoder().decode(buf)) as Record<
      string,
      { data_offsets?: [number, number] }
    >;
    for (const [k, t] of Object.entries(header)) {
      if (k !== "__metadata__" && t.data_offsets) {
        end = Math.max(end, t.data_offsets[1]);
      }
    }
    if (8 + hlen + end !== size) {
      return `${basename(path)} has ${size} bytes, its header describes ${
        8 + hlen + end
      } (truncated or damaged)`;
    }
    return null;
  } catch {
    return `${basename(path)} has no valid safetensors header`;
  } finally {
    file.close();
  }
}

/**
 * Classifies one checkpoint folder: stage2's (complete or damaged) or
 * foreign. Reads only file names, `trainer_state.json` and the safetensors
 * headers, so it is cheap even for large checkpoints.
 */
export async function inspectCheckpoint(
  dir: string,
  step: number,
): Promise<CheckpointEntry> {
  const entry = (kind: CheckpointKind, why = ""): CheckpointEntry => ({
    step,
    dir,
    kind,
    why,
  });
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  const unknown = names.filter((n) =>
    !CHECKPOINT_REQUIRED.includes(n) && !CHECKPOINT_OPTIONAL.includes(n) &&
    !SHARD_RE.test(n)
  );
  if (unknown.length > 0) {
    return entry("foreign", `holds ${unknown.slice(0, 3).join(", ")}`);
  }
  let state: TrainerState;
  try {
    state = JSON.parse(
      await Deno.readTextFile(join(dir, TRAINER_STATE_FILE)),
    );
  } catch {
    return entry("foreign", `no stage2 ${TRAINER_STATE_FILE}`);
  }
  const own = state !== null && typeof state === "object" &&
    OWN_STATE_KEYS.every((k) => k in state);
  if (!own) return entry("foreign", `${TRAINER_STATE_FILE} is not stage2's`);
  if (state.global_step !== step) {
    return entry(
      "damaged",
      `${TRAINER_STATE_FILE} says global_step ${state.global_step}`,
    );
  }
  const missing = CHECKPOINT_REQUIRED.filter((f) => !names.includes(f));
  if (missing.length > 0) return entry("damaged", `missing ${missing[0]}`);
  const weights = names.includes("model.safetensors.index.json")
    ? names.filter((n) => SHARD_RE.test(n))
    : ["model.safetensors"];
  for (const f of [...weights, OPTIMIZER_FILE]) {
    const problem = await safetensorsProblem(join(dir, f));
    if (problem) return entry("damaged", problem);
  }
  return entry("complete");
}

/** Every `checkpoint-<step>` folder of a run, classified, oldest first. */
export async function scanCheckpoints(
  runDir: string,
): Promise<CheckpointEntry[]> {
  const out: CheckpointEntry[] = [];
  try {
    for await (const e of Deno.readDir(runDir)) {
      const m = CKPT_RE.exec(e.name);
      if (e.isDirectory && m) {
        out.push(await inspectCheckpoint(join(runDir, e.name), Number(m[1])));
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.step - b.step);
}

/** stage2's complete checkpoints in a run, oldest first. */
export async function listCheckpoints(
  runDir: string,
): Promise<CheckpointEntry[]> {
  return (await scanCheckpoints(runDir)).filter((c) => c.kind === "complete");
}

/** The folder the `latest` pointer names, or null when there is none. */
export async function latestCheckpoint(runDir: string): Promise<string | null> {
  let name: string;
  try {
    name = (await Deno.readTextFile(join(runDir, LATEST_FILE))).trim();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (!CKPT_RE.test(name)) {
    throw new InputError(
      `${join(runDir, LATEST_FILE)} names ${
        JSON.stringify(name)
      }, not a checkpoint-<step> folder`,
    );
  }
  const dir = join(runDir, name);
  try {
    await Deno.stat(dir);
  } catch {
    throw new InputError(
      `${join(runDir, LATEST_FILE)} names ${name}, which does not exist`,
    );
  }
  return dir;
}

/**
 * Runs `fill(tmpDir)` and renames the result to `<runDir>/checkpoint-<step>`,
 * then points `latest` at it. A crash leaves either no folder or a complete
 * one (and a stale `.tmp-*` folder, removed on the next save); resume reads
 * the folders, not `latest`, so a crash between the rename and the pointer
 * loses nothing. A folder of that name that stage2 did not write is never
 * replaced.
 */
export async function writeCheckpointDir(
  runDir: string,
  step: number,
  fill: (dir: string) => Promise<void>,
): Promise<string> {
  for await (const e of Deno.readDir(runDir)) {
    if (e.name.startsWith(TMP_CKPT_PREFIX)) {
      await Deno.remove(join(runDir, e.name), { recursive: true });
    }
  }
  const final = join(runDir, `checkpoint-${step}`);
  const old = await Deno.stat(final).then(
    () => inspectCheckpoint(final, step),
    () => null,
  );
  if (old?.kind === "foreign") {
    throw new InputError(
      `${final} already exists and was not written by stage2 (${old.why}); move it away or choose another training.output_dir`,
    );
  }
  const tmp = join(runDir, `${TMP_CKPT_PREFIX}${step}-${Deno.pid}`);
  await Deno.mkdir(tmp, { recursive: true });
  await fill(tmp);
  if (old) await Deno.remove(final, { recursive: true });
  await Deno.rename(tmp, final);
  await writeFileAtomic(join(runDir, LATEST_FILE), basename(final) + "\n");
  return final;
}

/** Deletes stage2's oldest complete checkpoints beyond `limit`, never `keep`. */
export async function rotateCheckpoints(
  runDir: string,
  limit: number | null,
  keep: string,
): Promise<string[]> {
  if (limit === null) return [];
  const all = await listCheckpoints(runDir);
  const removed: string[] = [];
  let excess = all.length - limit;
  for (const c of all) {
    if (excess <= 0) break;
    if (c.dir === keep) continue;
    await Deno.remove(c.dir, { recursive: true });
    removed.push(c.dir);
    excess--;
  }
  return removed;
}

/** How `train` may use its run folder. */
export interface RunDirOptions {
  /**
   * null: fresh start (the folder must be empty unless `overwrite`);
   * "auto": the newest complete checkpoint in the folder; else a
   * checkpoint folder path.
   */
  resume: string | null;
  /**
   * Remove what stage2 wrote before a fresh start. With `resume: "auto"`:
   * start over when there is no complete checkpoint to resume.
   */
  overwrite: boolean;
  /** `custom.trainer_variant` of the config being run. */
  variant: string;
  log: (line: string) => void;
}

export interface RunStart {
  /** The checkpoint to resume from; null for a fresh start. */
  resumeDir: string | null;
  trainerState: TrainerState | null;
}

/** A top-level entry of a run folder and whether stage2 wrote it. */
interface FolderEntry {
  name: string;
  own: boolean;
  /** For display: `checkpoint-4/` or `metrics.jsonl`. */
  shown: string;
  checkpoint?: CheckpointEntry;
}

async function isSynthDataDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(join(path, "synth.json"))).isFile;
  } catch {
    return false;
  }
}

/** Everything in the run folder (missing folder: nothing), classified. */
async function folderEntries(runDir: string): Promise<FolderEntry[]> {
  const ckpts = new Map(
    (await scanCheckpoints(runDir)).map((c) => [basename(c.dir), c]),
  );
  const out: FolderEntry[] = [];
  try {
    for await (const e of Deno.readDir(runDir)) {
      if (e.name === LOCK_FILE) continue; // ours, held by this process
      const shown = printable(e.isDirectory ? `${e.name}/` : e.name);
      const c = ckpts.get(e.name);
      const own = c
        ? c.kind !== "foreign"
        : RUN_FILES.includes(e.name) || isAtomicTemp(e.name) ||
          e.name.startsWith(TMP_CKPT_PREFIX) ||
          (e.isDirectory && await isSynthDataDir(join(runDir, e.name)));
      out.push({ name: e.name, own, shown, checkpoint: c });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.name < b.name ? -1 : 1);
}

/** Up to four entries for a message: `checkpoint-4/, metrics.jsonl, ...`. */
function listing(es: (FolderEntry | string)[]): string {
  const names = es.map((e) => typeof e === "string" ? e : e.shown);
  return names.slice(0, 4).join(", ") +
    (names.length > 4 ? `, ... (${names.length} entries)` : "");
}

/**
 * Refuses a run folder holding a `checkpoint-<n>/` stage2 did not write:
 * the run would write its own checkpoints under such names, and stage2
 * never deletes or replaces a folder it did not write.
 */
function refuseForeignCheckpoints(runDir: string, entries: FolderEntry[]) {
  const c = entries.find((e) => e.checkpoint?.kind === "foreign")?.checkpoint;
  if (c) {
    throw new InputError(
      `output_dir ${runDir} holds ${
        basename(c.dir)
      }/, which stage2 did not write (${c.why}); stage2 never deletes it and would write its own checkpoints under that name: move it away or choose another training.output_dir`,
    );
  }
}

/**
 * Removes what stage2 wrote in a run folder before a fresh start, keeping
 * the built-in synthetic data (reused when its settings match) and
 * everything stage2 did not write.
 */
async function clearOwnFiles(
  runDir: string,
  entries: FolderEntry[],
  log: (line: string) => void,
): Promise<void> {
  refuseForeignCheckpoints(runDir, entries);
  const removed: string[] = [];
  for (const e of entries) {
    if (!e.own) continue;
    const path = join(runDir, e.name);
    if (!e.checkpoint && await isSynthDataDir(path)) continue;
    await Deno.remove(path, { recursive: true });
    removed.push(e.shown);
  }
  const kept = entries.filter((e) => !e.own);
  if (removed.length > 0) {
    log(`starting over: removed ${listing(removed)} from ${runDir}`);
  }
  if (kept.length > 0) {
    log(
      `note: kept ${listing(kept)} in ${runDir}: stage2 did not write ${
        kept.length === 1 ? "it" : "them"
      }`,
    );
  }
}

/**
 * The checkpoint an explicit `--resume DIR` names, verified complete;
 * otherwise an `InputError` saying what is wrong with it.
 */
export async function verifyResumeDir(dir: string): Promise<CheckpointEntry> {
  const m = CKPT_RE.exec(basename(dir));
  const isDir = (await Deno.stat(dir).catch(() => null))?.isDirectory;
  const c = m && isDir ? await inspectCheckpoint(dir, Number(m[1])) : null;
  if (c?.kind === "complete") return c;
  throw new InputError(
    `--resume ${dir}: ${
      !isDir
        ? "no such folder"
        : c
        ? `not a complete stage2 checkpoint (${c.why})`
        : "not a checkpoint-<step> folder"
    }; pass one of a run's checkpoint-<step> folders, or --resume alone for the run folder's newest complete checkpoint`,
  );
}

/**
 * Applies the run-folder safety rules before `train` touches the folder
 * (hold its lock first: `lockRunDir`). Returns the verified resume point.
 * Every refusal is an `InputError` saying what to pass instead.
 */
export async function prepareRunDir(
  runDir: string,
  o: RunDirOptions,
): Promise<RunStart> {
  const entries = await folderEntries(runDir);
  const hasRun = entries.some((e) => e.own);
  let resumeDir: string | null = null;

  if (o.resume === null) {
    if (entries.length > 0 && !o.overwrite) {
      throw new InputError(
        hasRun
          ? `output_dir ${runDir} already holds a run (${
            listing(entries)
          }); pass --resume to continue it, or --overwrite to start over (removes only what stage2 wrote), or choose another training.output_dir`
          : `output_dir ${runDir} is not empty (${
            listing(entries)
          }); choose an empty training.output_dir, or pass --overwrite to start a run there (stage2 never deletes files it did not write)`,
      );
    }
    if (entries.length > 0) await clearOwnFiles(runDir, entries, o.log);
  } else if (o.resume === "auto") {
    refuseForeignCheckpoints(runDir, entries);
    const ckpts = entries.filter((e) => e.checkpoint).map((e) => e.checkpoint!)
      .sort((a, b) => a.step - b.step);
    const newest = ckpts.filter((c) => c.kind === "complete").at(-1);
    if (newest) {
      resumeDir = newest.dir;
      for (const c of ckpts.filter((c) => c.step > newest.step)) {
        o.log(
          `note: ${basename(c.dir)} is damaged (${c.why}); resuming from ${
            basename(newest.dir)
          }`,
        );
      }
      const pointer = await latestCheckpoint(runDir).catch(() => null);
      if (pointer !== newest.dir) {
        o.log(
          `note: ${LATEST_FILE} names ${
            pointer ? basename(pointer) : "nothing"
          }; the newest complete checkpoint is ${basename(newest.dir)}`,
        );
      }
    } else if (entries.length > 0 && !o.overwrite) {
      const damaged = ckpts.find((c) => c.kind === "damaged");
      throw new InputError(
        hasRun
          ? `--resume: output_dir ${runDir} holds no complete checkpoint to resume (${
            damaged
              ? `${basename(damaged.dir)}/ is damaged: ${damaged.why}`
              : `only ${listing(entries.filter((e) => e.own))}`
          }); pass --overwrite instead to start over (removes only what stage2 wrote)`
          : `--resume: output_dir ${runDir} holds no stage2 run (${
            listing(entries)
          }); choose an empty training.output_dir, or pass --overwrite to start a run there (stage2 never deletes files it did not write)`,
      );
    } else {
      if (entries.length > 0) await clearOwnFiles(runDir, entries, o.log);
      o.log(`nothing to resume in ${runDir}: starting a new run`);
    }
  } else {
    resumeDir = resolve(o.resume);
    const c = await verifyResumeDir(resumeDir);
    if (dirname(resumeDir) === runDir) {
      refuseForeignCheckpoints(runDir, entries);
      // Checkpoints after the resume point belong to the abandoned
      // continuation; left in place, a later `--resume` would pick them.
      for (const e of entries) {
        const k = e.checkpoint;
        if (k && k.kind !== "foreign" && k.step > c.step) {
          await Deno.remove(k.dir, { recursive: true });
          o.log(`note: removed ${basename(k.dir)} (after the resume point)`);
        }
      }
      await writeFileAtomic(join(runDir, LATEST_FILE), basename(c.dir) + "\n");
    } else if (entries.length > 0 && !o.overwrite) {
      throw new InputError(
        `output_dir ${runDir} is not empty (${
          listing(entries)
        }); to continue ${resumeDir} there pass --overwrite, or choose an empty training.output_dir`,
      );
    } else if (entries.length > 0) {
      await clearOwnFiles(runDir, entries, o.log);
    }
  }

  if (resumeDir === null) return { resumeDir, trainerState: null };
  const trainerState = await readTrainerState(resumeDir);
  if (
    trainerState.variant !== undefined && trainerState.variant !== o.variant
  ) {
    throw new InputError(
      `--resume ${resumeDir}: that checkpoint was trained with custom.trainer_variant ${
        JSON.stringify(trainerState.variant)
      }, this config runs ${
        JSON.stringify(o.variant)
      }; resume with the run's own config, or start a new run from its weights (model.checkpoint: ${resumeDir})`,
    );
  }
  o.log(`resuming from ${resumeDir}`);
  return { resumeDir, trainerState };
}
