/**
 * `Tokenizer`: a Hugging Face `tokenizer.json` loaded through the maintained
 * pure-JS `@huggingface/tokenizers` (runs unchanged under Deno), plus the
 * detector-specific views the trainer needs: chat special ids, the 1000 coord
 * token ids in bin order, and the exact bytes each token contributes to the
 * stream (the library exposes whole-sequence decoding only, so the per-token
 * view is filled here from the byte-level vocabulary).
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { allCoordTokens, NUM_BINS } from "../coord/mod.ts";
import { InputError } from "../errors.ts";
import { symbolsToBytes } from "./byte_level.ts";
import { SPECIAL_ORDER, SPECIAL_TOKENS, type SpecialName } from "./specials.ts";

export interface SpecialIds {
  imStart: number;
  imEnd: number;
  visionStart: number;
  visionEnd: number;
  imagePad: number;
  endOfText: number;
  /** Qwen pads with `<|endoftext|>`; it is never trained on. */
  pad: number;
}

/** A `tokenizer.json` that cannot serve the detector (one-line message). */
export class TokenizerError extends InputError {
  override name = "TokenizerError";
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function hasByteLevelDecoder(decoder: unknown): boolean {
  if (!isRecord(decoder)) return false;
  if (decoder.type === "ByteLevel") return true;
  return decoder.type === "Sequence" && Array.isArray(decoder.decoders) &&
    decoder.decoders.some(hasByteLevelDecoder);
}

/** id -> token of the model vocabulary (BPE/WordPiece map, Unigram list). */
function modelVocabById(model: Record<string, unknown>): Map<number, string> {
  const out = new Map<number, string>();
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    vocab.forEach((entry, id) => {
      const tok = Array.isArray(entry) ? entry[0] : entry;
      if (typeof tok === "string") out.set(id, tok);
    });
  } else if (isRecord(vocab)) {
    for (const [tok, id] of Object.entries(vocab)) {
      if (typeof id === "number") out.set(id, tok);
    }
  }
  return out;
}

function listMissing(names: string[]): string {
  const coords = names.filter((n) => n.startsWith("<|coord_"));
  const other = names.filter((n) => !n.startsWith("<|coord_"));
  const parts = [...other];
  if (coords.length === NUM_BINS) {
    parts.push("all of <|coord_0|>..<|coord_999|>");
  } else if (coords.length > 0) {
    const head = coords.slice(0, 3).join(", ");
    parts.push(
      coords.length > 3 ? `${head}, ... (${coords.length} coord tokens)` : head,
    );
  }
  return parts.join(", ");
}

export class Tokenizer {
  /** Largest id + 1 over the model vocabulary and the added tokens. */
  readonly vocabSize: number;
  readonly specialIds: Readonly<SpecialIds>;
  /** Id of `<|coord_k|>` at index k (k = 0..999). */
  readonly coordIds: Int32Array;
  /** Where this tokenizer came from, for error messages. */
  readonly source: string;

  readonly #hf: HfTokenizer;
  readonly #json: Record<string, unknown>;
  readonly #binOfId: Map<number, number>;
  readonly #added: Map<number, string>;
  readonly #byteLevel: boolean;
  readonly #bytes = new Map<number, Uint8Array>();
  readonly #pieces = new Map<number, string>();

  private constructor(
    hf: HfTokenizer,
    json: Record<string, unknown>,
    added: AddedTokenJson[],
    source: string,
  ) {
    this.#hf = hf;
    this.#json = json;
    this.source = source;
    this.#byteLevel = hasByteLevelDecoder(json.decoder);
    this.#added = new Map(added.map((t) => [t.id, t.content]));
    const byContent = new Map(added.map((t) => [t.content, t.id]));
    const sp = (name: SpecialName) => byContent.get(SPECIAL_TOKENS[name])!;
    this.specialIds = Object.freeze({
      imStart: sp("imStart"),
      imEnd: sp("imEnd"),
      visionStart: sp("visionStart"),
      visionEnd: sp("visionEnd"),
      imagePad: sp("imagePad"),
      endOfText: sp("endOfText"),
      pad: sp("endOfText"),
    });
    this.coordIds = Int32Array.from(
      allCoordTokens(),
      (t) => byContent.get(t)!,
    );
    this.#binOfId = new Map();
    this.coordIds.forEach((id, k) => this.#binOfId.set(id, k));
    let maxId = -1;
    for (const id of hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    for (const t of added) maxId = Math.max(maxId, t.id);
    this.vocabSize = maxId + 1;
  }

  /** Reads and validates a `tokenizer.json` file. */
  static async fromFile(path: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new TokenizerError(
        `${path}: cannot read tokenizer.json (${(e as Error).message})`,
      );
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new TokenizerError(
        `${path}: not valid JSON (${(e as Error).message})`,
      );
    }
    return Tokenizer.fromJson(obj, path);
  }

  /**
   * Builds from a parsed `tokenizer.json`. Throws `TokenizerError` unless the
   * chat specials and all 1000 coord tokens are added tokens that each
   * encode to exactly their own single id.
   */
  static fromJson(obj: unknown, source = "tokenizer.json"): Tokenizer {
    if (!isRecord(obj) || !isRecord(obj.model)) {
      throw new TokenizerError(
        `${source}: not a Hugging Face tokenizer.json (no "model" object)`,
      );
    }
    const rawAdded = obj.added_tokens ?? [];
    if (!Array.isArray(rawAdded)) {
      throw new TokenizerError(`${source}: "added_tokens" must be an array`);
    }
    const added: AddedTokenJson[] = [];
    const seenIds = new Map<number, string>();
    const byContentSeen = new Map<string, number>();
    for (const [i, t] of rawAdded.entries()) {
      if (
        !isRecord(t) || typeof t.content !== "string" ||
        !Number.isInteger(t.id) || (t.id as number) < 0
      ) {
        throw new TokenizerError(
          `${source}: added_tokens[${i}] needs a string "content" and a non-negative integer "id"`,
        );
      }
      const dupId = byContentSeen.get(t.content);
      if (dupId !== undefined && dupId !== t.id) {
        throw new TokenizerError(
          `${source}: added token ${t.content} is listed twice, with ids ${dupId} and ${t.id}; it must have exactly one id`,
        );
      }
      byContentSeen.set(t.content, t.id as number);
      const prev = seenIds.get(t.id as number);
      if (prev !== undefined && prev !== t.content) {
        throw new TokenizerError(
          `${source}: added tokens ${prev} and ${t.content} share id ${t.id}; each needs its own id`,
        );
      }
      seenIds.set(t.id as number, t.content);
      added.push({
        id: t.id as number,
        content: t.content,
        special: t.special === true,
      });
    }
    const required = [
      ...SPECIAL_ORDER.map((n) => SPECIAL_TOKENS[n]),
      ...allCoordTokens(),
    ];
    const byContent = new Map(added.map((t) => [t.content, t.id]));
    const missing = required.filter((t) => !byContent.has(t));
    if (missing.length > 0) {
      throw new TokenizerError(
        `${source}: missing added tokens ${
          listMissing(missing)
        }; the chat specials and <|coord_0|>..<|coord_999|> must each be an entry of "added_tokens" with its own id`,
      );
    }
    let hf: HfTokenizer;
    try {
      // clean_up_tokenization_spaces defaults to true in the library and
      // would rewrite " ," etc. on decode, breaking lossless round trips.
      hf = new HfTokenizer(obj, { clean_up_tokenization_spaces: false });
    } catch (e) {
      throw new TokenizerError(
        `${source}: @huggingface/tokenizers rejected it (${
          (e as Error).message
        })`,
      );
    }
    // Read from the JSON: the library writes added tokens over model vocab
    // slots with the same id, which would hide exactly this clash.
    const modelTokenOfId = modelVocabById(obj.model);
    for (const t of required) {
      const clash = modelTokenOfId.get(byContent.get(t)!);
      if (clash !== undefined && clash !== t) {
        throw new TokenizerError(
          `${source}: added token ${t} has id ${
            byContent.get(t)
          }, which the model vocabulary already uses for ${
            JSON.stringify(clash)
          }; added tokens need ids of their own`,
        );
      }
    }
    // One encode of every required token back to back must give exactly
    // their ids: this catches tokens that are listed but split (e.g. a
    // conflicting normalizer) without 1006 separate encode calls.
    const expected = required.map((t) => byContent.get(t)!);
    let got: number[];
    try {
      got = hf.encode(required.join(""), { add_special_tokens: false }).ids;
    } catch (e) {
      throw new TokenizerError(
        `${source}: encoding the special tokens failed (${
          (e as Error).message
        })`,
      );
    }
    if (
      got.length !== expected.length || got.some((id, i) => id !== expected[i])
    ) {
      const bad = required.find((t) => {
        const ids = hf.encode(t, { add_special_tokens: false }).ids;
        return ids.length !== 1 || ids[0] !== byContent.get(t);
      }) ?? required[0];
      const ids = hf.encode(bad, { add_special_tokens: false }).ids;
      throw new TokenizerError(
        `${source}: ${bad} must encode to its single added-token id ${
          byContent.get(bad)
        }, got [${ids.join(", ")}]`,
      );
    }
    return new Tokenizer(hf, obj, added, source);
  }

  /**
   * The `tokenizer.json` object this was loaded from, for writing it into a
   * checkpoint folder (`JSON.stringify(tok)` works). Do not mutate it.
   */
  toJSON(): Record<string, unknown> {
    return this.#json;
  }

  /** Text -> ids. Never adds BOS/EOS or any other implicit special token. */
  encode(text: string): number[] {
    return this.#hf.encode(text, { add_special_tokens: false }).ids;
  }

  /** Ids -> text, special tokens kept verbatim, no whitespace clean-up. */
  decode(ids: ArrayLike<number>): string {
    return this.#hf.decode(Array.from(ids), {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: false,
    });
  }

  idToToken(id: number): string | undefined {
    return this.#hf.id_to_token(id) ?? this.#added.get(id);
  }

  tokenToId(token: string): number | undefined {
    return this.#hf.token_to_id(token);
  }

  /** k for the id of `<|coord_k|>`, else `undefined`. */
  coordBinOfId(id: number): number | undefined {
    return this.#binOfId.get(id);
  }

  /** Whether `id` is an added (special or coord) token. */
  isAddedToken(id: number): boolean {
    return this.#added.has(id);
  }

  /**
   * The exact bytes token `id` contributes to the decoded stream. A
   * byte-level BPE token may hold part of a multi-byte UTF-8 character, so
   * lexers over the token stream should work on these bytes.
   */
  tokenBytes(id: number): Uint8Array {
    const hit = this.#bytes.get(id);
    if (hit) return hit;
    let bytes: Uint8Array | undefined;
    const added = this.#added.get(id);
    if (added !== undefined) bytes = utf8.encode(added);
    else {
      const tok = this.#hf.id_to_token(id);
      if (tok === undefined) {
        throw new RangeError(
          `token id ${id} is not in the vocabulary of ${this.source} (size ${this.vocabSize})`,
        );
      }
      // Non-byte-level tokenizers (e.g. Metaspace) have no exact per-token
      // text; decoding the single id is the best available approximation.
      bytes = (this.#byteLevel ? symbolsToBytes(tok) : undefined) ??
        utf8.encode(this.decode([id]));
    }
    this.#bytes.set(id, bytes);
    return bytes;
  }

  /**
   * The text token `id` contributes to the stream. Exact for ASCII and for
   * tokens holding whole UTF-8 characters; a token holding only part of a
   * multi-byte character yields U+FFFD here (use `tokenBytes`).
   */
  decodeTokenPiece(id: number): string {
    let piece = this.#pieces.get(id);
    if (piece === undefined) {
      piece = utf8Decoder.decode(this.tokenBytes(id));
      this.#pieces.set(id, piece);
    }
    return piece;
  }
}
