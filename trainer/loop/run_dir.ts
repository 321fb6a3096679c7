/**
 * Run-folder layout: `checkpoint-<step>/` folders written atomically (built in
 * a temp folder, then renamed), a `latest` pointer file naming the newest
 * one, rotation down to `save_total_limit`, and the run's own files
 * (`RUN_FILES`).
 */
import { basename, join } from "node:path";
import { RESOLVED_CONFIG_FILE } from "../config/mod.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import {
  EVAL_SAMPLES_FILE,
  EVAL_SUMMARY_FILE,
  OVERLAYS_DIR,
} from "../eval/summary.ts";
import { TRACE_FILE } from "../trace/schema.ts";
import { METRICS_FILE } from "./metrics.ts";

export const LATEST_FILE = "latest";
/** The completion marker: the run finished all its steps. */
export const RUN_COMPLETE_FILE = "run_complete.json";
/** The run's report page (written by `trainer/report`, a layer above the loop). */
export const REPORT_FILE = "report.html";

/**
 * Everything stage2 writes at the top of a run folder besides the
 * checkpoints (`overlays` is a folder). A fresh start removes these and
 * nothing else.
 */
export const RUN_FILES: readonly string[] = [
  RESOLVED_CONFIG_FILE,
  METRICS_FILE,
  TRACE_FILE,
  EVAL_SUMMARY_FILE,
  EVAL_SAMPLES_FILE,
  OVERLAYS_DIR,
  REPORT_FILE,
  RUN_COMPLETE_FILE,
  LATEST_FILE,
];
const CKPT_RE = /^checkpoint-(\d+)$/;

/** Checkpoint folders in a run, oldest first. */
export async function listCheckpoints(
  runDir: string,
): Promise<{ step: number; dir: string }[]> {
  const out: { step: number; dir: string }[] = [];
  try {
    for await (const e of Deno.readDir(runDir)) {
      const m = CKPT_RE.exec(e.name);
      if (e.isDirectory && m) {
        out.push({ step: Number(m[1]), dir: join(runDir, e.name) });
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.step - b.step);
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
    throw new Error(
      `${join(runDir, LATEST_FILE)} names ${
        JSON.stringify(name)
      }, not a checkpoint-<step> folder`,
    );
  }
  const dir = join(runDir, name);
  try {
    await Deno.stat(dir);
  } catch {
    throw new Error(
      `${join(runDir, LATEST_FILE)} names ${name}, which does not exist`,
    );
  }
  return dir;
}

/**
 * Runs `fill(tmpDir)` and renames the result to `<runDir>/checkpoint-<step>`,
 * then points `latest` at it. A crash leaves either no folder or a complete
 * one (and a stale `.tmp-*` folder, removed on the next save).
 */
export async function writeCheckpointDir(
  runDir: string,
  step: number,
  fill: (dir: string) => Promise<void>,
): Promise<string> {
  for await (const e of Deno.readDir(runDir)) {
    if (e.name.startsWith(".tmp-checkpoint-")) {
      await Deno.remove(join(runDir, e.name), { recursive: true });
    }
  }
  const final = join(runDir, `checkpoint-${step}`);
  const tmp = join(runDir, `.tmp-checkpoint-${step}-${Deno.pid}`);
  await Deno.mkdir(tmp, { recursive: true });
  await fill(tmp);
  await Deno.remove(final, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await Deno.rename(tmp, final);
  await writeFileAtomic(join(runDir, LATEST_FILE), basename(final) + "\n");
  return final;
}

/** Deletes the oldest checkpoints beyond `limit`, never the `keep` one. */
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
