import assert from "node:assert/strict";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import type { GtObject } from "../../../trainer/data/types.ts";
import { serializeAnswer } from "../../../trainer/tokenizer/answer.ts";
import { buildTinyTokenizer } from "../../../trainer/tokenizer/build.ts";
import { Tokenizer } from "../../../trainer/tokenizer/tokenizer.ts";
import {
  buildTinyFixtureJson,
  FIXTURE_PATH,
  tinyCorpus,
  tinyTokenizer,
} from "./tiny_fixture.ts";

/** A typical 3-object answer (objects unseen in the corpus). */
const THREE: GtObject[] = [
  { desc: "red circle", bbox_2d: [12, 40, 230, 260] },
  { desc: "blue square", bbox_2d: [300, 35, 480, 220] },
  { desc: "green triangle", bbox_2d: [510, 600, 700, 810] },
];

type Built = {
  added_tokens: { id: number; content: string; special: boolean }[];
  model: { vocab: Record<string, number>; merges: string[] };
};

Deno.test("pins the token count of a typical 3-object answer", () => {
  const tok = tinyTokenizer();
  const answer = serializeAnswer(THREE);
  const ids = tok.encode(answer);
  // 1 opening piece + 3 x 17 per object ({", object_N, ": {", desc, ": ",
  // 2 desc words, ", ", bbox_2d, ": [", 4 coords + 3 separators) + "]}}.
  // A change here changes every model's sequence length: update on purpose.
  assert.equal(ids.length, 52);
  assert.equal(tok.decode(ids), answer);
  const one = tok.encode(serializeAnswer([THREE[0]]));
  assert.ok(one.length <= 20, `one object took ${one.length} tokens`);
});

Deno.test("built tokenizer.json loads in @huggingface/tokenizers directly", () => {
  const json = buildTinyFixtureJson();
  const hf = new HfTokenizer(json, { clean_up_tokenization_spaces: false });
  for (
    const text of [
      ...tinyCorpus().slice(0, 20),
      'unseen: Zebra #42 ~ "quoted" \\ back\\slash\r\n\ttab 😀 é',
    ]
  ) {
    const ids = hf.encode(text, { add_special_tokens: false }).ids;
    assert.equal(hf.decode(ids, { skip_special_tokens: false }), text);
  }
});

Deno.test("added tokens are special single entries after the model vocab", () => {
  const json = buildTinyFixtureJson() as unknown as Built;
  const vocabIds = Object.values(json.model.vocab);
  const maxVocab = Math.max(...vocabIds);
  assert.equal(vocabIds.length, maxVocab + 1, "vocab ids are dense");
  assert.equal(json.added_tokens.length, 1006);
  json.added_tokens.forEach((t, i) => {
    assert.equal(t.id, maxVocab + 1 + i);
    assert.equal(t.special, true);
  });
  const contents = json.added_tokens.map((t) => t.content);
  assert.equal(contents[6], "<|coord_0|>");
  assert.equal(contents[1005], "<|coord_999|>");
  for (
    const s of [
      "<|im_start|>",
      "<|im_end|>",
      "<|vision_start|>",
      "<|vision_end|>",
      "<|image_pad|>",
      "<|endoftext|>",
    ]
  ) assert.ok(contents.includes(s), s);
});

Deno.test("training is deterministic and independent of corpus order", () => {
  const corpus = tinyCorpus();
  const a = JSON.stringify(buildTinyTokenizer(corpus));
  const b = JSON.stringify(buildTinyTokenizer([...corpus].reverse()));
  assert.equal(a, b);
});

Deno.test("ties between equally frequent pairs break lexicographically", () => {
  // "ab" and "cd" both occur twice; "a b" < "c d" so it is merged first.
  const json = buildTinyTokenizer(["cd ab", "ab cd"], {
    vocabSize: 258,
  }) as unknown as Built;
  assert.deepEqual(json.model.merges, ["a b", "c d"]);
  const rev = buildTinyTokenizer(["ab cd", "cd ab"], {
    vocabSize: 258,
  }) as unknown as Built;
  assert.deepEqual(rev.model.merges, ["a b", "c d"]);
});

Deno.test("vocabSize caps the model vocabulary; minFrequency stops early", () => {
  const corpus = tinyCorpus();
  const small = buildTinyTokenizer(corpus, {
    vocabSize: 300,
  }) as unknown as Built;
  assert.equal(Object.keys(small.model.vocab).length, 300);
  assert.equal(small.added_tokens[0].id, 300);
  const rare = buildTinyTokenizer(["abc"], {
    vocabSize: 400,
  }) as unknown as Built;
  assert.equal(rare.model.merges.length, 0, "no pair occurs twice");
  // Smaller vocab -> longer answers, same text.
  const tok = Tokenizer.fromJson(small);
  const answer = serializeAnswer(THREE);
  assert.equal(tok.decode(tok.encode(answer)), answer);
  assert.ok(tok.encode(answer).length > tinyTokenizer().encode(answer).length);
});

Deno.test("rejects a vocabSize below the byte alphabet", () => {
  assert.throws(
    () => buildTinyTokenizer(["x"], { vocabSize: 100 }),
    /vocabSize must be an integer >= 256/,
  );
  assert.throws(
    () => buildTinyTokenizer(["x"], { minFrequency: 0 }),
    /minFrequency must be an integer >= 1/,
  );
  assert.throws(
    () => buildTinyTokenizer(["x"], { splitPattern: "([" }),
    /splitPattern "\(\[" is not a valid regex/,
  );
});

Deno.test("desc words never share a token with JSON quotes", () => {
  const tok = tinyTokenizer();
  for (const id of tok.encode(serializeAnswer(THREE))) {
    const piece = tok.decodeTokenPiece(id);
    if (/[a-z]/.test(piece) && !piece.startsWith("<|")) {
      assert.doesNotMatch(
        piece,
        /["{}[\]:,]/,
        `token ${JSON.stringify(piece)}`,
      );
    }
  }
});

Deno.test("saved fixture tiny_tokenizer.json is current", async () => {
  const saved = JSON.parse(await Deno.readTextFile(FIXTURE_PATH));
  assert.deepEqual(
    saved,
    buildTinyFixtureJson(),
    "regenerate with: deno run -A tests/trainer/tokenizer/tiny_fixture.ts",
  );
});
