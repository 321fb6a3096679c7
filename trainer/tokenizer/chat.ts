/**
 * Qwen3-VL chat rendering of a detection sample:
 *
 *   <|im_start|>user\n<|vision_start|><|image_pad|>*N<|vision_end|>PROMPT<|im_end|>\n
 *   <|im_start|>assistant\nANSWER<|im_end|>
 *
 * No system turn: Qwen3-VL's own chat template emits none unless the
 * conversation has one, and every token saved matters for the tiny model.
 */
import type { GtObject } from "../data/types.ts";
import {
  classifyAnswerTokens,
  serializeAnswer,
  sortObjects,
} from "./answer.ts";
import { SPECIAL_TOKENS } from "./specials.ts";
import type { Tokenizer } from "./tokenizer.ts";

export { TokenRole } from "./answer.ts";

/** The default user instruction after the image. */
export const DEFAULT_PROMPT =
  "Detect all objects. Answer JSON with desc and bbox_2d.";

export interface CoordSlot {
  /** Index into `RenderedSample.objects` (answer order). */
  object: number;
  /** 0..3 = x1, y1, x2, y2. */
  slot: 0 | 1 | 2 | 3;
  /** Position of the coord token in `inputIds`. */
  pos: number;
}

export interface RenderedSample {
  /** Prompt + answer + `<|im_end|>`, [T]. */
  inputIds: Int32Array;
  /** Index of the first answer token (= length of `renderPrompt`). */
  promptLength: number;
  /** `TokenRole` per token, [T]. */
  roles: Uint8Array;
  /** 4 slots per object, object-major, slot order x1, y1, x2, y2. */
  coordSlots: CoordSlot[];
  /** The objects in answer order (`sortObjects`). */
  objects: GtObject[];
}

export interface ChatSampleInput {
  objects: readonly GtObject[];
  /** Number of `<|image_pad|>` tokens = the image's merged patch count. */
  imagePadCount: number;
  prompt?: string;
}

function checkPadCount(n: number): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `imagePadCount must be an integer >= 1 (the image's merged patch count), got ${n}`,
    );
  }
}

/** The prompt as text (for corpus building and debugging). */
export function renderPromptText(
  imagePadCount: number,
  prompt: string = DEFAULT_PROMPT,
): string {
  checkPadCount(imagePadCount);
  const s = SPECIAL_TOKENS;
  return `${s.imStart}user\n${s.visionStart}${
    s.imagePad.repeat(imagePadCount)
  }${s.visionEnd}${prompt}${s.imEnd}\n${s.imStart}assistant\n`;
}

/** The whole training text: prompt, answer, `<|im_end|>`. */
export function renderChatText(
  objects: readonly GtObject[],
  imagePadCount: number,
  prompt: string = DEFAULT_PROMPT,
): string {
  return renderPromptText(imagePadCount, prompt) + serializeAnswer(objects) +
    SPECIAL_TOKENS.imEnd;
}

/**
 * Prompt ids ending with `<|im_start|>assistant\n` (the generation prefix).
 * Built piecewise so long image-pad runs are not re-tokenized; equal to
 * `tok.encode(renderPromptText(...))` because added tokens and newlines
 * always cut pre-tokenizer pieces.
 */
export function renderPrompt(
  tok: Tokenizer,
  imagePadCount: number,
  prompt: string = DEFAULT_PROMPT,
): Int32Array {
  checkPadCount(imagePadCount);
  const promptIds = tok.encode(prompt);
  const stray = promptIds.find((id) => tok.isAddedToken(id));
  if (stray !== undefined) {
    throw new Error(
      `prompt ${JSON.stringify(prompt)} contains the special token ${
        tok.idToToken(stray)
      }; the prompt must be plain text`,
    );
  }
  const sp = tok.specialIds;
  const user = tok.encode("user\n");
  const nl = tok.encode("\n");
  const assistant = tok.encode("assistant\n");
  const out = new Int32Array(
    1 + user.length + 1 + imagePadCount + 1 + promptIds.length + 1 +
      nl.length + 1 + assistant.length,
  );
  let p = 0;
  const put = (ids: number[]) => {
    out.set(ids, p);
    p += ids.length;
  };
  put([sp.imStart, ...user, sp.visionStart]);
  out.fill(sp.imagePad, p, p + imagePadCount);
  p += imagePadCount;
  put([sp.visionEnd, ...promptIds, sp.imEnd, ...nl, sp.imStart, ...assistant]);
  return out;
}

/**
 * Renders one sample for teacher forcing. Throws if the tokenized answer
 * does not hold exactly the objects' coord tokens in order (a tokenizer
 * that splits coord tokens would otherwise train on wrong slots).
 */
export function renderChatSample(
  tok: Tokenizer,
  input: ChatSampleInput,
): RenderedSample {
  const objects = sortObjects(input.objects);
  const promptIds = renderPrompt(tok, input.imagePadCount, input.prompt);
  const answerIds = tok.encode(serializeAnswer(objects));
  answerIds.push(tok.specialIds.imEnd);
  const promptLength = promptIds.length;
  const inputIds = new Int32Array(promptLength + answerIds.length);
  inputIds.set(promptIds, 0);
  inputIds.set(answerIds, promptLength);
  const roles = new Uint8Array(inputIds.length); // prompt = 0
  roles.set(classifyAnswerTokens(tok, answerIds), promptLength);

  const coordSlots: CoordSlot[] = [];
  for (let i = 0; i < answerIds.length; i++) {
    const bin = tok.coordBinOfId(answerIds[i]);
    if (bin === undefined) continue;
    const n = coordSlots.length;
    const object = Math.floor(n / 4);
    const slot = (n % 4) as 0 | 1 | 2 | 3;
    if (object >= objects.length || objects[object].bbox_2d[slot] !== bin) {
      throw new Error(
        `rendered answer holds <|coord_${bin}|> at answer token ${i} where object ${
          object + 1
        } slot ${slot} was expected; the tokenizer ${tok.source} does not keep coord tokens intact`,
      );
    }
    coordSlots.push({ object, slot, pos: promptLength + i });
  }
  if (coordSlots.length !== 4 * objects.length) {
    throw new Error(
      `rendered answer holds ${coordSlots.length} coord tokens, expected ${
        4 * objects.length
      }; the tokenizer ${tok.source} does not keep coord tokens intact`,
    );
  }
  return { inputIds, promptLength, roles, coordSlots, objects };
}
