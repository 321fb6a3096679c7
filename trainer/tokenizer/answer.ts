/**
 * The assistant answer: JSON text with coord tokens, and per-token roles
 * that decide which CE weight each answer token gets.
 */
import { coordToken } from "../coord/mod.ts";
import type { GtObject } from "../data/types.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** Per-token role codes (stored in `Uint8Array`s). */
export const TokenRole = {
  /** Prompt / chat template: never supervised. */
  prompt: 0,
  /** JSON structure, keys, quotes, whitespace: CE weight 1. */
  structure: 1,
  /** Inside a `"desc"` value string: CE weight `desc_ce_weight`. */
  desc: 2,
  /** `<|coord_k|>`: no CE, geometry losses only. */
  coord: 3,
  /** `<|im_end|>` closing the answer: CE weight 1. */
  eot: 4,
} as const;
export type TokenRole = typeof TokenRole[keyof typeof TokenRole];

/**
 * Answer order: top-to-bottom then left-to-right (by y1, then x1); ties keep
 * input order (Array.prototype.sort is stable).
 */
export function sortObjects(objects: readonly GtObject[]): GtObject[] {
  return [...objects].sort((a, b) =>
    a.bbox_2d[1] - b.bbox_2d[1] || a.bbox_2d[0] - b.bbox_2d[0]
  );
}

// A desc holding one of these would tokenize to a coord/special id and
// corrupt coord slots or turn boundaries.
const SPECIAL_IN_TEXT =
  /<\|(?:coord_\d+|im_start|im_end|vision_start|vision_end|image_pad|endoftext)\|>/;

/**
 * One entry `"object_{n}": {"desc": "...", "bbox_2d": ["<|coord_a|>", ...]}`
 * (also the unit of Stage-2 FN append). Throws on an empty desc or a box
 * that is not 4 ordered bins, naming `object_{n}`.
 */
export function serializeObjectEntry(n: number, obj: GtObject): string {
  const where = `object_${n}`;
  if (typeof obj.desc !== "string" || obj.desc.length === 0) {
    throw new Error(`${where}: desc must be a non-empty string`);
  }
  const special = SPECIAL_IN_TEXT.exec(obj.desc);
  if (special) {
    throw new Error(
      `${where}: desc ${JSON.stringify(obj.desc)} contains the special token ${
        special[0]
      }; descs must be plain text`,
    );
  }
  const b = obj.bbox_2d;
  if (!Array.isArray(b) || b.length !== 4) {
    throw new Error(`${where}: bbox_2d must have 4 values`);
  }
  let coords: string[];
  try {
    coords = b.map((k) => `"${coordToken(k)}"`);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  if (b[0] > b[2] || b[1] > b[3]) {
    throw new Error(
      `${where}: bbox_2d [${b.join(", ")}] needs x1<=x2 and y1<=y2`,
    );
  }
  return `"${where}": {"desc": ${JSON.stringify(obj.desc)}, "bbox_2d": [${
    coords.join(", ")
  }]}`;
}

/** The full answer JSON for ground truth, objects in `sortObjects` order. */
export function serializeAnswer(objects: readonly GtObject[]): string {
  const entries = sortObjects(objects).map((o, i) =>
    serializeObjectEntry(i + 1, o)
  );
  return `{${entries.join(", ")}}`;
}

const QUOTE = 0x22, BACKSLASH = 0x5c, COLON = 0x3a, COMMA = 0x2c;
const LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;
const DESC_KEY = [0x64, 0x65, 0x73, 0x63]; // "desc"

/**
 * Byte-wise JSON lexer that knows whether each byte lies inside the value
 * string of a `"desc"` key. JSON's structural characters are ASCII and
 * never occur inside a multi-byte UTF-8 sequence, so bytes are exact even
 * when a token ends mid-character. An empty container stack counts as the
 * top-level object, so a suffix that starts between object entries (the
 * FN-append tail) lexes exactly as it does inside the whole answer.
 */
class DescLexer {
  #stack: number[] = [];
  #inString = false;
  #escape = false;
  #isKey = false;
  #isDesc = false;
  #key: number[] = [];
  #lastKeyIsDesc = false;
  #expectValue = false;

  /** Consumes one byte; true iff it is content of a desc value string. */
  feed(b: number): boolean {
    if (this.#inString) {
      if (this.#escape) {
        this.#escape = false;
      } else if (b === BACKSLASH) {
        this.#escape = true;
      } else if (b === QUOTE) {
        this.#inString = false;
        if (this.#isKey) {
          const k = this.#key;
          this.#lastKeyIsDesc = k.length === 4 &&
            k.every((c, i) => c === DESC_KEY[i]);
        }
        this.#expectValue = false;
        return false;
      }
      if (this.#isKey) this.#key.push(b);
      return this.#isDesc;
    }
    const inObject = (this.#stack.at(-1) ?? LBRACE) === LBRACE;
    switch (b) {
      case QUOTE:
        this.#inString = true;
        this.#isKey = inObject && !this.#expectValue;
        this.#isDesc = inObject && this.#expectValue && this.#lastKeyIsDesc;
        this.#key = [];
        break;
      case COLON:
        this.#expectValue = true;
        break;
      case COMMA:
        this.#expectValue = false;
        break;
      case LBRACE:
      case LBRACKET:
        this.#stack.push(b);
        this.#expectValue = false;
        break;
      case RBRACE:
      case RBRACKET:
        this.#stack.pop();
        this.#expectValue = false;
        break;
    }
    return false;
  }
}

/**
 * Roles for an answer token sequence (GT answer, rollout, or FN-append tail
 * starting between object entries). `<|im_end|>` is `eot`, coord tokens are
 * `coord`. A token is `desc` only when EVERY byte it contributes lies inside
 * a desc value string; the quotes delimiting the value are structure, so a
 * token that straddles the value boundary (e.g. `.", "` after a desc ending
 * in ".") is `structure`. Why: structure always keeps CE weight 1, so the
 * model still learns to close the string and continue valid JSON even with
 * `desc_ce_weight = 0`; the price is that a straddling token's desc bytes
 * get full weight. Everything else (keys, punctuation, whitespace, other
 * special tokens) is `structure`.
 */
export function classifyAnswerTokens(
  tok: Tokenizer,
  ids: ArrayLike<number>,
): Uint8Array {
  const roles = new Uint8Array(ids.length);
  const lexer = new DescLexer();
  const imEnd = tok.specialIds.imEnd;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === imEnd) {
      roles[i] = TokenRole.eot;
      continue;
    }
    const bytes = tok.tokenBytes(id);
    let descBytes = 0;
    for (const b of bytes) if (lexer.feed(b)) descBytes++;
    if (tok.coordBinOfId(id) !== undefined) roles[i] = TokenRole.coord;
    else if (bytes.length > 0 && descBytes === bytes.length) {
      roles[i] = TokenRole.desc;
    } else roles[i] = TokenRole.structure;
  }
  return roles;
}
