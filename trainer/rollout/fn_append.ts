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
 * Throws when the prefix is not append-ready (see `appendReadyProblem`:
 * e.g. a closed `{}` or a prefix cut inside a value), or when it ends with
 * `,` and there is nothing to append (no valid JSON could follow).
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
  const problem = appendReadyProblem(prefixText);
  if (problem) {
    throw new Error(
      `rollout prefix ${
        JSON.stringify(
          prefixText.length > 40 ? "..." + prefixText.slice(-37) : prefixText,
        )
      } is not append-ready: ${problem}`,
    );
  }
  const last = lastNonSpaceChar(prefixText);
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

/**
 * Why `text` is not an append-ready rollout prefix, or null when it is: an
 * open top-level JSON object whose last non-space character is its own
 * `{`, the `}` of a complete entry, or a `,` after one. A light scan of
 * strings and nesting, not a JSON parse: the prefix is by definition not a
 * complete JSON document.
 *
 * @example
 * appendReadyProblem('{"object_1": {"desc": "a"}'); // null
 * appendReadyProblem("{}"); // "its top-level object is already closed"
 */
export function appendReadyProblem(text: string): string | null {
  const start = text.search(/\S/);
  if (start < 0) return "it is empty";
  if (text[start] !== "{") {
    return `it does not start with "{" (got ${JSON.stringify(text[start])})`;
  }
  const last = lastNonSpaceChar(text);
  if (last === "," && !/\}\s*,\s*$/u.test(text)) {
    return 'its "," does not follow a complete entry';
  }
  if (last !== "{" && last !== "}" && last !== ",") {
    return `its last non-space character is ${
      JSON.stringify(last)
    }, expected "{", "}" or ","`;
  }
  let depth = 0, inString = false, escaped = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") {
      if (--depth === 0) return "its top-level object is already closed";
    }
  }
  if (inString) return "it ends inside a string";
  if (depth !== 1) return "it ends inside a nested value";
  return null;
}
