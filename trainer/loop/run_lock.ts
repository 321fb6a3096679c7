/**
 * One training process per run folder: `<run>/train.lock` holds an
 * exclusive advisory lock (flock) for as long as the run lives, and names
 * the owner (pid, host, start time) so a second process can say who holds
 * it. The kernel drops the lock when its process dies, even by `kill -9`,
 * so a lock file left behind is stale exactly when it can be locked again:
 * the next run takes it over with a note instead of asking the user to
 * delete it.
 */
import { hostname } from "node:os";
import { join } from "node:path";
import { InputError } from "../errors.ts";

export const LOCK_FILE = "train.lock";

/** What the lock file says about its owner. */
export interface LockOwner {
  pid: number;
  host: string;
  started: string;
}

/** A held run-folder lock; `await using` releases it at scope exit. */
export interface RunLock extends AsyncDisposable {
  readonly path: string;
  release(): Promise<void>;
}

async function readOwner(file: Deno.FsFile): Promise<LockOwner | null> {
  try {
    await file.seek(0, Deno.SeekMode.Start);
    const buf = new Uint8Array(4096);
    const n = await file.read(buf);
    const o = JSON.parse(new TextDecoder().decode(buf.subarray(0, n ?? 0)));
    return typeof o?.pid === "number" ? o as LockOwner : null;
  } catch {
    return null;
  }
}

/**
 * Takes the lock of `runDir` (created when missing). Throws `InputError`
 * when another live process holds it; logs a note when it takes over a
 * lock whose owner died.
 *
 * @example
 * await using _lock = await lockRunDir(runDir, console.error);
 */
export async function lockRunDir(
  runDir: string,
  log: (line: string) => void,
): Promise<RunLock> {
  await Deno.mkdir(runDir, { recursive: true });
  const path = join(runDir, LOCK_FILE);
  // A releasing owner unlinks the file before unlocking it, so a lock taken
  // on a file that is no longer at `path` is worthless: check and retry.
  for (let attempt = 0; attempt < 20; attempt++) {
    const file = await Deno.open(path, {
      read: true,
      write: true,
      create: true,
    });
    let held = false;
    try {
      if (!(await file.tryLock(true))) {
        const o = await readOwner(file);
        throw new InputError(
          `output_dir ${runDir} is in use by another training process${
            o ? ` (pid ${o.pid} on ${o.host}, started ${o.started})` : ""
          }; wait for it to finish or stop it (one run per folder; lock file ${path})`,
        );
      }
      const onDisk = await Deno.stat(path).catch(() => null);
      if (onDisk?.ino !== (await file.stat()).ino) continue;
      const stale = await readOwner(file);
      if (stale) {
        log(
          `note: taking over the lock of ${runDir} left by pid ${stale.pid} on ${stale.host} (started ${stale.started}); that process ended without releasing it`,
        );
      }
      const owner: LockOwner = {
        pid: Deno.pid,
        host: hostname(),
        started: new Date().toISOString(),
      };
      await file.truncate(0);
      await file.seek(0, Deno.SeekMode.Start);
      await file.write(new TextEncoder().encode(JSON.stringify(owner) + "\n"));
      held = true;
      let released = false;
      const release = async () => {
        if (released) return;
        released = true;
        await Deno.remove(path).catch(() => {});
        file.close();
      };
      return { path, release, [Symbol.asyncDispose]: release };
    } finally {
      if (!held) file.close();
    }
  }
  throw new InputError(
    `cannot take the lock ${path}: it keeps being replaced; is another process creating and deleting it?`,
  );
}
