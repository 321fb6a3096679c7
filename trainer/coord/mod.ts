export * from "./codec.ts";
export * from "./pixels.ts";
