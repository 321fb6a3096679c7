/**
 * Strict, token-aligned parsing of a rollout for matching.
 *
 * The scanner works on the exact bytes each generated token contributes
 * (`tokenBytes`), so every coord value is tied to the position of the token
 * that produced it and the rollout prefix is never re-tokenized. Why not
 * `JSON.parse`: rollouts are usually truncated or partly malformed, and the
 * parse must report byte offsets per token, which no JSON library exposes.
 */
import type { Xyxy } from "../coord/pixels.ts";

/** The tokenizer views the parser needs (`trainer/tokenizer` `Tokenizer`). */
export interface RolloutTokenizer {
  readonly specialIds: { readonly imEnd: number };
  tokenBytes(id: number): Uint8Array;
  coordBinOfId(id: number): number | undefined;
  encode(text: string): number[];
}

/** Why predicted objects were dropped (bbox-only v1). */
export interface DropCounts {
  /** Geometry key `poly`. */
  poly: number;
  /** No geometry, several geometries, or a geometry other than bbox/poly. */
  unknown: number;
  /** `bbox_2d` present but the object or the box is not valid. */
  bbox_invalid: number;
}

export interface ParsedPrediction {
  /** N of the `object_N` key. */
  objectIndex: number;
  desc: string;
  /** Coord bins [x1, y1, x2, y2] as generated. */
  bbox: Xyxy;
  /** Indices of the 4 coord tokens in `prefixIds` (= in the response). */
  coordPositions: [number, number, number, number];
}

export interface ParsedRollout {
  /** The response cut at the first end-of-turn token (exclusive). */
  responseIds: number[];
  /** Append-ready prefix: response tokens up to the last complete object. */
  prefixIds: number[];
  /** Exact text of `prefixIds`; its last non-space char is `{` or `}`. */
  prefixText: string;
  /** Valid bbox predictions among the complete objects, in order. */
  predictions: ParsedPrediction[];
  /**
   * Largest N over the `object_N` keys of all complete entries, dropped
   * ones included (0 when none): FN append numbers its objects after it.
   */
  maxObjectIndex: number;
  /** True when the response has no top-level `{` (prefix falls back to `{`). */
  invalid: boolean;
  drops: DropCounts;
  /** True when the prefix's final token was cut and re-encoded. */
  reencodedTail: boolean;
  /** How the scan ended. */
  stop: "closed" | "truncated" | "syntax" | "invalid";
}

const enum B {
  Quote = 0x22,
  Backslash = 0x5c,
  Colon = 0x3a,
  Comma = 0x2c,
  LBrace = 0x7b,
  RBrace = 0x7d,
  LBracket = 0x5b,
  RBracket = 0x5d,
}

/** Thrown inside the scanner; `eof` distinguishes truncation from syntax. */
class Stop {
  constructor(readonly eof: boolean) {}
}

/** Thrown when the top-level object closes: the scan is complete. */
class Closed {}

interface StrTok {
  kind: "string";
  /** Content byte range (quotes excluded). */
  start: number;
  end: number;
  value: string;
}
interface ArrTok {
  kind: "array";
  items: Val[];
}
interface ObjTok {
  kind: "object";
  members: [string, Val][];
}
interface OtherTok {
  kind: "other";
}
type Val = StrTok | ArrTok | ObjTok | OtherTok;

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });
const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/;

class Scanner {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  peek(): number {
    if (this.pos >= this.b.length) throw new Stop(true);
    return this.b[this.pos];
  }
  ws(): void {
    while (this.pos < this.b.length) {
      const c = this.b[this.pos];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }
  expect(c: number): void {
    if (this.peek() !== c) throw new Stop(false);
    this.pos++;
  }
  string(): StrTok {
    this.expect(B.Quote);
    const start = this.pos;
    let escape = false;
    for (;;) {
      const c = this.peek();
      this.pos++;
      if (escape) escape = false;
      else if (c === B.Backslash) escape = true;
      else if (c === B.Quote) break;
      else if (c < 0x20) throw new Stop(false);
    }
    const end = this.pos - 1;
    let value: string;
    try {
      value = JSON.parse(
        `"${fatalUtf8.decode(this.b.subarray(start, end))}"`,
      ) as string;
    } catch {
      throw new Stop(false);
    }
    return { kind: "string", start, end, value };
  }
  value(): Val {
    this.ws();
    const c = this.peek();
    if (c === B.Quote) return this.string();
    if (c === B.LBrace) return this.object();
    if (c === B.LBracket) {
      this.pos++;
      const items: Val[] = [];
      this.ws();
      if (this.peek() === B.RBracket) {
        this.pos++;
        return { kind: "array", items };
      }
      for (;;) {
        items.push(this.value());
        this.ws();
        const d = this.peek();
        this.pos++;
        if (d === B.RBracket) return { kind: "array", items };
        if (d !== B.Comma) throw new Stop(false);
      }
    }
    // number / true / false / null: only needed to skip unknown geometry.
    const rest = String.fromCharCode(
      ...this.b.subarray(this.pos, Math.min(this.b.length, this.pos + 64)),
    );
    const m = NUMBER_RE.exec(rest) ?? /^(?:true|false|null)/.exec(rest);
    if (!m) {
      if (
        /^(?:t(?:r(?:u)?)?|f(?:a(?:l(?:s)?)?)?|n(?:u(?:l)?)?|-)$/.test(rest)
      ) {
        throw new Stop(true);
      }
      throw new Stop(false);
    }
    this.pos += m[0].length;
    // A number that reaches the end may still be growing.
    if (this.pos >= this.b.length) throw new Stop(true);
    return { kind: "other" };
  }
  object(): ObjTok {
    this.expect(B.LBrace);
    const members: [string, Val][] = [];
    this.ws();
    if (this.peek() === B.RBrace) {
      this.pos++;
      return { kind: "object", members };
    }
    for (;;) {
      this.ws();
      const key = this.string().value;
      this.ws();
      this.expect(B.Colon);
      members.push([key, this.value()]);
      this.ws();
      const d = this.peek();
      this.pos++;
      if (d === B.RBrace) return { kind: "object", members };
      if (d !== B.Comma) throw new Stop(false);
    }
  }
}

const OBJECT_KEY = /^object_([1-9]\d*)$/;

type Verdict =
  | { ok: true; desc: string; bbox: Xyxy; coordPositions: number[] }
  | { ok: false; kind: keyof DropCounts };

/** Bbox-only v1 check of one complete `"object_N": {...}` entry. */
function judge(
  key: string,
  value: ObjTok,
  coordAt: (s: StrTok) => { pos: number; bin: number } | undefined,
): Verdict {
  const keys = value.members.map(([k]) => k);
  const geometry = keys.filter((k) => k !== "desc");
  if (geometry.length !== 1 || (geometry[0] !== "bbox_2d")) {
    return {
      ok: false,
      kind: geometry.length === 1 && geometry[0] === "poly"
        ? "poly"
        : "unknown",
    };
  }
  const bad: Verdict = { ok: false, kind: "bbox_invalid" };
  const descs = value.members.filter(([k]) => k === "desc");
  if (!OBJECT_KEY.test(key) || descs.length !== 1) return bad;
  const desc = descs[0][1];
  if (desc.kind !== "string" || desc.value.trim() === "") return bad;
  const box = value.members.find(([k]) => k === "bbox_2d")![1];
  if (box.kind !== "array" || box.items.length !== 4) return bad;
  const coords = box.items.map((it) =>
    it.kind === "string" ? coordAt(it) : undefined
  );
  if (coords.some((c) => c === undefined)) return bad;
  const bins = coords.map((c) => c!.bin) as Xyxy;
  if (bins[0] > bins[2] || bins[1] > bins[3]) return bad;
  return {
    ok: true,
    desc: desc.value,
    bbox: bins,
    coordPositions: coords.map((c) => c!.pos),
  };
}

/**
 * Parses a generated response for Channel-B matching.
 *
 * The response is cut at the first `<|im_end|>` (the suffix is discarded).
 * The first non-space character must be the top-level `{`; then entries
 * `"object_N": {"desc": "...", "bbox_2d": ["<|coord_a|>", ...]}` are read
 * until the top-level `}`, the end, or the first syntax error. A bbox value
 * counts only when each of its 4 strings is exactly one coord token in the
 * stream; its token index is recorded. Complete entries that are not valid
 * bbox objects are dropped and counted (`poly`, `unknown`, `bbox_invalid`);
 * an entry whose value is not an object at all counts as `unknown`, and the
 * scan goes on past it.
 *
 * The append-ready prefix ends right after the last complete entry (or the
 * top-level `{`): whole generated tokens, except that when the cut falls
 * inside the final token, that token's kept part is re-encoded and must give
 * back exactly the same bytes. Without a top-level `{` the rollout is
 * invalid: prefix `{`, zero predictions.
 *
 * @example
 * const r = parseRolloutForMatching(tok, generatedIds);
 * r.predictions[0].bbox; // [x1, y1, x2, y2] bins
 * r.prefixText;          // '{"object_1": {...}'
 */
export function parseRolloutForMatching(
  tokenizer: RolloutTokenizer,
  responseTokenIds: ArrayLike<number>,
): ParsedRollout {
  const all = Array.from(responseTokenIds);
  const eot = all.indexOf(tokenizer.specialIds.imEnd);
  const ids = eot >= 0 ? all.slice(0, eot) : all;

  const starts: number[] = [];
  const pieces = ids.map((id) => tokenizer.tokenBytes(id));
  let total = 0;
  for (const p of pieces) {
    starts.push(total);
    total += p.length;
  }
  const bytes = new Uint8Array(total);
  pieces.forEach((p, i) => bytes.set(p, starts[i]));
  const tokenAt = new Map(starts.map((s, i) => [s, i]));

  const drops: DropCounts = { poly: 0, unknown: 0, bbox_invalid: 0 };
  const predictions: ParsedPrediction[] = [];
  const sc = new Scanner(bytes);
  sc.ws();
  if (sc.pos >= bytes.length || bytes[sc.pos] !== B.LBrace) {
    return {
      responseIds: ids,
      prefixIds: tokenizer.encode("{"),
      prefixText: "{",
      predictions,
      maxObjectIndex: 0,
      invalid: true,
      drops,
      reencodedTail: false,
      stop: "invalid",
    };
  }
  sc.pos++;
  let cut = sc.pos;
  let maxObjectIndex = 0;
  let stop: ParsedRollout["stop"] = "truncated";

  const coordAt = (s: StrTok) => {
    const t = tokenAt.get(s.start);
    if (t === undefined || starts[t] + pieces[t].length !== s.end) {
      return undefined;
    }
    const bin = tokenizer.coordBinOfId(ids[t]);
    return bin === undefined ? undefined : { pos: t, bin };
  };

  try {
    sc.ws();
    if (sc.peek() === B.RBrace) throw new Closed();
    for (;;) {
      sc.ws();
      const key = sc.string().value;
      sc.ws();
      sc.expect(B.Colon);
      sc.ws();
      const value = sc.value();
      const m = OBJECT_KEY.exec(key);
      if (m) maxObjectIndex = Math.max(maxObjectIndex, Number(m[1]));
      // A value that is not an object (`"object_4": 123`) is dropped like
      // any other non-box entry. The prefix never ends right after it (it
      // would not be append-ready); a later complete object carries it.
      const v: Verdict = value.kind === "object"
        ? judge(key, value, coordAt)
        : { ok: false, kind: "unknown" };
      if (value.kind === "object") cut = sc.pos;
      if (v.ok) {
        predictions.push({
          objectIndex: Number(m![1]),
          desc: v.desc,
          bbox: v.bbox,
          coordPositions: v.coordPositions as [number, number, number, number],
        });
      } else drops[v.kind]++;
      sc.ws();
      const d = sc.peek();
      sc.pos++;
      if (d === B.RBrace) throw new Closed();
      if (d !== B.Comma) throw new Stop(false);
    }
  } catch (e) {
    if (e instanceof Closed) stop = "closed";
    else if (e instanceof Stop) stop = e.eof ? "truncated" : "syntax";
    else throw e;
  }

  // Token holding the last prefix byte; cut >= 1 because of the `{`.
  let t = 0;
  while (t + 1 < ids.length && starts[t + 1] < cut) t++;
  let prefixIds = ids.slice(0, t + 1);
  let reencodedTail = false;
  if (starts[t] + pieces[t].length !== cut) {
    const kept = bytes.subarray(starts[t], cut);
    let text: string;
    try {
      text = fatalUtf8.decode(kept);
    } catch {
      throw new Error(
        `rollout prefix cut inside token ${t} (id ${
          ids[t]
        }) splits a UTF-8 character; cannot re-encode it`,
      );
    }
    const re = tokenizer.encode(text);
    const back = re.flatMap((id) => Array.from(tokenizer.tokenBytes(id)));
    if (back.length !== kept.length || back.some((b, i) => b !== kept[i])) {
      throw new Error(
        `re-encoding the cut final token ${
          JSON.stringify(text)
        } of a rollout prefix does not give back the same text; the tokenizer is not lossless`,
      );
    }
    prefixIds = [...ids.slice(0, t), ...re];
    reencodedTail = true;
  }
  return {
    responseIds: ids,
    prefixIds,
    prefixText: new TextDecoder().decode(bytes.subarray(0, cut)),
    predictions,
    maxObjectIndex,
    invalid: false,
    drops,
    reencodedTail,
    stop,
  };
}
