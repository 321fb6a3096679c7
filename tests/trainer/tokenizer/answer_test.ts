import assert from "node:assert/strict";
import type { GtObject } from "../../../trainer/data/types.ts";
import {
  classifyAnswerTokens,
  serializeAnswer,
  serializeObjectEntry,
  sortObjects,
  TokenRole,
} from "../../../trainer/tokenizer/answer.ts";
import { buildTinyTokenizer } from "../../../trainer/tokenizer/build.ts";
import { Tokenizer } from "../../../trainer/tokenizer/tokenizer.ts";
import { tinyCorpus, tinyTokenizer } from "./tiny_fixture.ts";

const obj = (desc: string, b: number[]): GtObject => ({
  desc,
  bbox_2d: b as GtObject["bbox_2d"],
});

Deno.test("serializeAnswer writes the exact brief format", () => {
  assert.equal(
    serializeAnswer([
      obj("red circle", [12, 40, 230, 260]),
      obj("blue square", [0, 300, 999, 999]),
    ]),
    '{"object_1": {"desc": "red circle", "bbox_2d": ["<|coord_12|>", "<|coord_40|>", "<|coord_230|>", "<|coord_260|>"]}, ' +
      '"object_2": {"desc": "blue square", "bbox_2d": ["<|coord_0|>", "<|coord_300|>", "<|coord_999|>", "<|coord_999|>"]}}',
  );
  assert.equal(serializeAnswer([]), "{}");
  const text = serializeAnswer([obj('say "hi"\\', [1, 2, 3, 4])]);
  assert.deepEqual(JSON.parse(text).object_1.desc, 'say "hi"\\');
});

Deno.test("objects are ordered top-to-bottom, then left-to-right, stably", () => {
  const input = [
    obj("d", [500, 300, 600, 400]),
    obj("a", [900, 10, 950, 20]),
    obj("c", [100, 300, 200, 400]),
    obj("b", [50, 200, 60, 210]),
    obj("c2", [100, 300, 150, 350]), // same (y1, x1) as "c": keeps input order
  ];
  assert.deepEqual(sortObjects(input).map((o) => o.desc), [
    "a",
    "b",
    "c",
    "c2",
    "d",
  ]);
  const keys = Object.entries(JSON.parse(serializeAnswer(input)));
  assert.deepEqual(
    keys.map(([k, v]) => `${k}=${(v as GtObject).desc}`),
    ["object_1=a", "object_2=b", "object_3=c", "object_4=c2", "object_5=d"],
  );
  assert.equal(input[0].desc, "d", "input array is not mutated");
});

Deno.test("serializing a malformed object fails naming it", () => {
  assert.throws(
    () => serializeObjectEntry(3, obj("", [1, 2, 3, 4])),
    /^Error: object_3: desc must be a non-empty string/,
  );
  assert.throws(
    () => serializeObjectEntry(2, obj("x", [1, 2, 1000, 4])),
    /object_2: coord bin 1000 is not an integer in \[0, 999\]/,
  );
  assert.throws(
    () => serializeObjectEntry(1, obj("x", [5, 2, 4, 4])),
    /object_1: bbox_2d \[5, 2, 4, 4\] needs x1<=x2 and y1<=y2/,
  );
  assert.throws(
    () => serializeObjectEntry(4, obj("a <|coord_5|> b", [1, 2, 3, 4])),
    /object_4: desc "a <\|coord_5\|> b" contains the special token <\|coord_5\|>/,
  );
  assert.throws(
    () => serializeObjectEntry(1, obj("x<|im_end|>", [1, 2, 3, 4])),
    /contains the special token <\|im_end\|>/,
  );
  assert.throws(
    () => serializeAnswer([obj("x", [1, 2, 3])]),
    /object_1: bbox_2d must have 4 values/,
  );
});

function rolesOf(tok: Tokenizer, text: string, eot = true) {
  const ids = tok.encode(text);
  if (eot) ids.push(tok.specialIds.imEnd);
  return { ids, roles: classifyAnswerTokens(tok, ids) };
}

function textWithRole(
  tok: Tokenizer,
  ids: number[],
  roles: Uint8Array,
  role: number,
) {
  return ids.filter((_, i) => roles[i] === role).map((id) =>
    tok.decodeTokenPiece(id)
  ).join("|");
}

Deno.test("answer roles: desc values, coords, eot, structure elsewhere", () => {
  const tok = tinyTokenizer();
  const objs = [
    obj("red circle", [12, 40, 230, 260]),
    obj("blue square", [300, 500, 480, 520]),
  ];
  const { ids, roles } = rolesOf(tok, serializeAnswer(objs));
  assert.equal(
    textWithRole(tok, ids, roles, TokenRole.desc),
    "red| circle|blue| square",
  );
  const coords = ids.filter((_, i) => roles[i] === TokenRole.coord);
  assert.deepEqual(
    coords.map((id) => tok.coordBinOfId(id)),
    [12, 40, 230, 260, 300, 500, 480, 520],
  );
  assert.equal(roles.at(-1), TokenRole.eot);
  assert.equal(roles.filter((r) => r === TokenRole.eot).length, 1);
  // Keys, including "desc" itself, and all quotes are structure.
  const structure = textWithRole(tok, ids, roles, TokenRole.structure);
  assert.match(structure, /desc/);
  assert.match(structure, /object_1/);
  assert.ok(!roles.includes(TokenRole.prompt));
});

Deno.test("desc values are found by key, not by position or content", () => {
  const tok = tinyTokenizer();
  // Same words as values of other keys, and a desc holding escapes and
  // JSON punctuation: only the desc value's bytes count.
  const text = '{"note": "red circle", "object_1": {"descr": "blue", ' +
    '"desc": "a \\"b\\", {c}: [d]", "bbox_2d": ["<|coord_1|>"]}}';
  const { ids, roles } = rolesOf(tok, text);
  const desc = ids.filter((_, i) => roles[i] === TokenRole.desc).map((id) =>
    tok.decodeTokenPiece(id)
  ).join("");
  // Tokens holding the closing quote are structure, everything inside desc.
  assert.equal(desc, 'a \\"b\\", {c}: [d]');
});

Deno.test("a token straddling the desc boundary is structure", () => {
  // Train a tokenizer where desc values end in "." so `.", "` is one token.
  const corpus = Array.from(
    { length: 50 },
    () =>
      serializeAnswer([obj("dot.", [1, 2, 3, 4]), obj("dot.", [5, 6, 7, 8])]),
  );
  const tok = Tokenizer.fromJson(buildTinyTokenizer(corpus));
  const { ids, roles } = rolesOf(tok, corpus[0]);
  const straddle = ids.findIndex((id) => tok.decodeTokenPiece(id) === '.", "');
  assert.ok(straddle >= 0, "corpus should have learned the straddling token");
  assert.equal(roles[straddle], TokenRole.structure);
  assert.equal(
    textWithRole(tok, ids, roles, TokenRole.desc),
    "dot|dot",
    "only the pure-desc tokens are desc",
  );
});

Deno.test("an FN-append tail classifies as it does inside the full answer", () => {
  const tok = tinyTokenizer();
  const prefix = `{${serializeObjectEntry(1, obj("red star", [1, 2, 3, 4]))}`;
  const tail = `, ${serializeObjectEntry(2, obj("gray cross", [5, 6, 7, 8]))}}`;
  const prefixIds = tok.encode(prefix);
  const tailIds = [...tok.encode(tail), tok.specialIds.imEnd];
  const full = classifyAnswerTokens(tok, [...prefixIds, ...tailIds]);
  const alone = classifyAnswerTokens(tok, tailIds);
  assert.deepEqual(alone, full.slice(prefixIds.length));
  assert.ok(alone.includes(TokenRole.desc));
  // The tail after an empty rollout prefix `{` too.
  const afterBrace = tok.encode(
    `${serializeObjectEntry(1, obj("gray cross", [5, 6, 7, 8]))}}`,
  );
  const braceFull = classifyAnswerTokens(tok, [
    ...tok.encode("{"),
    ...afterBrace,
  ]);
  assert.deepEqual(
    classifyAnswerTokens(tok, afterBrace),
    braceFull.slice(1),
  );
});

Deno.test("classifier survives truncated and non-JSON rollouts", () => {
  const tok = tinyTokenizer();
  const cut = serializeAnswer([obj("red circle", [1, 2, 3, 4])]).slice(0, 30);
  const { roles } = rolesOf(tok, cut, false);
  assert.equal(roles.length, tok.encode(cut).length);
  const junk = rolesOf(tok, 'hello "desc": "x" ]]]}}}{', true);
  assert.equal(junk.roles.at(-1), TokenRole.eot);
  // Multi-byte desc split across tokens: every token fully inside is desc.
  const uni = rolesOf(tok, '{"object_1": {"desc": "日本 ü", "bbox_2d": []}}');
  const bytes = uni.ids.filter((_, i) => uni.roles[i] === TokenRole.desc)
    .flatMap((id) => [...tok.tokenBytes(id)]);
  assert.equal(new TextDecoder().decode(new Uint8Array(bytes)), "日本 ü");
});

Deno.test("the tiny corpus answers classify with desc tokens only inside desc", () => {
  const tok = tinyTokenizer();
  for (const text of tinyCorpus().slice(0, 30)) {
    const answer = text.slice(
      text.indexOf("assistant\n") + 10,
      -"<|im_end|>".length,
    );
    const parsed = JSON.parse(answer) as Record<string, GtObject>;
    const { ids, roles } = rolesOf(tok, answer);
    const desc = textWithRole(tok, ids, roles, TokenRole.desc).replaceAll(
      "|",
      "",
    );
    assert.equal(desc, Object.values(parsed).map((o) => o.desc).join(""));
  }
});
