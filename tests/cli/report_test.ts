import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli as run } from "./_run.ts";
import { makeRunFolder } from "../trainer/report/fixture.ts";

Deno.test("stage2 report --run DIR writes DIR/report.html and prints its path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-reportcli-" });
  try {
    await makeRunFolder(dir, { trace: null });
    const r = await run(["report", "--run", dir, "--overlays", "2"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), join(dir, "report.html"));
    const html = await Deno.readTextFile(join(dir, "report.html"));
    assert.equal(html.match(/data:image\/png;base64/g)?.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage2 report --run DIR audits the run's trace and embeds the verdict", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-reportcli-" });
  try {
    await makeRunFolder(dir); // with a clean synthetic trace
    const r = await run(["report", "--run", dir, "--overlays", "0"]);
    assert.equal(r.code, 0, r.err);
    const html = await Deno.readTextFile(join(dir, "report.html"));
    assert.match(html, /PASS: every invariant holds/);
    assert.match(html, /seed-formula/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage2 report: a missing or non-run folder is one line, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-reportcli-" });
  try {
    for (
      const [args, re] of [
        [
          ["report", "--run", join(dir, "nope")],
          /--run .*nope: no such folder/,
        ],
        [["report", "--run", dir], /not a run folder/],
        [
          ["report", "--run", dir, "--overlays", "x"],
          /--overlays must be an integer/,
        ],
      ] as [string[], RegExp][]
    ) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.err, re);
      assert.equal(r.err.trim().split("\n").length, 1);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
