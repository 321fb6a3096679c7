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
  softctx: null,
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

Deno.test("recorder summary: per-token arrays dropped, derived problems kept", () => {
  const dir = Deno.makeTempDirSync();
  const rec = TraceRecorder.open(dir, { level: "summary", variant: "sft" });
  rec.setContext(ctx);
  // row 0 that does not restart at the second sample
  rec.tracer({ ...info, row0: [[0, 1, 2, 3, 4]] });
  rec.close();
  const f = read(rec.path)[1];
  assert.ok(f.kind === "forward");
  assert.equal(f.detail, "summary");
  assert.equal(f.row0, null);
  assert.equal(f.mrope, null);
  assert.match(f.checks.row0!, /must restart at 0/);
  assert.ok(
    Deno.readTextFileSync(rec.path).length <
      JSON.stringify(info).length * 3,
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
