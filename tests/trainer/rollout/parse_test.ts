import assert from "node:assert/strict";
import {
  parseRolloutForMatching,
  type RolloutTokenizer,
} from "../../../trainer/rollout/parse.ts";
import { serializeAnswer } from "../../../trainer/tokenizer/mod.ts";
import { SAMPLE_OBJECTS, tinyTokenizer } from "./helpers.ts";

const tok = tinyTokenizer();
const imEnd = tok.specialIds.imEnd;
const full = serializeAnswer(SAMPLE_OBJECTS);

function bytesOf(ids: number[]): string {
  return tok.decode(ids);
}

Deno.test("complete answer: all objects, coord positions from the token stream", () => {
  const ids = [...tok.encode(full), imEnd];
  const r = parseRolloutForMatching(tok, ids);
  assert.equal(r.invalid, false);
  assert.equal(r.stop, "closed");
  assert.equal(r.predictions.length, 3);
  assert.deepEqual(
    r.predictions.map((p) => [p.objectIndex, p.desc, p.bbox]),
    [
      [1, "red circle", [10, 20, 300, 400]],
      [2, "blue square", [500, 100, 700, 350]],
      [3, "green triangle", [0, 600, 999, 999]],
    ],
  );
  // Every coord position holds the token of the parsed bin, within the prefix.
  for (const p of r.predictions) {
    p.coordPositions.forEach((pos, i) => {
      assert.ok(pos < r.prefixIds.length);
      assert.equal(tok.coordBinOfId(r.prefixIds[pos]), p.bbox[i]);
    });
  }
  // Prefix = everything but the top-level closing brace; same tokens as
  // generated except a re-encoded final piece.
  assert.equal(r.prefixText, full.slice(0, -1));
  assert.equal(bytesOf(r.prefixIds), r.prefixText);
  assert.equal(r.maxObjectIndex, 3);
});

Deno.test("prefix reuses generated ids; only the final token may be re-encoded", () => {
  const ids = tok.encode(full);
  const r = parseRolloutForMatching(tok, ids);
  const n = r.prefixIds.length;
  // All but the last prefix token are the generated ids, untouched.
  const keep = r.reencodedTail
    ? n - tok.encode(tok.decode(r.prefixIds.slice(-1))).length
    : n;
  assert.deepEqual(r.prefixIds.slice(0, keep), ids.slice(0, keep));
  // The tiny tokenizer merges the closing `"]}}` into one token, so the cut
  // lands inside it and it is re-encoded.
  assert.equal(r.reencodedTail, true);
});

Deno.test("truncated rollout: prefix ends after the last complete object", () => {
  const text = full.slice(0, full.indexOf('"object_3"') + 20);
  const r = parseRolloutForMatching(tok, tok.encode(text));
  assert.equal(r.stop, "truncated");
  assert.equal(r.predictions.length, 2);
  assert.match(r.prefixText, /\]\}$/);
  assert.equal(bytesOf(r.prefixIds), r.prefixText);
  assert.equal(r.maxObjectIndex, 2);
});

Deno.test("end-of-turn cut discards the suffix", () => {
  const one = serializeAnswer(SAMPLE_OBJECTS.slice(0, 1));
  const ids = [...tok.encode(one), imEnd, ...tok.encode(full)];
  const r = parseRolloutForMatching(tok, ids);
  assert.equal(r.predictions.length, 1);
  assert.equal(r.responseIds.length, tok.encode(one).length);
});

Deno.test("no top-level brace: invalid rollout, prefix '{', zero predictions [1.7.4]", () => {
  for (const text of ["", "red circle", '"object_1": {}', "  \n"]) {
    const r = parseRolloutForMatching(tok, [...tok.encode(text), imEnd]);
    assert.equal(r.invalid, true, text);
    assert.equal(r.stop, "invalid");
    assert.equal(r.prefixText, "{");
    assert.equal(tok.decode(r.prefixIds), "{");
    assert.equal(r.predictions.length, 0);
  }
  // A leading brace after whitespace is fine (negative control).
  assert.equal(parseRolloutForMatching(tok, tok.encode(" {")).invalid, false);
});

Deno.test("non-bbox and malformed predictions are dropped and counted by kind", () => {
  const c = (k: number) => `"<|coord_${k}|>"`;
  const text = "{" + [
    `"object_1": {"desc": "a", "poly": [${c(1)}, ${c(2)}, ${c(3)}, ${c(4)}, ${
      c(5)
    }, ${c(6)}]}`,
    `"object_2": {"desc": "b", "point": [1, 2]}`,
    `"object_3": {"desc": "c", "bbox_2d": [${c(1)}, ${c(2)}, ${c(3)}]}`,
    `"object_4": {"desc": "d", "bbox_2d": [${c(9)}, ${c(2)}, ${c(3)}, ${
      c(4)
    }]}`,
    `"object_5": {"desc": "", "bbox_2d": [${c(1)}, ${c(2)}, ${c(3)}, ${c(4)}]}`,
    `"object_6": {"desc": "f", "bbox_2d": [1, 2, 3, 4]}`,
    `"object_7": {"desc": "g", "bbox_2d": ["1", ${c(2)}, ${c(3)}, ${c(4)}]}`,
    `"object_8": {"desc": "h", "bbox_2d": [${c(1)}, ${c(2)}, ${c(3)}, ${
      c(4)
    }], "extra": 1}`,
    `"object_9": {"desc": "i"}`,
    `"thing": {"desc": "j", "bbox_2d": [${c(1)}, ${c(2)}, ${c(3)}, ${c(4)}]}`,
    `"object_12": {"desc": "ok", "bbox_2d": [${c(1)}, ${c(2)}, ${c(3)}, ${
      c(4)
    }]}`,
  ].join(", ") + "}";
  JSON.parse(text); // the fixture itself is valid JSON
  const r = parseRolloutForMatching(tok, tok.encode(text));
  assert.deepEqual(r.drops, { poly: 1, unknown: 3, bbox_invalid: 6 });
  assert.deepEqual(r.predictions.map((p) => p.objectIndex), [12]);
  assert.deepEqual(r.predictions[0].bbox, [1, 2, 3, 4]);
  assert.equal(r.maxObjectIndex, 12);
  assert.equal(r.stop, "closed");
});

Deno.test("coord strings spelled with ordinary tokens are not coord tokens", () => {
  // Build `"<|coord_5|>"` from single-byte tokens: same text, no coord id.
  const byteIds = (s: string) =>
    Array.from(new TextEncoder().encode(s), (b) => {
      for (let id = 0; id < 256; id++) {
        const tb = tok.tokenBytes(id);
        if (tb.length === 1 && tb[0] === b) return id;
      }
      throw new Error("no byte token");
    });
  const head = tok.encode('{"object_1": {"desc": "a", "bbox_2d": [');
  const ids = [
    ...head,
    ...byteIds('"<|coord_5|>"'),
    ...tok.encode(', "<|coord_6|>", "<|coord_7|>", "<|coord_8|>"]}}'),
  ];
  const r = parseRolloutForMatching(tok, ids);
  assert.equal(tok.decode(ids).includes("<|coord_5|>"), true);
  assert.equal(r.predictions.length, 0);
  assert.equal(r.drops.bbox_invalid, 1);
});

Deno.test("syntax error stops the scan; earlier objects survive", () => {
  const one = serializeAnswer(SAMPLE_OBJECTS.slice(0, 1)).slice(0, -1);
  const r = parseRolloutForMatching(
    tok,
    tok.encode(one + ', "object_2" {"desc": "x"}}'),
  );
  assert.equal(r.stop, "syntax");
  assert.equal(r.predictions.length, 1);
  assert.equal(r.prefixText, one);
});

Deno.test("a lossy re-encode of the cut final token is an error", () => {
  const lossy: RolloutTokenizer = {
    specialIds: tok.specialIds,
    tokenBytes: (id) => tok.tokenBytes(id),
    coordBinOfId: (id) => tok.coordBinOfId(id),
    encode: (text) => tok.encode(text + " "),
  };
  assert.throws(
    () => parseRolloutForMatching(lossy, tok.encode(full)),
    /does not give back the same text/,
  );
});

Deno.test("an entry whose value is not an object is dropped as unknown; parsing goes on and FN numbering counts it", () => {
  const c = (k: number) => `"<|coord_${k}|>"`;
  const valid = `{"desc": "ok", "bbox_2d": [${c(1)}, ${c(2)}, ${c(3)}, ${
    c(4)
  }]}`;
  const text = `{"object_4": 123, "object_3": ${valid}}`;
  JSON.parse(text); // valid JSON: nothing here is a syntax error
  const r = parseRolloutForMatching(tok, [...tok.encode(text), imEnd]);
  assert.equal(r.stop, "closed");
  assert.deepEqual(r.predictions.map((p) => [p.objectIndex, p.bbox]), [
    [3, [1, 2, 3, 4]],
  ]);
  assert.deepEqual(r.drops, { poly: 0, unknown: 1, bbox_invalid: 0 });
  assert.equal(r.maxObjectIndex, 4, "appended objects start at object_5");
  assert.equal(r.prefixText, text.slice(0, -1));
  // Non-object values of every JSON kind, also as the last entry: the
  // append-ready prefix still ends after the last complete object.
  for (const v of ['"x"', "[1, 2]", "null", "true", "-2.5e3"]) {
    const t = `{"object_1": ${valid}, "object_2": ${v}}`;
    const p = parseRolloutForMatching(tok, tok.encode(t));
    assert.equal(p.drops.unknown, 1, v);
    assert.equal(p.predictions.length, 1, v);
    assert.equal(p.prefixText, `{"object_1": ${valid}`, v);
    assert.equal(p.maxObjectIndex, 2, v);
  }
});
