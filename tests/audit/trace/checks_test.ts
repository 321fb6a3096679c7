import assert from "node:assert/strict";
import type {
  ForwardRecord,
  StepRecord,
  TraceLine,
} from "../../../trainer/trace/schema.ts";
import { CHECKERS } from "../../../audit/trace/mod.ts";
import {
  audit,
  buildCleanTrace,
  find,
  fired,
  isForward,
  PLACEHOLDERS,
} from "./synthetic.ts";

/** Applies `edit` to the first forward matching `where`, returns the records. */
function breakForward(
  where: Partial<ForwardRecord>,
  edit: (f: ForwardRecord) => void,
  records = buildCleanTrace(),
): TraceLine[] {
  const i = find(records, (r) => isForward(r, where));
  edit(records[i] as ForwardRecord);
  return records;
}

/** Applies `edit` to every pass of the micro-batch of the first forward matching `where`. */
function breakAllPasses(
  where: Partial<ForwardRecord>,
  edit: (f: ForwardRecord) => void,
): TraceLine[] {
  const records = buildCleanTrace();
  const f0 =
    records[find(records, (r) => isForward(r, where))] as ForwardRecord;
  for (const r of records) {
    if (
      r.kind === "forward" && r.purpose === "train" &&
      r.globalStep === f0.globalStep && r.microBatch === f0.microBatch
    ) edit(r);
  }
  return records;
}

function breakStep(
  step: number,
  edit: (s: StepRecord) => void,
  records = buildCleanTrace(),
): TraceLine[] {
  const i = find(records, (r) => r.kind === "step" && r.globalStep === step);
  edit(records[i] as StepRecord);
  return records;
}

const A1 = { channel: "A", purpose: "train", globalStep: 1, pass: 1 } as const;

Deno.test("clean synthetic trace: every invariant passes and applies", () => {
  const r = audit(buildCleanTrace());
  assert.deepEqual(r.violations, []);
  assert.equal(r.ok, true);
  assert.equal(r.invariants.length, CHECKERS.length);
  for (const inv of r.invariants) {
    assert.ok(inv.checked > 0, `${inv.name} never applied to the clean trace`);
  }
});

Deno.test("3-row position ids under packing -> packing-position-ids", () => {
  const recs = breakForward(A1, (f) => {
    f.positionIdsRows = 3;
    f.row0 = null;
  });
  assert.deepEqual(fired(recs), [
    "packing-position-ids",
    "pass-consistency",
    "row0-segments",
  ]);
  const v = audit(recs).violations.find((x) =>
    x.invariant === "packing-position-ids"
  )!;
  assert.match(v.message, /3-row position ids/);
});

Deno.test("row 0 not restarting at a packed sample -> row0-segments", () => {
  const recs = breakAllPasses(A1, (f) => {
    f.row0 = [[...Array(26).keys()]];
    f.attentionSegments = [[[0, 26]]];
  });
  assert.deepEqual(fired(recs), ["row0-segments"]);
  const v = audit(recs).violations[0];
  assert.match(v.message, /segment lengths \[26\].*\[12,14\]/);
});

Deno.test("row 0 jumping inside a segment -> row0-segments", () => {
  const recs = breakForward(A1, (f) => {
    f.row0![0][5] = 7;
  });
  assert.deepEqual(fired(recs), ["pass-consistency", "row0-segments"]);
});

Deno.test("attention crossing a packed segment -> attention-segments", () => {
  const recs = breakAllPasses(A1, (f) => {
    f.attentionSegments = [[[0, 26]]];
  });
  assert.deepEqual(fired(recs), ["attention-segments"]);
  assert.match(audit(recs).violations[0].message, /never cross/);
});

Deno.test("mRoPE rows not restarting per sample -> mrope-rows", () => {
  const recs = breakAllPasses(A1, (f) => {
    // second sample's mRoPE continues from the first instead of restarting
    for (const row of f.mrope![0]) {
      for (let t = 12; t < 26; t++) row[t] += 10;
    }
  });
  assert.deepEqual(fired(recs), ["mrope-rows"]);
});

Deno.test("a cache carried between soft-context passes -> no-cache-carry", () => {
  const recs = breakForward(A1, (f) => {
    f.cacheIn = true;
    f.argKeys.push("pastKeyValues");
  });
  assert.deepEqual(fired(recs), ["no-cache-carry"]);
  assert.match(audit(recs).violations[0].message, /earlier soft-context pass/);
});

Deno.test("use_cache true in training -> cache-off", () => {
  assert.deepEqual(fired(breakForward(A1, (f) => (f.useCache = true))), [
    "cache-off",
  ]);
});

Deno.test("past key/values returned by a training forward -> cache-off", () => {
  assert.deepEqual(fired(breakForward(A1, (f) => (f.returnedPast = true))), [
    "cache-off",
  ]);
});

Deno.test("both input ids and embeddings -> input-exclusivity", () => {
  const recs = breakForward(A1, (f) => {
    f.inputKind = "both";
    f.argKeys.push("inputIds");
  });
  assert.deepEqual(fired(recs), [
    "channel-a-inputs-embeds",
    "input-exclusivity",
  ]);
});

Deno.test("Channel A fed input ids -> channel-a-inputs-embeds", () => {
  const recs = breakForward(A1, (f) => {
    f.inputKind = "input_ids";
    f.argKeys[0] = "inputIds";
    f.placeholderBitwiseEqual = null;
  });
  assert.deepEqual(fired(recs), ["channel-a-inputs-embeds"]);
});

Deno.test("helper keys reaching forward -> helper-keys", () => {
  for (const key of ["labels", "loss_weights", "textPositionIds", "channel"]) {
    const recs = breakForward(A1, (f) => f.argKeys.push(key));
    assert.deepEqual(fired(recs), ["helper-keys"], key);
    assert.match(audit(recs).violations[0].message, new RegExp(key));
  }
});

Deno.test("logits slicing key in training -> helper-keys; allowed in rollouts", () => {
  const recs = breakForward(A1, (f) => f.argKeys.push("logitsToKeep"));
  assert.deepEqual(fired(recs), ["helper-keys"]);
  assert.match(audit(recs).violations[0].message, /generation only/);
  // the clean trace's rollout forwards pass logitsToKeep and are fine
  assert.ok(
    buildCleanTrace().some((r) =>
      r.kind === "forward" && r.purpose === "rollout" &&
      r.argKeys.includes("logitsToKeep")
    ),
  );
});

Deno.test("a placeholder row changed by the scatter -> placeholder-invariance", () => {
  const recs = breakForward(A1, (f) => {
    f.softctx!.changedRows![0].push(PLACEHOLDERS[1]);
    f.placeholderBitwiseEqual = false;
  });
  assert.deepEqual(fired(recs), ["placeholder-invariance"]);
  // the changed-rows check alone also catches it
  const recs2 = breakForward(A1, (f) => {
    f.softctx!.changedRows![0].push(PLACEHOLDERS[1]);
  });
  assert.deepEqual(fired(recs2), ["placeholder-invariance"]);
  assert.match(
    audit(recs2).violations[0].message,
    new RegExp(`\\[${PLACEHOLDERS[1]}\\].*not coord slots`),
  );
});

Deno.test("placeholder rows vs visual features mismatch -> placeholder-invariance", () => {
  assert.deepEqual(
    fired(breakAllPasses(A1, (f) => (f.placeholderRows = 7))),
    ["placeholder-invariance"],
  );
});

Deno.test("stale base embedding -> fresh-base-embedding", () => {
  assert.deepEqual(
    fired(breakForward(A1, (f) => (f.softctx!.baseFresh = false))),
    ["fresh-base-embedding"],
  );
});

Deno.test("soft context not applied on a later pass -> softctx-applied", () => {
  assert.deepEqual(
    fired(breakForward(A1, (f) => (f.softctx!.changedRows = [[]]))),
    ["softctx-applied"],
  );
  assert.deepEqual(
    fired(breakForward({ ...A1, pass: 0 }, (f) => {
      f.softctx!.changedRows = [[7]];
    })),
    ["softctx-applied"],
  );
  assert.deepEqual(
    fired(breakAllPasses(A1, (f) => (f.softctx = null))),
    ["softctx-applied"],
  );
});

Deno.test("sliced logits in training -> logits-coverage", () => {
  const recs = breakForward(A1, (f) => (f.logitsLen = 1));
  assert.deepEqual(fired(recs), ["logits-coverage"]);
  assert.match(audit(recs).violations[0].message, /1 of 26.*sliced/);
});

Deno.test("coord slot reads logits at p instead of p-1 -> causal-shift", () => {
  const recs = breakForward(A1, (f) => {
    f.softctx!.sourcePositions = f.softctx!.coordSlots!.map((r) => [...r]);
  });
  assert.deepEqual(fired(recs), ["causal-shift"]);
  assert.match(
    audit(recs).violations[0].message,
    /read logits at 7, must read 6/,
  );
});

Deno.test("gradients recorded on an early pass -> grad-last-pass", () => {
  assert.deepEqual(
    fired(breakForward(A1, (f) => (f.gradRecorded = true))),
    ["grad-last-pass"],
  );
  assert.deepEqual(
    fired(breakForward({ ...A1, pass: 2 }, (f) => (f.gradRecorded = false))),
    ["grad-last-pass"],
  );
  assert.deepEqual(
    fired(
      breakForward({ purpose: "rollout" }, (f) => (f.gradRecorded = true)),
    ),
    ["grad-last-pass"],
  );
});

Deno.test("passes out of order or missing -> pass-sequence", () => {
  const recs = buildCleanTrace();
  const i = find(recs, (r) => isForward(r, A1));
  [recs[i], recs[i + 1]] = [recs[i + 1], recs[i]];
  assert.deepEqual(fired(recs), ["pass-sequence"]);
  const recs2 = buildCleanTrace();
  recs2.splice(find(recs2, (r) => isForward(r, A1)), 1);
  assert.deepEqual(fired(recs2), ["pass-sequence"]);
});

Deno.test("wrong channel for the step -> schedule", () => {
  const recs = breakStep(1, (s) => (s.channel = "B"));
  assert.deepEqual(fired(recs), ["schedule"]);
  const msgs = audit(recs).violations.map((x) => x.message);
  assert.ok(msgs.some((m) => /\[1 % 3\] = A/.test(m)), msgs.join("\n"));
});

Deno.test("a micro-batch on another channel than its window -> schedule", () => {
  const recs = breakForward(
    { channel: "B", purpose: "train", globalStep: 2, microBatch: 1 },
    (f) => (f.channel = "A"),
  );
  assert.deepEqual(fired(recs), [
    "channel-a-inputs-embeds",
    "config-consistency",
    "schedule",
    "softctx-applied",
  ]);
});

Deno.test("buffer reuse: clean as Channel B", () => {
  // step 3 reuses step 2's Channel-B window although the pattern says A
  const recs = buildCleanTrace({ steps: 4, evalAt: [] });
  const header = recs[0];
  assert.ok(header.kind === "run");
  header.expect!.rolloutBuffer = { enabled: true, mSteps: 2 };
  for (const r of recs) {
    if (r.kind === "forward" && r.globalStep === 3) {
      r.channel = "B";
      if (r.softctx) r.softctx = null;
    }
  }
  // make step 3 a single plain training forward per micro-batch
  const kept: TraceLine[] = recs.filter((r) =>
    !(r.kind === "forward" && r.globalStep === 3 && r.pass !== 2)
  );
  for (const r of kept) {
    if (r.kind === "forward" && r.globalStep === 3) {
      r.pass = 0;
      r.nPasses = 1;
      r.inputKind = "input_ids";
      r.argKeys[0] = "inputIds";
      r.placeholderBitwiseEqual = null;
    }
  }
  const s3 = kept.find((r) => r.kind === "step" && r.globalStep === 3)!;
  Object.assign(s3, { channel: "B", bufferReuse: true });
  assert.deepEqual(audit(kept).violations, []);
});

Deno.test("missing micro-batch in a window -> window", () => {
  const recs = buildCleanTrace();
  const filtered = recs.filter((r) =>
    !(r.kind === "forward" && r.globalStep === 1 && r.microBatch === 1)
  );
  assert.deepEqual(fired(filtered), ["window"]);
});

Deno.test("wrong rollout seed base -> seed-formula", () => {
  const recs = breakStep(2, (s) => (s.rolloutSeedBase = 17 + 2 * 1000003 + 1));
  assert.deepEqual(fired(recs), ["seed-formula"]);
  assert.match(audit(recs).violations[0].message, /expected .* = 2000023/);
  const recs2 = breakStep(2, (s) => (s.rolloutSeedBase = null));
  assert.deepEqual(fired(recs2), ["seed-formula"]);
});

Deno.test("seed formula is exact where float math is not", () => {
  // (2^53 - 1) + 2 * 1000003 is not a double; BigInt gives the exact low 31 bits.
  const seed = Number.MAX_SAFE_INTEGER;
  const withSeed = () => {
    const recs = buildCleanTrace();
    const h = recs[0];
    assert.ok(h.kind === "run");
    h.expect!.trainingSeed = seed;
    for (const r of recs) {
      if (r.kind !== "step") continue;
      r.trainingSeed = seed;
      if (r.rolloutSeedBase !== null) {
        r.rolloutSeedBase = Number(
          (BigInt(seed) + BigInt(r.globalStep) * 1000003n) & 0x7FFFFFFFn,
        );
      }
    }
    return recs;
  };
  const recs = withSeed();
  assert.deepEqual(audit(recs).violations, []);
  const naive = (seed + 2 * 1000003) % 2 ** 31;
  assert.notEqual(
    naive,
    Number((BigInt(seed) + 2n * 1000003n) & 0x7FFFFFFFn),
  );
  const recs2 = breakStep(2, (s) => {
    s.trainingSeed = seed;
    s.rolloutSeedBase = naive;
  }, withSeed());
  assert.deepEqual(fired(recs2), ["seed-formula"]);
});

Deno.test("train/eval mode toggled within a step -> mode-constant", () => {
  assert.deepEqual(
    fired(breakForward(A1, (f) => (f.training = false))),
    ["mode-constant"],
  );
});

Deno.test("a step recorded twice -> step-sequence", () => {
  const recs = buildCleanTrace();
  const i = find(recs, (r) => r.kind === "step" && r.globalStep === 1);
  recs.splice(i + 1, 0, structuredClone(recs[i]));
  assert.deepEqual(fired(recs), ["step-sequence"]);
  assert.match(audit(recs).violations[0].message, /recorded again/);
});

Deno.test("violations carry the 1-based line of the broken record", () => {
  const recs = buildCleanTrace();
  const i = find(recs, (r) => isForward(r, A1));
  (recs[i] as ForwardRecord).logitsLen = 3;
  const v = audit(recs).violations;
  assert.equal(v.length, 1);
  assert.equal(v[0].line, i + 1);
});

Deno.test("a later pass with other position ids -> pass-consistency", () => {
  const recs = breakForward({ ...A1, pass: 2 }, (f) => {
    // positions shifted by one in the second sample: still well-formed, but not the rows of pass 0
    f.mrope![0][2][13] = 0;
  });
  assert.deepEqual(fired(recs), ["pass-consistency"]);
  const recs2 = breakForward({ ...A1, pass: 2 }, (f) => {
    f.softctx!.coordSlots![0][0] = 6;
    f.softctx!.sourcePositions![0][0] = 5;
    f.softctx!.changedRows![0][0] = 6;
  });
  assert.deepEqual(fired(recs2), ["pass-consistency"]);
});

Deno.test("trace disagreeing with the header's config -> config-consistency", () => {
  // n_softctx_iter 3 configured, but one micro-batch ran a single pass
  const recs = buildCleanTrace();
  const kept: TraceLine[] = recs.filter((r) =>
    !(isForward(r, { ...A1, microBatch: 0 }) ||
      isForward(r, { channel: "A", globalStep: 1, microBatch: 0, pass: 0 }))
  );
  const last = kept[
    find(
      kept,
      (r) =>
        isForward(r, { channel: "A", globalStep: 1, microBatch: 0, pass: 2 }),
    )
  ] as ForwardRecord;
  Object.assign(last, { pass: 0, nPasses: 1 });
  last.softctx!.changedRows = [[]];
  assert.deepEqual(fired(kept), ["config-consistency"]);
  // a short window: windows are always full
  const recs2 = breakStep(1, (s) => (s.windowSize = 1));
  // the step claims 1 micro-batch while 2 ran: both the config and the
  // window check report it
  assert.deepEqual(fired(recs2), ["config-consistency", "window"]);
  // no expectations in the header: the check does not apply
  const recs3 = buildCleanTrace();
  delete (recs3[0] as { expect?: unknown }).expect;
  const inv = audit(recs3).invariants.find((i) =>
    i.name === "config-consistency"
  )!;
  assert.equal(inv.checked, 0);
});
