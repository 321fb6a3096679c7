import assert from "node:assert/strict";
import { allCoordTokens } from "../../../trainer/coord/mod.ts";
import {
  Tokenizer,
  TokenizerError,
} from "../../../trainer/tokenizer/tokenizer.ts";
import { SPECIAL_TOKENS } from "../../../trainer/tokenizer/specials.ts";
import { FIXTURE_PATH, tinyTokenizer } from "./tiny_fixture.ts";

type Json = Record<string, unknown> & {
  added_tokens: { id: number; content: string }[];
};

async function fixtureJson(): Promise<Json> {
  return JSON.parse(await Deno.readTextFile(FIXTURE_PATH));
}

function loadError(obj: unknown): string {
  try {
    Tokenizer.fromJson(obj, "bad.json");
  } catch (e) {
    assert.ok(e instanceof TokenizerError, `expected TokenizerError: ${e}`);
    assert.ok(!e.message.includes("\n"), "error must be one line");
    return e.message;
  }
  assert.fail("expected the tokenizer.json to be rejected");
}

Deno.test("every coord token encodes to its own single id in bin order", () => {
  const tok = tinyTokenizer();
  assert.equal(tok.coordIds.length, 1000);
  assert.equal(new Set(tok.coordIds).size, 1000);
  allCoordTokens().forEach((t, k) => {
    assert.deepEqual(tok.encode(t), [tok.coordIds[k]], t);
    assert.equal(tok.tokenToId(t), tok.coordIds[k]);
    assert.equal(tok.idToToken(tok.coordIds[k]), t);
    assert.equal(tok.coordBinOfId(tok.coordIds[k]), k);
  });
  assert.equal(tok.coordBinOfId(tok.specialIds.imEnd), undefined);
  assert.equal(tok.coordBinOfId(tok.encode("a")[0]), undefined);
});

Deno.test("chat specials are single ids; pad is <|endoftext|>", () => {
  const tok = tinyTokenizer();
  const sp = tok.specialIds;
  const pairs: [number, string][] = [
    [sp.imStart, SPECIAL_TOKENS.imStart],
    [sp.imEnd, SPECIAL_TOKENS.imEnd],
    [sp.visionStart, SPECIAL_TOKENS.visionStart],
    [sp.visionEnd, SPECIAL_TOKENS.visionEnd],
    [sp.imagePad, SPECIAL_TOKENS.imagePad],
    [sp.endOfText, SPECIAL_TOKENS.endOfText],
  ];
  for (const [id, text] of pairs) {
    assert.deepEqual(tok.encode(text), [id], text);
    assert.equal(tok.decodeTokenPiece(id), text);
    assert.ok(tok.isAddedToken(id));
  }
  assert.equal(new Set(pairs.map((p) => p[0])).size, 6);
  assert.equal(sp.pad, sp.endOfText);
  // Specials glued to text still split out as single ids.
  assert.deepEqual(
    tok.encode(`x${SPECIAL_TOKENS.imEnd}y`).filter((id) => id === sp.imEnd),
    [sp.imEnd],
  );
});

Deno.test("encode adds no implicit tokens and decode is lossless", () => {
  const tok = tinyTokenizer();
  assert.deepEqual(tok.encode(""), []);
  const ids = tok.encode("red circle");
  assert.ok(ids.every((id) => !tok.isAddedToken(id)));
  for (
    const text of [
      "red circle",
      'café "ü" 日本\n\n  tabs\tand  spaces ',
      '{"object_1": {"desc": "x\\"y", "bbox_2d": ["<|coord_0|>"]}}',
      " leading and trailing ",
    ]
  ) {
    assert.equal(tok.decode(tok.encode(text)), text);
  }
});

Deno.test("token pieces concatenate to the decoded text, bytes exactly", () => {
  const tok = tinyTokenizer();
  const text = `naïve 日本 <|coord_5|>", "<|im_end|>`;
  const ids = tok.encode(text);
  const bytes = ids.flatMap((id) => [...tok.tokenBytes(id)]);
  assert.deepEqual(
    new Uint8Array(bytes),
    new TextEncoder().encode(text),
  );
  const ascii = `{"object_1": {"desc": "red", "bbox_2d": ["<|coord_9|>"]}}`;
  const asciiIds = tok.encode(ascii);
  assert.equal(asciiIds.map((id) => tok.decodeTokenPiece(id)).join(""), ascii);
  assert.equal(tok.decode(asciiIds), ascii);
  assert.throws(() => tok.tokenBytes(tok.vocabSize + 5), RangeError);
});

Deno.test("toJSON round-trips to an identical tokenizer", async () => {
  const json = await fixtureJson();
  const tok = Tokenizer.fromJson(json);
  const again = Tokenizer.fromJson(JSON.parse(JSON.stringify(tok)));
  assert.deepEqual(again.toJSON(), json);
  const text = '{"object_1": {"desc": "red", "bbox_2d": ["<|coord_3|>"]}}';
  assert.deepEqual(again.encode(text), tok.encode(text));
});

Deno.test("vocabSize covers every id", () => {
  const tok = tinyTokenizer();
  const maxId = Math.max(...tok.coordIds, ...Object.values(tok.specialIds));
  assert.equal(tok.vocabSize, maxId + 1);
});

Deno.test("fromFile loads the fixture and names the path on errors", async () => {
  const tok = await Tokenizer.fromFile(FIXTURE_PATH.pathname);
  assert.equal(tok.coordIds.length, 1000);
  const dir = await Deno.makeTempDir();
  try {
    const missing = `${dir}/nope.json`;
    await assert.rejects(
      () => Tokenizer.fromFile(missing),
      (e: Error) => e instanceof TokenizerError && e.message.includes(missing),
    );
    const broken = `${dir}/broken.json`;
    await Deno.writeTextFile(broken, "{ not json");
    await assert.rejects(
      () => Tokenizer.fromFile(broken),
      (e: Error) =>
        e instanceof TokenizerError && e.message.startsWith(broken) &&
        e.message.includes("not valid JSON"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rejects a tokenizer.json without a model", () => {
  assert.match(loadError(null), /no "model" object/);
  assert.match(loadError({ added_tokens: [] }), /no "model" object/);
});

Deno.test("rejects a missing coord token, naming it", async () => {
  const j = await fixtureJson();
  j.added_tokens = j.added_tokens.filter((t) => t.content !== "<|coord_7|>");
  const msg = loadError(j);
  assert.match(msg, /^bad\.json: missing added tokens <\|coord_7\|>;/);
});

Deno.test("rejects a tokenizer with no coord tokens at all", async () => {
  const j = await fixtureJson();
  j.added_tokens = j.added_tokens.filter((t) =>
    !t.content.startsWith("<|coord_")
  );
  assert.match(loadError(j), /all of <\|coord_0\|>\.\.<\|coord_999\|>/);
});

Deno.test("rejects missing chat specials, naming each", async () => {
  const j = await fixtureJson();
  j.added_tokens = j.added_tokens.filter((t) =>
    t.content !== "<|im_end|>" && t.content !== "<|image_pad|>"
  );
  const msg = loadError(j);
  assert.match(msg, /<\|im_end\|>/);
  assert.match(msg, /<\|image_pad\|>/);
});

Deno.test("rejects a special that is only a model-vocab string", async () => {
  // A coord token merged into the BPE vocab instead of added_tokens would
  // still round-trip text but is not an added token: the loader insists.
  const j = await fixtureJson();
  const entry = j.added_tokens.find((t) => t.content === "<|coord_42|>")!;
  j.added_tokens = j.added_tokens.filter((t) => t !== entry);
  (j.model as { vocab: Record<string, number> }).vocab["<|coord_42|>"] =
    entry.id;
  assert.match(loadError(j), /missing added tokens <\|coord_42\|>/);
});

Deno.test("rejects a coord token listed twice with two ids", async () => {
  const j = await fixtureJson();
  const entry = j.added_tokens.find((t) => t.content === "<|coord_3|>")!;
  j.added_tokens.push({ ...entry, id: 9000 });
  assert.match(loadError(j), /<\|coord_3\|> is listed twice/);
});

Deno.test("rejects added-token ids that clash with the model vocab", async () => {
  const j = await fixtureJson();
  j.added_tokens.find((t) => t.content === "<|im_start|>")!.id = 70;
  assert.match(
    loadError(j),
    /<\|im_start\|> has id 70, which the model vocabulary already uses/,
  );
});

Deno.test("rejects two added tokens sharing one id", async () => {
  const j = await fixtureJson();
  const a = j.added_tokens.find((t) => t.content === "<|coord_1|>")!;
  const b = j.added_tokens.find((t) => t.content === "<|coord_2|>")!;
  b.id = a.id;
  assert.match(loadError(j), /share id/);
});

Deno.test("rejects malformed added_tokens entries", async () => {
  const j = await fixtureJson();
  (j as Record<string, unknown>).added_tokens = [{ content: "<|im_end|>" }];
  assert.match(loadError(j), /added_tokens\[0\] needs/);
  (j as Record<string, unknown>).added_tokens = "nope";
  assert.match(loadError(j), /"added_tokens" must be an array/);
});

Deno.test("surfaces the library's rejection as one line", async () => {
  const j = await fixtureJson();
  (j as Record<string, unknown>).model = { type: "NoSuchModel" };
  assert.match(loadError(j), /@huggingface\/tokenizers rejected it/);
});
