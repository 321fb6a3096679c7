import assert from "node:assert/strict";
import {
  linesBeforeResume,
  TraceRecorder,
} from "../../../trainer/trace/recorder.ts";
import type {
  ForwardContext,
  ForwardTraceInfo,
  TraceLine,
} from "../../../trainer/trace/schema.ts";
import { parseTrace } from "../../../audit/trace/parse.ts";

const ctx: ForwardContext = {
  globalStep: 0,
  channel: "sft",
  purpose: "train",
  microBatch: 0,
  pass: 0,
  nPasses: 1,
  gradRecorded: true,
  training: true,
  packed: true,
  segmentLengths: [[3, 2]],
};

const info: ForwardTraceInfo = {
  inputKind: "input_ids",
  argKeys: ["inputIds", "positionIds", "useCache"],
  useCache: false,
  cacheIn: false,
  returnedPast: false,
  batch: 1,
  seqLen: 5,
  logitsLen: 5,
  positionIdsRows: 4,
  row0: [[0, 1, 2, 0, 1]],
  mrope: [[[0, 1, 2, 0, 1], [0, 1, 2, 0, 1], [0, 1, 2, 0, 1]]],
  attentionSegments: [[[0, 3], [3, 2]]],
  attentionMaskProblem: null,
  placeholderRows: 0,
  visualFeatures: 0,
  placeholderBitwiseEqual: null,
};

const stepRec = (s: number) => ({
  globalStep: s,
  pattern: null,
  channel: "sft" as const,
  trainingSeed: 1,
  rolloutSeedBase: null,
  freshRollouts: false,
  bufferReuse: false,
  windowSize: 1,
});

function read(path: string): TraceLine[] {
  return parseTrace(Deno.readTextFileSync(path)).map((l) => l.rec);
}

/** Writes steps [from, to) with one forward each. */
function writeSteps(rec: TraceRecorder, from: number, to: number) {
  for (let s = from; s < to; s++) {
    rec.setContext({ ...ctx, globalStep: s });
    rec.tracer(info);
    rec.step(stepRec(s));
  }
}

Deno.test("recorder full: header, forward and step lines with derived checks", () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "full", variant: "sft" });
  assert.equal(rec.enabled, true);
  writeSteps(rec, 0, 2);
  rec.close();
  const lines = read(rec.path);
  assert.deepEqual(lines.map((l) => l.kind), [
    "run",
    "forward",
    "step",
    "forward",
    "step",
  ]);
  const f = lines[1];
  assert.ok(f.kind === "forward");
  assert.equal(f.detail, "full");
  assert.deepEqual(f.row0, [[0, 1, 2, 0, 1]]);
  assert.deepEqual(f.checks.segments, [[[0, 3], [3, 2]]]);
  assert.equal(f.checks.row0, null);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("recorder summary: full detail on the first and every 10th step, elsewhere arrays dropped and derived problems kept", () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "summary", variant: "sft" });
  for (const s of [0, 2, 3, 5, 10]) {
    rec.setContext({ ...ctx, globalStep: s });
    // row 0 that does not restart at the second sample
    rec.tracer({ ...info, row0: [[0, 1, 2, 3, 4]] });
  }
  rec.close();
  const lines = read(rec.path);
  const h = lines[0];
  assert.ok(h.kind === "run");
  assert.deepEqual(h.detailSteps, { first: 3, every: 10 });
  const fw = lines.filter((l) => l.kind === "forward");
  assert.deepEqual(fw.map((f) => f.kind === "forward" && f.detail), [
    "full",
    "full",
    "summary",
    "summary",
    "full",
  ]);
  const f = fw[2];
  assert.ok(f.kind === "forward");
  assert.equal(f.row0, null);
  assert.equal(f.mrope, null);
  assert.match(f.checks.row0!, /must restart at 0/);
  assert.ok(JSON.stringify(f).length < JSON.stringify(fw[0]).length);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("recorder: a generation call is one line with what it received and the forwards it ran; its rollout forwards are written on detailed steps only", async () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "summary", variant: "sft" });
  const rollout = { ...ctx, purpose: "rollout" as const, packed: false };
  const decode = (n: number) =>
    rec.modelTracer.generation!(
      { requests: 2, mode: "sample", seeds: [7, 8], maxNewTokens: 4 },
      () => {
        for (let i = 0; i < n; i++) rec.tracer(info);
        return Promise.resolve({ tokens: [[1, 2], [3]] });
      },
    );
  for (const s of [1, 4]) {
    rec.setContext({ ...rollout, globalStep: s });
    await decode(3);
  }
  rec.setContext(null);
  await decode(2); // outside a context: runs, not recorded
  rec.end(5);
  rec.close();
  const lines = read(rec.path);
  assert.deepEqual(lines.map((l) => l.kind), [
    "run",
    "forward",
    "forward",
    "forward",
    "generate",
    "generate",
    "end",
  ]);
  const g = lines[5];
  assert.ok(g.kind === "generate");
  assert.deepEqual(
    [g.globalStep, g.requests, g.mode, g.seeds, g.forwards, g.newTokens],
    [4, 2, "sample", [7, 8], 3, [2, 1]],
  );
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("recorder: forwards outside a context (generation) are not recorded", () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "full", variant: "sft" });
  rec.tracer(info); // no context yet
  rec.setContext(ctx);
  rec.suspended(() => rec.tracer(info));
  rec.updateContext({ microBatch: 1 });
  rec.tracer(info);
  rec.setContext(null);
  rec.tracer(info);
  rec.close();
  const fw = read(rec.path).filter((l) => l.kind === "forward");
  assert.equal(fw.length, 1);
  assert.ok(fw[0].kind === "forward" && fw[0].microBatch === 1);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("recorder: tapeProbe records the fact, not the claim", () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, {
    level: "full",
    variant: "sft",
    tapeProbe: () => false,
  });
  rec.forward({ ...ctx, gradRecorded: true }, info);
  rec.close();
  const f = read(rec.path)[1];
  assert.ok(f.kind === "forward" && f.gradRecorded === false);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("recorder: invalid fields throw naming the field", () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "full", variant: "sft" });
  assert.throws(
    () => rec.forward(ctx, { ...info, seqLen: -1 }),
    /ForwardTraceInfo seqLen/,
  );
  assert.throws(
    () => rec.forward(ctx, { ...info, extra: 1 } as ForwardTraceInfo),
    /ForwardTraceInfo/,
  );
  assert.throws(
    () => rec.step({ ...stepRec(0), windowSize: 0 }),
    /step record windowSize/,
  );
  rec.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("recorder off: writes nothing, creates no file", () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "off", variant: "sft" });
  assert.equal(rec.enabled, false);
  writeSteps(rec, 0, 1);
  rec.checkpoint(1);
  rec.close();
  assert.throws(() => Deno.statSync(rec.path), Deno.errors.NotFound);
  Deno.removeSync(dir);
});

Deno.test("recorder resume: cut after the checkpoint line, nothing repeated", () => {
  const dir = Deno.makeTempDirSync();
  let rec = TraceRecorder.open(dir, { level: "full", variant: "sft" });
  writeSteps(rec, 0, 2);
  rec.checkpoint(2);
  writeSteps(rec, 2, 4); // lost work after the checkpoint
  rec.close();
  // crash mid-line
  Deno.writeTextFileSync(rec.path, '{"kind":"forw', { append: true });
  rec = TraceRecorder.open(dir, {
    level: "full",
    variant: "sft",
    resumeFromStep: 2,
  });
  writeSteps(rec, 2, 4);
  rec.close();
  const steps = read(rec.path).filter((l) => l.kind === "step").map((l) =>
    l.kind === "step" ? l.globalStep : -1
  );
  assert.deepEqual(steps, [0, 1, 2, 3]);
  assert.deepEqual(
    read(rec.path).map((l) => l.kind).filter((k) =>
      k === "checkpoint" || k === "resume"
    ),
    ["checkpoint", "resume"],
  );
  // a fresh (non-resume) open replaces the trace
  TraceRecorder.open(dir, { level: "full", variant: "sft" }).close();
  assert.deepEqual(read(rec.path).map((l) => l.kind), ["run"]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("linesBeforeResume: falls back to step numbers without a checkpoint line", () => {
  const L = (o: object) => JSON.stringify(o);
  const lines = [
    L({ kind: "run" }),
    L({ kind: "forward", globalStep: 0 }),
    L({ kind: "step", globalStep: 0 }),
    L({ kind: "forward", globalStep: 1 }),
    L({ kind: "step", globalStep: 1 }),
    L({ kind: "forward", globalStep: 2 }),
  ];
  assert.deepEqual(linesBeforeResume(lines, 1), lines.slice(0, 3));
  assert.deepEqual(linesBeforeResume(lines, 0), lines.slice(0, 1));
  assert.equal(linesBeforeResume([], 1), null);
  assert.equal(linesBeforeResume(["garbage"], 1), null);
});

Deno.test("recorder: suspended() covers async generation until it settles", async () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "full", variant: "sft" });
  rec.setContext(ctx);
  await rec.suspended(async () => {
    await Promise.resolve();
    rec.tracer(info); // a decode-step forward after an await: not recorded
  });
  rec.tracer(info); // context restored afterwards
  await assert.rejects(() =>
    rec.suspended(() => Promise.reject(new Error("boom")))
  );
  assert.equal(rec.context?.globalStep, 0);
  rec.close();
  assert.equal(read(rec.path).filter((l) => l.kind === "forward").length, 1);
  Deno.removeSync(dir, { recursive: true });
});
