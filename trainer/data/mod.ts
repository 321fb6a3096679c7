export * from "./types.ts";
export * from "./jsonl.ts";
export * from "./png.ts";
export * from "./image.ts";
export * from "./vision.ts";
export * from "./synth.ts";
export { writeFileAtomic } from "./atomic.ts";
