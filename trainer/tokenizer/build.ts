/**
 * Builds the byte-level BPE `tokenizer.json` of the built-in tiny model from
 * a text corpus (rendered chat prompts and JSON answers).
 *
 * Why a hand-written trainer: `@huggingface/tokenizers` (pure JS) only
 * encodes, and the official napi binding (npm `tokenizers`) exposes
 * `train(files)` without any trainer options (no vocab size, no byte-level
 * initial alphabet) while shipping ~64 MiB of native binaries. The algorithm
 * below is the textbook BPE loop: repeatedly merge the most frequent adjacent
 * symbol pair (ties broken lexicographically, so the output depends only on
 * the corpus multiset), which is all the tiny model needs.
 *
 * The pre-tokenizer differs from Qwen's on purpose: Qwen's regex cuts JSON
 * punctuation away from keys and digits, which costs ~30 tokens per object.
 * Here a piece is a newline run, a word (letters, digits, `_`, with at most
 * one leading space) or a punctuation run; so `", "` between coord tokens
 * and `": {"` become single tokens while desc words (letters, digits) never
 * share a token with the quotes around them. Newlines are pieces of their own, so
 * encoding the whole chat text equals encoding prompt and answer apart.
 * `QWEN_SPLIT_PATTERN` builds a tokenizer that splits exactly like Qwen's.
 */
import { allCoordTokens } from "../coord/mod.ts";
import { BYTE_SYMBOLS, bytesToSymbols } from "./byte_level.ts";
import { SPECIAL_ORDER, SPECIAL_TOKENS } from "./specials.ts";

/** Oniguruma-compatible split pattern (also valid as a JS `u` regex). */
export const TINY_SPLIT_PATTERN =
  "[\\r\\n]+| ?[\\p{L}\\p{N}_]+|[^\\r\\n\\p{L}\\p{N}_]+";

/**
 * Qwen2/Qwen3's own split pattern, for building a tokenizer that
 * pre-tokenizes exactly like the real model (tests of the real code path).
 */
export const QWEN_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface BuildOptions {
  /**
   * Size of the BPE model vocabulary: 256 byte symbols plus learned merges
   * (the 1006 added tokens come on top). Default 512.
   */
  vocabSize?: number;
  /** A pair is merged only if it occurs at least this often. Default 2. */
  minFrequency?: number;
  /**
   * Split regex (Oniguruma syntax that is also a valid JS `u` regex).
   * Default `TINY_SPLIT_PATTERN`.
   */
  splitPattern?: string;
}

const ADDED_CONTENTS = [
  ...SPECIAL_ORDER.map((n) => SPECIAL_TOKENS[n]),
  ...allCoordTokens(),
];
const ADDED_SET = new Set(ADDED_CONTENTS);
const ADDED_RE = /<\|[a-z0-9_]+\|>/g;

/** Text between added tokens, as the tokenizer sees it before pre-tokenizing. */
function splitOnAdded(text: string): string[] {
  const out: string[] = [];
  let last = 0;
  for (const m of text.matchAll(ADDED_RE)) {
    if (!ADDED_SET.has(m[0])) continue;
    if (m.index > last) out.push(text.slice(last, m.index));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function pairKey(a: string, b: string): string {
  // Byte-level symbols never contain U+0020, so a space separates safely.
  return `${a} ${b}`;
}

/**
 * Trains byte-level BPE on `texts` and returns a complete `tokenizer.json`
 * object (BPE model, split + ByteLevel pre-tokenizer, ByteLevel decoder, and
 * the chat specials and `<|coord_0|>`..`<|coord_999|>` as special added
 * tokens after the model vocabulary).
 */
export function buildTinyTokenizer(
  texts: string[],
  opts: BuildOptions = {},
): Record<string, unknown> {
  const vocabSize = opts.vocabSize ?? 512;
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < 256) {
    throw new RangeError(
      `vocabSize must be an integer >= 256 (the byte alphabet), got ${vocabSize}`,
    );
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new RangeError(
      `minFrequency must be an integer >= 1, got ${minFrequency}`,
    );
  }
  const pattern = opts.splitPattern ?? TINY_SPLIT_PATTERN;
  let split: RegExp;
  try {
    split = new RegExp(pattern, "gu");
  } catch (e) {
    throw new SyntaxError(
      `splitPattern ${JSON.stringify(pattern)} is not a valid regex (${
        (e as Error).message
      })`,
    );
  }
  const enc = new TextEncoder();
  const wordFreq = new Map<string, number>();
  for (const text of texts) {
    for (const segment of splitOnAdded(text)) {
      for (const m of segment.matchAll(split)) {
        const w = bytesToSymbols(enc.encode(m[0]));
        wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1);
      }
    }
  }
  const words = [...wordFreq.entries()].map(([w, freq]) => ({
    symbols: Array.from(w),
    freq,
  }));

  // A Map, not an object literal: merged strings such as "constructor"
  // would collide with Object.prototype under `in`.
  const vocab = new Map<string, number>();
  BYTE_SYMBOLS.forEach((s, b) => vocab.set(s, b));
  const merges: string[] = [];
  let nextId = 256;
  while (nextId < vocabSize) {
    const counts = new Map<string, number>();
    for (const { symbols, freq } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const k = pairKey(symbols[i], symbols[i + 1]);
        counts.set(k, (counts.get(k) ?? 0) + freq);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [k, c] of counts) {
      if (
        c > bestCount || (c === bestCount && best !== undefined && k < best)
      ) {
        best = k;
        bestCount = c;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    const [a, b] = best.split(" ");
    const merged = a + b;
    merges.push(best);
    if (!vocab.has(merged)) vocab.set(merged, nextId++);
    for (const w of words) {
      const s = w.symbols;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(s[i]);
      }
      w.symbols = out;
    }
  }

  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: false,
    use_regex: false,
  };
  const added = ADDED_CONTENTS.map((content, i) => ({
    id: nextId + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        {
          type: "Split",
          pattern: { Regex: pattern },
          behavior: "Isolated",
          invert: false,
        },
        byteLevel,
      ],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}
