import assert from "node:assert/strict";
import { checkText } from "../../../audit/normalize/mod.ts";
import { found } from "./_helpers.ts";

Deno.test("ts: map callbacks bind their parameter to the receiver", async () => {
  const src =
    "export const f = (box: number[], w: number) => box.map((v) => v / 1000 * w);\n";
  const r = await checkText("a.ts", src);
  assert.deepEqual(r.findings.map((f) => [f.line, f.column, f.rule]), [[
    1,
    63,
    "decode-by-1000",
  ]]);
});

Deno.test("ts: destructured defaults and class fields are traced", async () => {
  const src = [
    "export const g = ({ k, norm = 1000 }: { k: number; norm?: number }) => k / norm;",
    "export class R {",
    "  scale = 1000;",
    "  px(x: number) { return x / this.scale; }",
    "}",
    "",
  ].join("\n");
  assert.deepEqual(await found("a.ts", src), [
    "1:norm-param-1000",
    "3:norm-param-1000",
  ]);
});

Deno.test("ts: matchers and assert calls make test expectations", async () => {
  const src = [
    "Deno.test('x', () => {",
    "  assertEquals(decodeCoord(250), 250 / 1000);",
    "  expect(decode(k)).toBeCloseTo(k / 1000);",
    "});",
    "",
  ].join("\n");
  assert.deepEqual(await found("a_test.ts", src), [
    "2:test-expect-1000",
    "3:test-expect-1000",
  ]);
});

Deno.test("ts: times, strides, sizes and seeds are not findings", async () => {
  const src = [
    "const secs = Date.now() / 1000;",
    "setTimeout(() => {}, delaySecs * 1000);",
    "const z = new Float32Array(bins.length * 1000);",
    "z[i * 1000 + k] = 1;",
    "const seed = (s + step * 1000003) & 0x7fffffff;",
    "const MAX_PIXELS = 1000 * 28 * 28;",
    "const kb = bytes / 1000;",
    "",
  ].join("\n");
  assert.deepEqual(await found("coords.ts", src), []);
});

Deno.test("ts: JSX parses; an unrecoverable syntax error names file:line:col", async () => {
  const jsx =
    "export const B = ({ x1 }) => <div style={{ left: x1 / 1000 }} />;\n";
  assert.deepEqual(await found("a.jsx", jsx), ["1:decode-by-1000"]);
  // Past what error recovery repairs: a one-line error naming the spot.
  const broken = "const c = Math.round(x1 * 1000);\nconst = ;\n";
  await assert.rejects(
    () => found("b.ts", broken),
    /b\.ts:2:7: Unexpected token/,
  );
});
