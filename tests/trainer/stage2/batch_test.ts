import assert from "node:assert/strict";
import {
  buildChannelASequence,
  buildChannelBSequence,
  buildStage2Batch,
  collateStage2,
  roleWeight,
} from "../../../trainer/stage2/batch.ts";
import { parseRolloutForMatching } from "../../../trainer/rollout/parse.ts";
import { hungarianMatch } from "../../../trainer/rollout/match.ts";
import { InputError } from "../../../trainer/errors.ts";
import { serializeAnswer, TokenRole } from "../../../trainer/tokenizer/mod.ts";
import {
  flatRope,
  rawSample,
  SAMPLE_OBJECTS,
  tinyTokenizer,
} from "../rollout/helpers.ts";

const tok = tinyTokenizer();
const opts = { candidateTopK: 2, iouGate: 0.3, fpCost: 1, fnCost: 1 };
const collate = {
  rope: flatRope,
  packing: { enabled: true, maxLength: 4096 },
  padId: tok.specialIds.pad,
  descCeWeight: 0.5,
};

Deno.test("Channel A: CE weights by role, GT boxes at their coord slots", () => {
  const s = rawSample(SAMPLE_OBJECTS);
  const b = buildStage2Batch({
    ...collate,
    channel: "A",
    tokenizer: tok,
    samples: [s],
  });
  assert.equal(b.batch, 1);
  s.roles.forEach((r, t) => {
    const w = b.ceWeights[t];
    if (r === TokenRole.prompt || r === TokenRole.coord) assert.equal(w, 0);
    else if (r === TokenRole.desc) assert.equal(w, 0.5);
    else assert.equal(w, 1);
  });
  assert.equal(b.ceWeights[b.length - 1], 1, "end-of-turn is supervised");
  assert.equal(b.boxes.length, 3);
  for (const box of b.boxes) {
    box.positions.forEach((p, i) =>
      assert.equal(tok.coordBinOfId(b.inputIds[p]), box.target[i])
    );
  }
  assert.equal(b.coordSlots.length, 12);
  // desc_ce_weight 0 masks desc values fully but keeps structure.
  const zero = buildStage2Batch({
    ...collate,
    descCeWeight: 0,
    channel: "A",
    tokenizer: tok,
    samples: [s],
  });
  s.roles.forEach((r, t) => {
    if (r === TokenRole.desc) assert.equal(zero.ceWeights[t], 0);
    if (r === TokenRole.structure) assert.equal(zero.ceWeights[t], 1);
  });
});

Deno.test("Channel B: prefix no CE, matched at prefix coords, FN appended", () => {
  const s = rawSample(SAMPLE_OBJECTS);
  // Rollout: the first object of the answer, slightly shifted, then truncated.
  const pred = {
    desc: "red circle",
    bbox_2d: [12, 20, 300, 400] as [number, number, number, number],
  };
  const text = serializeAnswer([pred, {
    desc: "far away",
    bbox_2d: [900, 900, 950, 950],
  }]);
  const gen = tok.encode(text.slice(0, -1) + ', "object_3": {"desc": "x');
  const rollout = parseRolloutForMatching(tok, gen);
  assert.equal(rollout.predictions.length, 2);
  const match = hungarianMatch(
    rollout.predictions.map((p) => p.bbox),
    s.objects.map((o) => o.bbox_2d),
    opts,
  );
  assert.deepEqual(match.pairs.map((p) => [p.pred, p.gt]), [[0, 0]]);
  const seq = buildChannelBSequence(tok, s, rollout, match);
  const P = s.promptLength;
  // prompt preserved, prefix tokens kept as generated (up to a re-encoded tail)
  assert.deepEqual(
    Array.from(seq.inputIds.subarray(0, P)),
    Array.from(s.inputIds.subarray(0, P)),
  );
  assert.deepEqual(
    Array.from(seq.inputIds.subarray(P, P + rollout.prefixIds.length)),
    rollout.prefixIds,
  );
  for (let t = 0; t < P + rollout.prefixIds.length; t++) {
    assert.equal(seq.roles[t], TokenRole.prompt);
  }
  // The answer text parses as JSON with the FN objects after object_2.
  const answer = tok.decode(
    Array.from(seq.inputIds.subarray(P, seq.inputIds.length - 1)),
  );
  const json = JSON.parse(answer);
  assert.deepEqual(Object.keys(json), [
    "object_1",
    "object_2",
    "object_3",
    "object_4",
  ]);
  assert.equal(json.object_3.desc, s.objects[1].desc);
  assert.equal(seq.inputIds.at(-1), tok.specialIds.imEnd);
  assert.equal(seq.roles.at(-1), TokenRole.eot);
  // Boxes: matched at prefix coord positions with the GT target; FN in tail;
  // the unmatched far-away prediction gets nothing.
  assert.deepEqual(seq.boxes.map((b) => b.kind), ["matched", "fn", "fn"]);
  assert.deepEqual(seq.boxes[0].target, s.objects[0].bbox_2d);
  assert.deepEqual(
    seq.boxes[0].positions,
    rollout.predictions[0].coordPositions.map((p) => P + p),
  );
  assert.ok(
    seq.boxes[0].positions.every((p) => p < P + rollout.prefixIds.length),
  );
  const farPositions = new Set(
    rollout.predictions[1].coordPositions.map((p) => P + p),
  );
  assert.ok(
    seq.boxes.every((b) => b.positions.every((p) => !farPositions.has(p))),
  );
  assert.ok(
    seq.boxes.slice(1).every((b) =>
      b.positions.every((p) => p >= P + rollout.prefixIds.length)
    ),
  );
  // Tail coord tokens never get CE.
  for (const b of seq.boxes) {
    for (const p of b.positions) {
      assert.ok(
        seq.roles[p] === TokenRole.coord || seq.roles[p] === TokenRole.prompt,
      );
      assert.equal(roleWeight(seq.roles[p], 1), 0);
    }
  }
});

Deno.test("invalid rollout trains on '{' + all GT objects", () => {
  const s = rawSample(SAMPLE_OBJECTS);
  const rollout = parseRolloutForMatching(tok, tok.encode("I see shapes"));
  const match = hungarianMatch([], s.objects.map((o) => o.bbox_2d), opts);
  const seq = buildChannelBSequence(tok, s, rollout, match);
  const answer = tok.decode(
    Array.from(seq.inputIds.subarray(s.promptLength, seq.inputIds.length - 1)),
  );
  assert.equal(answer, serializeAnswer(s.objects));
  assert.deepEqual(seq.boxes.map((b) => b.kind), ["fn", "fn", "fn"]);
});

Deno.test("packing: segments in one row, text positions restart, offsets mapped [1.7.7]", () => {
  const a = buildChannelASequence(rawSample(SAMPLE_OBJECTS.slice(0, 1), 0));
  const b = buildChannelASequence(rawSample(SAMPLE_OBJECTS.slice(1), 1));
  const batch = collateStage2([a, b], collate);
  assert.equal(batch.batch, 1);
  const L = batch.length;
  assert.equal(L, a.inputIds.length + b.inputIds.length);
  const text = batch.positionIds.subarray(0, L);
  assert.equal(
    text[a.inputIds.length],
    0,
    "row 0 restarts at the second segment",
  );
  assert.equal(text[a.inputIds.length - 1], a.inputIds.length - 1);
  assert.deepEqual(batch.segmentStarts, [[0, a.inputIds.length]]);
  for (const box of batch.boxes) {
    box.positions.forEach((p, i) =>
      assert.equal(tok.coordBinOfId(batch.inputIds[p]), box.target[i])
    );
  }
  assert.equal(batch.positionIds.length, 4 * L);
  // Too short a packing length splits rows; each row still restarts at 0.
  const split = collateStage2([a, b], {
    ...collate,
    packing: {
      enabled: true,
      maxLength: Math.max(a.inputIds.length, b.inputIds.length),
    },
  });
  assert.equal(split.batch, 2);
  assert.equal(split.positionIds[split.length], 0);
  // Unpacked: one sample per row.
  const padded = collateStage2([a, b], {
    ...collate,
    packing: { enabled: false, maxLength: 16 },
  });
  assert.equal(padded.packed, false);
  assert.equal(padded.batch, 2);
});

Deno.test("packing guardrails: over-long sequence and 3-row rope are errors", () => {
  const a = buildChannelASequence(rawSample(SAMPLE_OBJECTS));
  assert.throws(
    () =>
      collateStage2([a], {
        ...collate,
        packing: { enabled: true, maxLength: 16 },
      }),
    (e) =>
      e instanceof InputError && /raise packing_length/.test(e.message) &&
      /packing_length 16/.test(e.message),
  );
  const badRope = (ids: Int32Array) => {
    const r = Int32Array.from(ids, (_, i) => i);
    return [r, r] as unknown as [Int32Array, Int32Array, Int32Array];
  };
  assert.throws(
    () => collateStage2([a], { ...collate, rope: badRope }),
    /4-row packed position ids/,
  );
});
