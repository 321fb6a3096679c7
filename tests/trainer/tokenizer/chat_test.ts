import assert from "node:assert/strict";
import type { GtObject } from "../../../trainer/data/types.ts";
import {
  DEFAULT_PROMPT,
  renderChatSample,
  renderChatText,
  renderPrompt,
  renderPromptText,
  TokenRole,
} from "../../../trainer/tokenizer/chat.ts";
import { serializeAnswer } from "../../../trainer/tokenizer/answer.ts";
import {
  buildTinyTokenizer,
  QWEN_SPLIT_PATTERN,
} from "../../../trainer/tokenizer/build.ts";
import { Tokenizer } from "../../../trainer/tokenizer/tokenizer.ts";
import { tinyCorpus, tinyTokenizer } from "./tiny_fixture.ts";

const OBJECTS: GtObject[] = [
  { desc: "green triangle", bbox_2d: [510, 600, 700, 810] },
  { desc: "red circle", bbox_2d: [12, 40, 230, 260] },
  { desc: "blue square", bbox_2d: [300, 35, 480, 220] },
];

Deno.test("prompt text is the Qwen3-VL chat format without a system turn", () => {
  assert.equal(
    renderPromptText(2, "Find."),
    "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>" +
      "Find.<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(
    renderChatText(OBJECTS, 1),
    renderPromptText(1, DEFAULT_PROMPT) + serializeAnswer(OBJECTS) +
      "<|im_end|>",
  );
});

Deno.test("rendered ids equal encoding the whole chat text", () => {
  const tok = tinyTokenizer();
  const s = renderChatSample(tok, { objects: OBJECTS, imagePadCount: 16 });
  assert.deepEqual(
    Array.from(s.inputIds),
    tok.encode(renderChatText(OBJECTS, 16)),
  );
  assert.equal(tok.decode(s.inputIds), renderChatText(OBJECTS, 16));
  assert.equal(s.roles.length, s.inputIds.length);
});

Deno.test("promptLength marks the first answer token; prompt equals renderPrompt", () => {
  const tok = tinyTokenizer();
  const s = renderChatSample(tok, {
    objects: OBJECTS,
    imagePadCount: 3,
    prompt: "Boxes?",
  });
  const prompt = renderPrompt(tok, 3, "Boxes?");
  assert.deepEqual(s.inputIds.slice(0, s.promptLength), prompt);
  assert.equal(tok.decode(prompt), renderPromptText(3, "Boxes?"));
  assert.ok(tok.decode(prompt).endsWith("<|im_start|>assistant\n"));
  assert.equal(
    tok.decode(s.inputIds.slice(s.promptLength)),
    serializeAnswer(OBJECTS) + "<|im_end|>",
  );
  assert.ok(
    s.roles.slice(0, s.promptLength).every((r) => r === TokenRole.prompt),
  );
  assert.ok(s.roles.slice(s.promptLength).every((r) => r !== TokenRole.prompt));
  assert.equal(s.inputIds.at(-1), tok.specialIds.imEnd);
  assert.equal(s.roles.at(-1), TokenRole.eot);
});

Deno.test("image pad count is honoured as one contiguous run", () => {
  const tok = tinyTokenizer();
  for (const n of [1, 7, 64]) {
    const ids = Array.from(
      renderChatSample(tok, { objects: OBJECTS, imagePadCount: n }).inputIds,
    );
    const sp = tok.specialIds;
    assert.equal(ids.filter((id) => id === sp.imagePad).length, n);
    const start = ids.indexOf(sp.visionStart);
    assert.equal(ids.indexOf(sp.visionEnd), start + n + 1);
    assert.ok(
      ids.slice(start + 1, start + 1 + n).every((id) => id === sp.imagePad),
    );
  }
});

Deno.test("coord slots point at the coord ids of each box in answer order", () => {
  const tok = tinyTokenizer();
  const s = renderChatSample(tok, { objects: OBJECTS, imagePadCount: 4 });
  // y1: blue 35 < red 40 < green 600.
  assert.deepEqual(s.objects.map((o) => o.desc), [
    "blue square",
    "red circle",
    "green triangle",
  ]);
  assert.equal(s.coordSlots.length, 12);
  s.coordSlots.forEach((c, i) => {
    assert.equal(c.object, Math.floor(i / 4));
    assert.equal(c.slot, i % 4);
    assert.ok(c.pos >= s.promptLength);
    assert.equal(
      s.inputIds[c.pos],
      tok.coordIds[s.objects[c.object].bbox_2d[c.slot]],
    );
    assert.equal(s.roles[c.pos], TokenRole.coord);
  });
  const coordPositions = [...s.roles.keys()].filter((i) =>
    s.roles[i] === TokenRole.coord
  );
  assert.deepEqual(coordPositions, s.coordSlots.map((c) => c.pos));
});

Deno.test("desc roles cover exactly the desc words", () => {
  const tok = tinyTokenizer();
  const s = renderChatSample(tok, { objects: OBJECTS, imagePadCount: 2 });
  const desc = [...s.inputIds].filter((_, i) => s.roles[i] === TokenRole.desc)
    .map((id) => tok.decodeTokenPiece(id)).join("");
  assert.equal(desc, "blue squarered circlegreen triangle");
});

Deno.test("a sample with no objects renders an empty answer", () => {
  const tok = tinyTokenizer();
  const s = renderChatSample(tok, { objects: [], imagePadCount: 1 });
  assert.equal(tok.decode(s.inputIds.slice(s.promptLength)), "{}<|im_end|>");
  assert.deepEqual(s.coordSlots, []);
});

Deno.test("bad render inputs are rejected with a clear message", () => {
  const tok = tinyTokenizer();
  for (const n of [0, -1, 2.5]) {
    assert.throws(
      () => renderChatSample(tok, { objects: OBJECTS, imagePadCount: n }),
      /imagePadCount must be an integer >= 1/,
    );
  }
  assert.throws(
    () => renderPrompt(tok, 1, "look <|image_pad|> here"),
    /contains the special token <\|image_pad\|>; the prompt must be plain text/,
  );
  assert.throws(
    () =>
      renderChatSample(tok, {
        objects: [{ desc: "x", bbox_2d: [4, 4, 2, 8] }],
        imagePadCount: 1,
      }),
    /object_1: bbox_2d \[4, 4, 2, 8\] needs x1<=x2/,
  );
});

Deno.test("a tokenizer with Qwen's own pre-tokenizer renders consistently", () => {
  // Same code path as a real Qwen3-VL tokenizer.json: Qwen's split regex
  // (Oniguruma `(?i:...)` included) and an NFC normalizer.
  const json = buildTinyTokenizer(tinyCorpus(), {
    splitPattern: QWEN_SPLIT_PATTERN,
  });
  json.normalizer = { type: "NFC" };
  const tok = Tokenizer.fromJson(json, "qwen-style");
  const s = renderChatSample(tok, { objects: OBJECTS, imagePadCount: 5 });
  assert.deepEqual(
    Array.from(s.inputIds),
    tok.encode(renderChatText(OBJECTS, 5)),
  );
  assert.equal(tok.decode(s.inputIds), renderChatText(OBJECTS, 5));
  const desc = [...s.inputIds].filter((_, i) => s.roles[i] === TokenRole.desc)
    .map((id) => tok.decodeTokenPiece(id)).join("");
  assert.equal(desc, "blue squarered circlegreen triangle");
  s.coordSlots.forEach((c) =>
    assert.equal(
      s.inputIds[c.pos],
      tok.coordIds[s.objects[c.object].bbox_2d[c.slot]],
    )
  );
  // Why the tiny model does not use this split: ~30 tokens per object.
  const one = tok.encode(serializeAnswer([OBJECTS[0]])).length;
  assert.ok(one >= 25, `Qwen split gave ${one} tokens for one object`);
});
