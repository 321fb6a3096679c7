/**
 * FN append: the text that completes an append-ready rollout prefix with the
 * ground-truth objects the rollout missed. Each entry is rendered by the
 * tokenizer's `serializeObjectEntry`, the same function that renders GT
 * answers, so appended objects look exactly like Stage-1 targets.
 */
import type { GtObject } from "../data/types.ts";
import { serializeObjectEntry } from "../tokenizer/answer.ts";

/** Last non-whitespace character of `text`, or "" when there is none. */
export function lastNonSpaceChar(text: string): string {
  const m = /(\S)\s*$/u.exec(text);
  return m ? m[1] : "";
}

/**
 * Serializes missed GT objects (in GT order) as
 * `"object_{n}": {"desc": ..., "bbox_2d": ["<|coord_a|>", ...]}` with
 * n = startIndex, startIndex + 1, ..., joined by `, `, preceded by `, ` when
 * the prefix ends with `}` (a single space when it ends with a bare `,`), and
 * closed with `}`. The end-of-turn token is not part of the fragment; the
 * batch builder appends `<|im_end|>` as a token.
 *
 * Throws when the prefix is not append-ready (last non-space character not
 * `{`, `}` or `,`), or when it ends with `,` and there is nothing to append
 * (no valid JSON could follow).
 *
 * @example
 * serializeAppendFragment([{ desc: "cat", bbox_2d: [1, 2, 3, 4] }], 3,
 *   '{"object_1": {...}, "object_2": {...}}'.slice(0, -1));
 * // -> ', "object_3": {"desc": "cat", "bbox_2d": ["<|coord_1|>", ...]}}'
 */
export function serializeAppendFragment(
  fnObjects: readonly GtObject[],
  startIndex: number,
  prefixText: string,
): string {
  if (!Number.isInteger(startIndex) || startIndex < 1) {
    throw new RangeError(
      `FN append start index must be an integer >= 1, got ${startIndex}`,
    );
  }
  const last = lastNonSpaceChar(prefixText);
  if (last !== "{" && last !== "}" && last !== ",") {
    throw new Error(
      `rollout prefix is not append-ready: its last non-space character is ${
        JSON.stringify(last)
      }, expected "{", "}" or ","`,
    );
  }
  const entries = fnObjects.map((o, i) =>
    serializeObjectEntry(startIndex + i, o)
  );
  if (entries.length === 0) {
    if (last === ",") {
      throw new Error(
        'rollout prefix ends with "," but there are no objects to append; cut the prefix after the last complete object instead',
      );
    }
    return "}";
  }
  let lead = "";
  if (last === "}") lead = ", ";
  else if (last === "," && !/\s$/u.test(prefixText)) lead = " ";
  return `${lead}${entries.join(", ")}}`;
}
