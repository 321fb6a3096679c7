/**
 * GPT-2 / Qwen byte-level alphabet: every byte 0..255 is shown as one
 * printable Unicode character so BPE vocabularies can be stored as JSON
 * strings. `@huggingface/tokenizers` keeps its copy of this table private,
 * so the builder (which must emit vocab strings) and the per-token byte view
 * (which the token-aligned parser needs) carry their own; it is the fixed
 * public mapping, not a design choice.
 */

function buildTables(): { toChar: string[]; toByte: Map<string, number> } {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const toChar = new Array<string>(256);
  const set = new Set(printable);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    toChar[b] = String.fromCodePoint(set.has(b) ? b : 256 + extra++);
  }
  const toByte = new Map<string, number>();
  toChar.forEach((c, b) => toByte.set(c, b));
  return { toChar, toByte };
}

const { toChar: BYTE_TO_CHAR, toByte: CHAR_TO_BYTE } = buildTables();

/** The 256 byte-level symbols in byte order (symbol for byte b at index b). */
export const BYTE_SYMBOLS: readonly string[] = BYTE_TO_CHAR;

/** UTF-8 bytes of `text` -> byte-level string (one symbol per byte). */
export function bytesToSymbols(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

/** Byte-level string -> bytes, or `undefined` if a char is not a symbol. */
export function symbolsToBytes(symbols: string): Uint8Array | undefined {
  const out: number[] = [];
  for (const ch of symbols) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return undefined;
    out.push(b);
  }
  return Uint8Array.from(out);
}
