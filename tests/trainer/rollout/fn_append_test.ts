import assert from "node:assert/strict";
import { serializeAppendFragment } from "../../../trainer/rollout/fn_append.ts";
import type { GtObject } from "../../../trainer/data/types.ts";

const fn: GtObject[] = [
  { desc: 'blue "sq" ü', bbox_2d: [1, 2, 30, 40] },
  { desc: "dot", bbox_2d: [999, 0, 999, 0] },
];
const done =
  '{"object_1": {"desc": "a", "bbox_2d": ["<|coord_0|>", "<|coord_0|>", "<|coord_5|>", "<|coord_5|>"]}';

Deno.test("fragment text is exactly the brief's format", () => {
  assert.equal(
    serializeAppendFragment(fn, 2, done),
    ', "object_2": {"desc": "blue \\"sq\\" ü", "bbox_2d": ["<|coord_1|>", "<|coord_2|>", "<|coord_30|>", "<|coord_40|>"]}, ' +
      '"object_3": {"desc": "dot", "bbox_2d": ["<|coord_999|>", "<|coord_0|>", "<|coord_999|>", "<|coord_0|>"]}}',
  );
  assert.equal(serializeAppendFragment([], 1, "{"), "}");
  assert.equal(serializeAppendFragment([], 2, done), "}");
  assert.ok(serializeAppendFragment(fn, 1, "{").startsWith('"object_1": '));
});

Deno.test("prefix + fragment is valid JSON for every prefix shape", () => {
  const shapes = ["{", " {\n", done, done + "  ", done + ", ", done + ","];
  for (const prefix of shapes) {
    for (const objs of [fn, fn.slice(0, 1)]) {
      const text = prefix + serializeAppendFragment(objs, 7, prefix);
      const parsed = JSON.parse(text);
      assert.equal(parsed.object_7.desc, objs[0].desc, prefix);
      assert.equal(Object.keys(parsed).at(-1), `object_${6 + objs.length}`);
    }
  }
  for (const prefix of ["{", done]) {
    assert.deepEqual(
      Object.keys(JSON.parse(prefix + serializeAppendFragment([], 2, prefix))),
      prefix === "{" ? [] : ["object_1"],
    );
  }
});

Deno.test("closed, cut or malformed prefixes are not append-ready, whatever their last character", () => {
  const cases: [string, RegExp][] = [
    ["{}", /top-level object is already closed/],
    [done + "}", /top-level object is already closed/],
    [done + "} ,", /top-level object is already closed/],
    ['{"object_1": {"desc": "}', /ends inside a string/],
    ['{"object_1": {"desc": "a", "bbox_2d": [{}', /not append-ready/],
    ["{,", /"," does not follow a complete entry/],
    ["[{}", /does not start with "\{"/],
  ];
  for (const [prefix, want] of cases) {
    assert.throws(
      () => serializeAppendFragment(fn, 2, prefix),
      (e: Error) =>
        /is not append-ready/.test(e.message) && want.test(e.message),
      prefix,
    );
  }
});

Deno.test("non-append-ready prefixes and bad inputs are rejected", () => {
  assert.throws(
    () => serializeAppendFragment(fn, 1, '{"object_1": {"desc'),
    /not append-ready.*"c"/,
  );
  assert.throws(() => serializeAppendFragment(fn, 1, ""), /not append-ready/);
  assert.throws(
    () => serializeAppendFragment([], 2, done + ", "),
    /no objects to append/,
  );
  assert.throws(() => serializeAppendFragment(fn, 0, "{"), /start index/);
  assert.throws(
    () =>
      serializeAppendFragment([{ desc: "x", bbox_2d: [5, 0, 1, 1] }], 1, "{"),
    /object_1: .*x1<=x2/,
  );
});
