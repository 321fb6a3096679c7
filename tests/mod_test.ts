import assert from "node:assert/strict";
import * as lib from "../mod.ts";
import { initRuntime, tf } from "../trainer/runtime.ts";
import { serializeAnswer } from "../trainer/tokenizer/mod.ts";
import { parseTs, ROOT } from "./architecture.ts";
import {
  flatRope,
  rawSample,
  SAMPLE_OBJECTS,
  tinyTokenizer,
} from "./trainer/rollout/helpers.ts";

await initRuntime({ log: () => {} });

Deno.test("mod: coord codec is the /999 convention [1.7.1]", () => {
  assert.equal(lib.encodeCoord(1), 999);
  assert.equal(lib.encodeCoord(0.5), 500);
  assert.equal(lib.decodeCoord(999), 1);
  assert.equal(lib.decodeCoord(lib.encodeCoord(0.25)), 250 / 999);
  assert.equal(lib.coordToken(42), "<|coord_42|>");
  assert.equal(lib.parseCoordToken("<|coord_7|>"), 7);
  assert.equal(lib.parseCoordToken("<|coord_1000|>"), undefined);
  assert.throws(() => lib.decodeCoord(1000));
});

Deno.test("mod: schedule and seeds (doc examples hold)", () => {
  assert.equal(lib.channelForStep(["A", "A", "B"], 5), "B");
  assert.equal(lib.deriveRolloutSeedBase(17, 2), 2000023);
  assert.equal(lib.deriveRolloutSeedBase(42, 3), 3000051);
  assert.equal(lib.deriveRequestSeed(3000051, 2), 3000053);
  const p = lib.planStep({
    pattern: ["B", "A"],
    globalStep: 1,
    windowSize: 2,
    rolloutBuffer: { enabled: true, mSteps: 2 },
  });
  assert.deepEqual([p.channel, p.bufferReuse, p.freshRollouts], [
    "B",
    true,
    false,
  ]);
});

Deno.test("mod: geometry, GT guardrail, matching, FN append", () => {
  const c = lib.expectationDecode(tf.zeros([4, 1000])).dataSync();
  assert.ok(Array.from(c).every((v) => Math.abs(v - 0.5) < 1e-6));
  const { l1, giou } = lib.bboxL1GiouLoss(
    tf.tensor2d([[0.1, 0.1, 0.5, 0.5]]),
    tf.tensor2d([[0.1, 0.1, 0.5, 0.6]]),
  );
  assert.ok(Math.abs(l1.dataSync()[0] - 0.025) < 1e-6);
  assert.ok(Math.abs(giou.dataSync()[0] - 0.2) < 1e-5);
  assert.deepEqual(
    lib.extractGtBboxOnly({
      objects: [{ desc: "cat", bbox_2d: [1, 2, 30, 40] }],
    }),
    [{ desc: "cat", bbox_2d: [1, 2, 30, 40] }],
  );
  assert.throws(
    () => lib.extractGtBboxOnly({ objects: [{ desc: "c", poly: [] }] }),
    /poly/,
  );
  const m = lib.hungarianMatch([[0, 0, 10, 10]], [[0, 0, 10, 12]], {
    candidateTopK: 5,
    iouGate: 0.3,
    fpCost: 1,
    fnCost: 1,
  });
  assert.equal(m.pairs.length, 1);
  assert.ok(Math.abs(m.pairs[0].iou - 100 / 120) < 1e-12);
  const frag = lib.serializeAppendFragment(
    [{ desc: "cat", bbox_2d: [1, 2, 3, 4] }],
    1,
    "{",
  );
  assert.deepEqual(Object.keys(JSON.parse("{" + frag)), ["object_1"]);
  const images = [{
    gts: [{ desc: "cat", bbox: [0, 0, 10, 10] as lib.Xyxy }],
    preds: [{ desc: "cat", bbox: [0, 0, 10, 9] as lib.Xyxy, score: -0.2 }],
  }];
  // IoU 0.9: a hit at every threshold up to 0.90, a miss at 0.95
  assert.ok(Math.abs(lib.cocoAp(images).ap! - 0.9) < 1e-12);
  assert.equal(lib.detectionMetrics(images).f1, 1);
});

Deno.test("mod: rollout parse -> match -> Stage-2 batch -> loss", () => {
  const tok = tinyTokenizer();
  const sample = rawSample(SAMPLE_OBJECTS);
  const gen = tok.encode(serializeAnswer(SAMPLE_OBJECTS.slice(0, 1)));
  const rollout = lib.parseRolloutForMatching(tok, gen);
  assert.equal(rollout.predictions.length, 1);
  const match = lib.hungarianMatch(
    rollout.predictions.map((p) => p.bbox),
    sample.objects.map((o) => o.bbox_2d),
    { candidateTopK: 5, iouGate: 0.3, fpCost: 1, fnCost: 1 },
  );
  const batch = lib.buildStage2Batch({
    channel: "B",
    tokenizer: tok,
    samples: [sample],
    rollouts: [{ rollout, match }],
    rope: flatRope,
    packing: { enabled: true, maxLength: 2048 },
    padId: tok.specialIds.pad,
    descCeWeight: 1,
  });
  assert.deepEqual(batch.boxes.map((b) => b.kind), ["matched", "fn", "fn"]);
  const V = tok.vocabSize;
  const logits = tf.randomNormal(
    [1, batch.length, V],
    0,
    1,
    "float32",
    1,
  ) as tf.Tensor3D;
  const r = lib.stage2Loss(logits, batch, {
    coordTokenIds: tok.coordIds,
    bboxL1Weight: 1,
    bboxGiouWeight: 1,
  });
  assert.ok(Number.isFinite(r.total.dataSync()[0]));
  assert.equal(r.nBoxes, 3);
  // Soft context through the public API: only coord slots change.
  const table = tf.randomNormal([V, 8], 0, 1, "float32", 2) as tf.Tensor2D;
  const embedTokens = (ids: tf.Tensor2D) =>
    tf.reshape(
      tf.matMul(tf.oneHot(tf.reshape(ids, [-1]), V).toFloat(), table),
      [ids.shape[0], ids.shape[1], 8],
    ) as tf.Tensor3D;
  const ids = tf.tensor2d(batch.inputIds, [1, batch.length], "int32");
  const soft = lib.expectedCoordEmbeddings(embedTokens, logits, tok.coordIds);
  const embeds = lib.softContextEmbeddings({
    embedTokens,
    inputIds: ids,
    coordSlots: batch.coordSlots,
    coordTokenIds: tok.coordIds,
    softRows: soft,
  });
  const diff = tf.any(tf.notEqual(embeds, embedTokens(ids)), 2).dataSync();
  const changed = Array.from(diff).flatMap((v, i) => (v ? [i] : []));
  assert.deepEqual(changed, [...batch.coordSlots].sort((a, b) => a - b));
});

Deno.test("auditRun: a clean run passes, a broken one names the invariant", async () => {
  const fixtures = new URL("./fixtures/audit/", import.meta.url);
  const clean = await lib.auditRun(
    decodeURIComponent(new URL("clean_summary", fixtures).pathname),
  );
  assert.equal(clean.ok, true);
  assert.ok(clean.invariants.every((i) => i.violations === 0));
  const broken = await lib.auditRun(
    decodeURIComponent(new URL("broken_summary", fixtures).pathname),
  );
  assert.equal(broken.ok, false);
  // its attention masks ignore the packed-segment boundaries
  // (tests/fixtures/audit/generate.ts)
  assert.equal(broken.verdict, "FAIL");
  assert.deepEqual(
    [...new Set(broken.violations.map((v) => v.invariant))].sort(),
    ["attention-segments"],
  );
});

Deno.test("mod: every exported function is documented with an example at its source", async () => {
  // deno-lint-ignore no-explicit-any
  type Node = any;
  const mod = parseTs(await Deno.readTextFile(`${ROOT}/mod.ts`), "mod.ts");
  const missing: string[] = [];
  let checked = 0;
  for (const st of mod.program.body as Node[]) {
    if (st.type !== "ExportNamedDeclaration" || !st.source) continue;
    if (st.exportKind === "type") continue;
    const file = new URL(st.source.value, `file://${ROOT}/mod.ts`).pathname;
    const src = parseTs(await Deno.readTextFile(file), file);
    for (const spec of st.specifiers as Node[]) {
      if (spec.exportKind === "type") continue;
      const name = spec.local.name;
      const decl = (src.program.body as Node[]).find((n) =>
        n.type === "ExportNamedDeclaration" &&
        n.declaration?.type === "FunctionDeclaration" &&
        n.declaration.id.name === name
      );
      const doc = decl?.leadingComments?.at(-1)?.value ?? "";
      checked++;
      if (!/@example/.test(doc)) missing.push(`${name} (${st.source.value})`);
    }
  }
  assert.ok(checked >= 18, `only ${checked} exported functions found`);
  assert.deepEqual(missing, []);
});
