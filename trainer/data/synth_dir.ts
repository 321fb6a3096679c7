/**
 * Where `stage2 data synth --out DIR` may write: an absent or empty folder,
 * or, with `overwrite`, a folder holding a dataset `data synth` wrote
 * before (it has `synth.json`). Overwriting removes that dataset's files
 * first, so no stale images of a larger earlier dataset stay behind, and
 * never touches other files.
 */
import { join } from "node:path";
import { InputError } from "../errors.ts";

/** Files and image names `writeSynthDataset` produces. */
const SYNTH_FILES = ["train.jsonl", "val.jsonl", "synth.json"];
const SYNTH_IMAGE_RE = /^(?:train|val)_\d{5}\.png$/;
/** Leftover of an interrupted atomic write (`writeFileAtomic`). */
const ATOMIC_TEMP_RE = /\.tmp-\d+-[0-9a-f]{8}$/;

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/**
 * Checks `dir` as a `data synth` output folder and, with `overwrite`,
 * removes the previous synthetic dataset in it. Returns the names of
 * entries left in place (not written by `data synth`).
 *
 * @example
 * await prepareSynthOut("data/shapes", { overwrite: false });
 */
export async function prepareSynthOut(
  dir: string,
  o: { overwrite: boolean },
): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  if (!info.isDirectory) {
    throw new InputError(
      `--out ${dir} is a file; data synth writes a folder (PNG images, train.jsonl, val.jsonl, synth.json): name a new or empty folder`,
    );
  }
  const entries = await names(dir);
  if (entries.length === 0) return [];
  const shown = entries.slice(0, 4).join(", ") +
    (entries.length > 4 ? ", ..." : "");
  if (!o.overwrite) {
    throw new InputError(
      `--out ${dir} is not empty (${shown}); choose a new folder, or pass --overwrite to replace a dataset data synth wrote there`,
    );
  }
  if (!entries.includes("synth.json")) {
    throw new InputError(
      `--out ${dir} holds no dataset written by data synth (no synth.json), so --overwrite would mix the new dataset with other files; choose a new or empty folder`,
    );
  }
  const ours = (name: string) =>
    SYNTH_FILES.includes(name.replace(ATOMIC_TEMP_RE, ""));
  const kept: string[] = [];
  for (const name of entries) {
    if (ours(name)) await Deno.remove(join(dir, name));
    else if (name !== "images") kept.push(name);
  }
  const images = join(dir, "images");
  const imageNames = await names(images).catch(() => []);
  for (const name of imageNames) {
    if (SYNTH_IMAGE_RE.test(name.replace(ATOMIC_TEMP_RE, ""))) {
      await Deno.remove(join(images, name));
    } else kept.push(`images/${name}`);
  }
  if (imageNames.length > 0 && (await names(images)).length === 0) {
    await Deno.remove(images);
  }
  return kept;
}
