/**
 * Test helper: a fixed synthetic chat corpus and the tiny tokenizer built
 * from it. Deliberately independent of the data engineer's synth module so
 * tokenizer tests pin numbers that only this folder can change.
 *
 * `deno run -A tests/trainer/tokenizer/tiny_fixture.ts` rewrites
 * `tests/fixtures/tokenizer/tiny_tokenizer.json` (a test checks it is
 * current).
 */
import type { GtObject } from "../../../trainer/data/types.ts";
import { buildTinyTokenizer } from "../../../trainer/tokenizer/build.ts";
import { renderChatText } from "../../../trainer/tokenizer/chat.ts";
import { Tokenizer } from "../../../trainer/tokenizer/tokenizer.ts";

export const FIXTURE_PATH = new URL(
  "../../fixtures/tokenizer/tiny_tokenizer.json",
  import.meta.url,
);

const COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "gray"];
const SHAPES = ["circle", "square", "triangle", "star", "ellipse", "cross"];

/** Fixed objects for sample `i` (a tiny LCG, no Math.random). */
export function corpusObjects(i: number): GtObject[] {
  let s = (i * 2654435761 + 12345) >>> 0;
  const next = (m: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % m;
  };
  const n = 1 + next(6);
  return Array.from({ length: n }, () => {
    const x1 = next(900), y1 = next(900);
    return {
      desc: `${COLORS[next(COLORS.length)]} ${SHAPES[next(SHAPES.length)]}`,
      bbox_2d: [x1, y1, x1 + 1 + next(99), y1 + 1 + next(99)],
    };
  });
}

/** 200 rendered chat texts (image pad count 4) — the training corpus. */
export function tinyCorpus(): string[] {
  return Array.from(
    { length: 200 },
    (_, i) => renderChatText(corpusObjects(i), 4),
  );
}

export function buildTinyFixtureJson(): Record<string, unknown> {
  return buildTinyTokenizer(tinyCorpus());
}

let cached: Tokenizer | undefined;
/** The tiny tokenizer, built once per test process. */
export function tinyTokenizer(): Tokenizer {
  cached ??= Tokenizer.fromJson(buildTinyFixtureJson(), "tiny fixture");
  return cached;
}

if (import.meta.main) {
  const path = FIXTURE_PATH.pathname;
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(buildTinyFixtureJson()) + "\n");
  await Deno.rename(tmp, path);
  console.log(`wrote ${path}`);
}
