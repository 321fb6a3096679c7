import type { Command } from "commander";
import { UsageError } from "./main.ts";

export function register(program: Command): void {
  program.command("train").description("(under construction)").action(() => {
    throw new UsageError("'train' is not built yet");
  });
}
