export { type SpecialIds, Tokenizer, TokenizerError } from "./tokenizer.ts";
export {
  type BuildOptions,
  buildTinyTokenizer,
  QWEN_SPLIT_PATTERN,
  TINY_SPLIT_PATTERN,
} from "./build.ts";
export {
  classifyAnswerTokens,
  serializeAnswer,
  serializeObjectEntry,
  sortObjects,
  TokenRole,
} from "./answer.ts";
export {
  type ChatSampleInput,
  type CoordSlot,
  DEFAULT_PROMPT,
  renderChatSample,
  renderChatText,
  type RenderedSample,
  renderPrompt,
  renderPromptText,
} from "./chat.ts";
export { SPECIAL_ORDER, SPECIAL_TOKENS, type SpecialName } from "./specials.ts";
