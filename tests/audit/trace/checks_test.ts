import assert from "node:assert/strict";
import type {
  ForwardRecord,
  StepRecord,
  TraceLine,
} from "../../../trainer/trace/schema.ts";
import { CHECKERS } from "../../../audit/trace/mod.ts";
import { expectedRequestSeed } from "../../../audit/trace/seed.ts";
import {
  audit,
  BASE_DIGEST,
  buildCleanTrace,
  find,
  fired,
  isForward,
  PLACEHOLDERS,
  SOFT_DIGEST,
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

Deno.test("placeholder rows not bitwise the placeholder embedding -> placeholder-invariance", () => {
  const recs = breakForward(A1, (f) => (f.placeholderBitwiseEqual = false));
  assert.deepEqual(fired(recs), ["placeholder-invariance"]);
});

Deno.test("an image placeholder row changed by a later pass -> fed-rows", () => {
  const recs = breakForward(A1, (f) => {
    f.observed!.foreignRows[0].push(PLACEHOLDERS[1]);
  });
  assert.deepEqual(fired(recs), ["fed-rows"]);
  assert.match(
    audit(recs).violations[0].message,
    new RegExp(`rows \\[${PLACEHOLDERS[1]}\\] differ .* not coord slots`),
  );
  // on the first pass, a row that is no token's embedding
  const recs2 = breakForward({ ...A1, pass: 0 }, (f) => {
    f.observed!.foreignRows[0].push(7);
  });
  assert.deepEqual(fired(recs2), ["fed-rows"]);
  assert.match(audit(recs2).violations[0].message, /plain embedding/);
});

Deno.test("placeholder rows vs visual features mismatch -> placeholder-invariance", () => {
  assert.deepEqual(
    fired(breakAllPasses(A1, (f) => (f.placeholderRows = 7))),
    ["placeholder-invariance"],
  );
});

Deno.test("last pass fed embeddings not on the tape -> fresh-base-embedding", () => {
  const last = { ...A1, pass: 2 };
  assert.deepEqual(
    fired(breakForward(last, (f) => (f.observed!.embedsOnTape = false))),
    ["fresh-base-embedding"],
  );
  assert.match(
    audit(breakForward(last, (f) => (f.observed!.embedsOnTape = false)))
      .violations[0].message,
    /not computed from the embedding weights on the gradient tape/,
  );
  // under a tape, "no tape observed" is a violation too
  assert.deepEqual(
    fired(breakForward(last, (f) => (f.observed!.embedsOnTape = null))),
    ["fresh-base-embedding"],
  );
});

/** Sets the fed digest of slot `k` on every later pass of the first A micro-batch. */
function feedSlot(k: number, fed: [number, number, number]) {
  return breakForward(A1, (f) => {
    f.observed!.slots[0][k].fed = fed;
  });
}

Deno.test("a coord slot left at its base embedding -> softctx-applied", () => {
  const recs = feedSlot(4, [...BASE_DIGEST]);
  assert.deepEqual(fired(recs), ["softctx-applied"]);
  assert.match(
    audit(recs).violations[0].message,
    /coord slots \[20\].*base embedding/,
  );
});

Deno.test("a soft row added to the base row -> softctx-replace", () => {
  const added: [number, number, number] = [
    1.3, // the norm of a sum is not the sum of norms
    BASE_DIGEST[1] + SOFT_DIGEST[1],
    BASE_DIGEST[2] + SOFT_DIGEST[2],
  ];
  const recs = feedSlot(0, added);
  assert.deepEqual(fired(recs), ["softctx-replace"]);
  assert.match(audit(recs).violations[0].message, /E\(id\) \+ soft row/);
});

Deno.test("a soft row not built from the logits at p-1 -> causal-shift", () => {
  const recs = feedSlot(1, [0.25, 0.07, 0.11]);
  assert.deepEqual(fired(recs), ["causal-shift"]);
  assert.match(
    audit(recs).violations[0].message,
    /coord slots \[8\] differ from the soft rows recomputed .* at p-1/,
  );
  // within the float tolerance it is the same row
  const e = 1e-7;
  assert.deepEqual(
    fired(
      feedSlot(1, [SOFT_DIGEST[0] + e, SOFT_DIGEST[1] - e, SOFT_DIGEST[2]]),
    ),
    [],
  );
});

Deno.test("sliced logits in training -> logits-coverage", () => {
  const recs = breakForward(A1, (f) => (f.logitsLen = 1));
  assert.deepEqual(fired(recs), ["logits-coverage"]);
  assert.match(audit(recs).violations[0].message, /1 of 26.*sliced/);
});

Deno.test("gradients recorded on an early pass -> grad-last-pass", () => {
  // (a real tape on pass 1 also puts its fed embeddings on the tape)
  assert.deepEqual(
    fired(breakForward(A1, (f) => {
      f.gradRecorded = true;
      f.observed!.embedsOnTape = true;
    })),
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
      r.observed = null;
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
  // a reuse step replays the buffer: no generation call
  assert.deepEqual(audit(kept).violations, []);
});

Deno.test("missing micro-batch in a window -> window", () => {
  const recs = buildCleanTrace();
  const filtered = recs.filter((r) =>
    !(r.kind === "forward" && r.globalStep === 1 && r.microBatch === 1)
  );
  assert.deepEqual(fired(filtered), ["window"]);
});

/** Makes step `step`'s generation calls receive the seeds of `base`. */
function seedsFrom(recs: TraceLine[], step: number, base: number): TraceLine[] {
  for (const r of recs) {
    if (r.kind === "generate" && r.globalStep === step) {
      r.seeds = [expectedRequestSeed(base, r.microBatch)];
    }
  }
  return recs;
}

Deno.test("wrong rollout seed base -> seed-formula", () => {
  // generation got the seeds of the logged (wrong) base: only the formula fails
  const wrong = 17 + 2 * 1000003 + 1;
  const recs = seedsFrom(
    breakStep(2, (s) => (s.rolloutSeedBase = wrong)),
    2,
    wrong,
  );
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
        seedsFrom(recs, r.globalStep, r.rolloutSeedBase);
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
  const recs2 = seedsFrom(
    breakStep(2, (s) => {
      s.trainingSeed = seed;
      s.rolloutSeedBase = naive;
    }, withSeed()),
    2,
    naive,
  );
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
    f.observed!.slots[0][0].p = 6;
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
  for (const row of last.observed!.slots) {
    for (const x of row) {
      Object.assign(x, { fed: null, want: null, base: null });
    }
  }
  assert.deepEqual(fired(kept), ["config-consistency"]);
  // a short window: windows are always full
  const recs2 = breakStep(1, (s) => (s.windowSize = 1));
  // the step claims 1 micro-batch while 2 ran: both the config and the
  // window check report it
  assert.deepEqual(fired(recs2), ["config-consistency", "window"]);
  // no expectations in the header and no run folder: the check does not apply
  const recs3 = buildCleanTrace();
  delete (recs3[0] as { expect?: unknown }).expect;
  const inv = audit(recs3, null!).invariants.find((i) =>
    i.name === "config-consistency"
  )!;
  assert.equal(inv.checked, 0);
});

// Rollouts, completeness and detail.

Deno.test("a fresh-rollout step without a generation call -> rollouts-ran", () => {
  const recs = buildCleanTrace().filter((r) =>
    !(r.kind === "generate" && r.globalStep === 2 && r.microBatch === 1)
  );
  assert.deepEqual(fired(recs), ["rollouts-ran"]);
  assert.match(
    audit(recs).violations[0].message,
    /step 2: claims fresh rollouts but generation was never called for micro-batch 1/,
  );
  const idle = buildCleanTrace();
  const g = idle.find((r) => r.kind === "generate")!;
  assert.ok(g.kind === "generate");
  g.forwards = 0;
  // no forward ran: the two rollout lines of the detailed step disagree too
  assert.deepEqual(fired(idle), ["rollouts-ran", "trace-detail"]);
});

Deno.test("generation seeds other than the logged base's -> generation-seeds", () => {
  const recs = seedsFrom(
    buildCleanTrace(),
    2,
    expectedRequestSeed(17 + 3 * 1000003, 0),
  );
  assert.deepEqual(fired(recs), ["generation-seeds"]);
  assert.match(
    audit(recs).violations[0].message,
    /step 2 micro-batch 0: generation received seeds \[3000026\], but the logged rolloutSeedBase 2000023 gives \[2000023\]/,
  );
  // request indices run across the window: micro-batch 1 is request 1
  const swapped = buildCleanTrace();
  for (const r of swapped) {
    if (r.kind === "generate" && r.globalStep === 2) {
      r.seeds = [expectedRequestSeed(2000023, 1 - r.microBatch)];
    }
  }
  assert.deepEqual(fired(swapped), ["generation-seeds"]);
  // sampling without seeds
  const unseeded = buildCleanTrace();
  for (const r of unseeded) {
    if (r.kind === "generate") {
      Object.assign(r, { mode: "sample", seeds: null });
    }
  }
  assert.deepEqual(fired(unseeded), ["generation-seeds"]);
});

Deno.test("a run without its end record is incomplete, never PASS -> run-finished", () => {
  // cut exactly at a line boundary after step 3
  const recs = buildCleanTrace();
  const cut = recs.slice(
    0,
    find(recs, (r) => r.kind === "step" && r.globalStep === 3) + 1,
  );
  const r = audit(cut);
  assert.equal(r.ok, false);
  assert.equal(r.verdict, "INCOMPLETE");
  assert.deepEqual(fired(cut), ["run-finished", "steps-cover-run"]);
  assert.match(
    r.violations.find((v) => v.invariant === "steps-cover-run")!.message,
    /2 of 6 steps \(per training.max_steps\) have no step record: 4, 5/,
  );
  // a crash after one forward
  const crashed = buildCleanTrace().slice(0, 2);
  const rc = audit(crashed);
  assert.notEqual(rc.verdict, "PASS");
  assert.ok(rc.violations.some((v) => v.invariant === "run-finished"));
});

Deno.test("end record and run folder disagreeing -> run-finished", () => {
  const recs = buildCleanTrace();
  const facts = {
    dir: "runs/x",
    configPresent: true,
    completedSteps: null,
    tornLine: null,
  };
  assert.match(
    audit(recs, facts).violations[0].message,
    /runs\/x\/run_complete.json is missing/,
  );
  assert.deepEqual(
    [
      ...new Set(
        audit(recs, { ...facts, completedSteps: 5 }).violations.map((v) =>
          v.invariant
        ),
      ),
    ],
    ["run-finished"],
  );
  const torn = audit(recs, { ...facts, completedSteps: 6, tornLine: 99 });
  assert.equal(torn.verdict, "INCOMPLETE");
  assert.match(torn.violations.at(-1)!.message, /cut mid-write/);
  // a step after the end record
  const late = buildCleanTrace();
  late.push(structuredClone(late.find((r) => r.kind === "step")!));
  assert.ok(fired(late).includes("run-finished"));
});

Deno.test("a run folder without config.yaml -> config-present (incomplete)", () => {
  const recs = buildCleanTrace();
  const r = audit(recs, {
    dir: "runs/x",
    configPresent: false,
    completedSteps: 6,
    tornLine: null,
  });
  assert.equal(r.verdict, "INCOMPLETE");
  assert.deepEqual(r.violations.map((v) => v.invariant), ["config-present"]);
});

Deno.test("attention mask that is not block-causal -> attention-segments", () => {
  const recs = breakAllPasses(A1, (f) => {
    f.attentionSegments = null;
    f.attentionMaskProblem = "batch row 0: query 3 sees the later key 4";
  });
  assert.deepEqual(fired(recs), ["attention-segments"]);
  assert.match(
    audit(recs).violations[0].message,
    /not causal within segments: .*later key 4/,
  );
});

Deno.test("a detailed step written without detail -> trace-detail", () => {
  const recs = breakAllPasses(A1, (f) => {
    Object.assign(f, {
      detail: "summary",
      observed: null,
      row0: null,
      mrope: null,
    });
  });
  assert.deepEqual(fired(recs), ["trace-detail"]);
  const recs2 = breakAllPasses(A1, (f) => (f.observed = null));
  assert.deepEqual(fired(recs2), ["trace-detail"]);
  // a rollout forward line missing from a detailed step
  const recs3 = buildCleanTrace();
  recs3.splice(find(recs3, (r) => isForward(r, { purpose: "rollout" })), 1);
  assert.deepEqual(fired(recs3), ["trace-detail"]);
  // at level summary, steps outside the detail rule may be summaries
  const recs4 = buildCleanTrace();
  const h = recs4[0];
  assert.ok(h.kind === "run");
  h.detailSteps = { first: 1, every: 4 };
  for (const r of recs4) {
    if (r.kind === "forward" && r.globalStep === 1) {
      Object.assign(r, {
        detail: "summary",
        observed: null,
        row0: null,
        mrope: null,
      });
    }
  }
  recs4.splice(
    0,
    recs4.length,
    ...recs4.filter((r) =>
      !(r.kind === "forward" && r.purpose === "rollout" && r.globalStep === 2)
    ),
  );
  assert.deepEqual(fired(recs4), []);
});
