import assert from "node:assert/strict";
import { join } from "node:path";
import {
  latestCheckpoint,
  listCheckpoints,
  rotateCheckpoints,
  writeCheckpointDir,
} from "../../../trainer/loop/run_dir.ts";

Deno.test("checkpoints are renamed into place, `latest` follows, rotation keeps the newest", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await latestCheckpoint(dir), null);
    for (const step of [5, 10, 15]) {
      const d = await writeCheckpointDir(dir, step, async (tmp) => {
        assert.match(tmp, /\.tmp-checkpoint-/);
        await Deno.writeTextFile(join(tmp, "f.txt"), String(step));
      });
      assert.equal(await latestCheckpoint(dir), d);
    }
    assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [
      5,
      10,
      15,
    ]);
    const removed = await rotateCheckpoints(dir, 2, join(dir, "checkpoint-15"));
    assert.deepEqual(removed, [join(dir, "checkpoint-5")]);
    assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [10, 15]);
    assert.equal(
      await Deno.readTextFile(join(dir, "checkpoint-15", "f.txt")),
      "15",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failed checkpoint write leaves no checkpoint folder and keeps `latest`", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await writeCheckpointDir(dir, 1, async () => {});
    await assert.rejects(
      writeCheckpointDir(dir, 2, () => Promise.reject(new Error("disk full"))),
      /disk full/,
    );
    assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [1]);
    assert.equal(await latestCheckpoint(dir), first);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a `latest` pointer naming a missing or odd folder is an error, not a silent fresh start", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "latest"), "checkpoint-9\n");
    await assert.rejects(
      latestCheckpoint(dir),
      /names checkpoint-9, which does not exist/,
    );
    await Deno.writeTextFile(join(dir, "latest"), "../etc\n");
    await assert.rejects(
      latestCheckpoint(dir),
      /not a checkpoint-<step> folder/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
