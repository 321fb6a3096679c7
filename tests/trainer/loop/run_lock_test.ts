import assert from "node:assert/strict";
import { join } from "node:path";
import { LOCK_FILE, lockRunDir } from "../../../trainer/loop/run_lock.ts";
import { InputError } from "../../../trainer/errors.ts";

Deno.test("one lock per run folder: a second taker refuses naming the owner's pid; release frees it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-lock-" });
  try {
    const notes: string[] = [];
    const first = await lockRunDir(dir, (l) => notes.push(l));
    const owner = JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE)));
    assert.equal(owner.pid, Deno.pid);
    const second = await lockRunDir(dir, () => {}).catch((e) => e);
    assert.ok(second instanceof InputError);
    assert.match(
      second.message,
      new RegExp(
        `output_dir ${dir} is in use by another training process \\(pid ${Deno.pid} on .*\\); wait for it to finish or stop it`,
      ),
    );
    await first.release();
    assert.ok(!(await Deno.stat(join(dir, LOCK_FILE)).catch(() => null)));
    {
      await using again = await lockRunDir(dir, (l) => notes.push(l));
      assert.equal(again.path, join(dir, LOCK_FILE));
    }
    assert.deepEqual(notes, [], "no stale-lock note for a clean release");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lock file left by a dead process is taken over with a note", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-lock-" });
  try {
    // What `kill -9` leaves: the file with its owner, but no held lock.
    await Deno.writeTextFile(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: 4194000, host: "h", started: "yesterday" }),
    );
    const notes: string[] = [];
    await using _lock = await lockRunDir(dir, (l) => notes.push(l));
    assert.equal(notes.length, 1);
    assert.match(
      notes[0],
      /taking over the lock of .* left by pid 4194000 on h \(started yesterday\); that process ended/,
    );
    const owner = JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE)));
    assert.equal(owner.pid, Deno.pid);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
