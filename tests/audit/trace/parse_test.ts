import assert from "node:assert/strict";
import {
  parseTrace,
  readTrace,
  TraceFormatError,
} from "../../../audit/trace/parse.ts";
import { buildCleanTrace, toText } from "./synthetic.ts";

function lines(): string[] {
  return toText(buildCleanTrace({ steps: 2 })).split("\n");
}

Deno.test("parse: a clean trace parses with 1-based line numbers", () => {
  const parsed = parseTrace(lines().join("\n"));
  assert.equal(parsed[0].line, 1);
  assert.equal(parsed[0].rec.kind, "run");
  assert.equal(parsed.at(-1)!.line, parsed.length);
});

Deno.test("parse: invalid JSON names the line", () => {
  const l = lines();
  l[3] = l[3].slice(0, 20);
  assert.throws(
    () => parseTrace(l.join("\n"), "runs/x/trace.jsonl"),
    (e: unknown) =>
      e instanceof TraceFormatError &&
      /^runs\/x\/trace\.jsonl:4: not valid JSON/.test(e.message),
  );
});

Deno.test("parse: a torn final line says the run was killed mid-write", () => {
  const text = lines().join("\n").replace(/\n$/, "").slice(0, -10);
  assert.throws(
    () => parseTrace(text),
    /no newline, so the run was probably killed mid-write/,
  );
});

Deno.test("parse: a missing field names line, record kind and field", () => {
  const l = lines();
  const rec = JSON.parse(l[2]);
  delete rec.useCache;
  l[2] = JSON.stringify(rec);
  assert.throws(
    () => parseTrace(l.join("\n")),
    /^Error: trace\.jsonl:3: malformed trace record \("forward" record\): field useCache:/,
  );
});

Deno.test("parse: a misspelled (unknown) field is rejected, not ignored", () => {
  const l = lines();
  const rec = JSON.parse(l[2]);
  rec.use_cache = false;
  l[2] = JSON.stringify(rec);
  assert.throws(() => parseTrace(l.join("\n")), /trace\.jsonl:3: .*use_cache/);
});

Deno.test("parse: wrong value types and unknown kinds are rejected", () => {
  const l = lines();
  const rec = JSON.parse(l[2]);
  rec.positionIdsRows = 5;
  l[2] = JSON.stringify(rec);
  assert.throws(() => parseTrace(l.join("\n")), /:3: .*positionIdsRows/);
  const l2 = lines();
  l2[1] = JSON.stringify({ kind: "mystery" });
  assert.throws(() => parseTrace(l2.join("\n")), /:2: malformed/);
});

Deno.test("parse: header must come first and only once; empty is an error", () => {
  const l = lines();
  assert.throws(
    () => parseTrace(l.slice(1).join("\n")),
    /first record must be the "run" header/,
  );
  assert.throws(
    () => parseTrace([l[0], ...l].join("\n")),
    /:2: a second "run" header/,
  );
  assert.throws(() => parseTrace("\n\n"), /empty trace/);
});

Deno.test("readTrace: a final line without its newline is reported as torn, not parsed", () => {
  const text = lines().join("\n");
  assert.ok(text.endsWith("\n"));
  const whole = readTrace(text);
  assert.equal(whole.tornLine, null);
  // cut mid-line: the complete records stay, the torn line is named
  const cut = readTrace(text.slice(0, -10));
  assert.equal(cut.tornLine, whole.lines.length);
  assert.equal(cut.lines.length, whole.lines.length - 1);
  // a final line that is valid JSON but lacks its newline is torn too
  assert.equal(readTrace(text.replace(/\n$/, "")).tornLine, whole.lines.length);
  // a corrupt line before the end is a format error, in one line
  const l = lines();
  l[1] = "{\n";
  assert.throws(
    () => readTrace(l.join("\n")),
    (e: unknown) =>
      e instanceof TraceFormatError && !e.message.includes("\n") &&
      /:2: not valid JSON/.test(e.message),
  );
});
