import type { Command } from "commander";
import { UsageError } from "./main.ts";

export function register(program: Command): void {
  program.command("infer").description("(under construction)").action(() => {
    throw new UsageError("'infer' is not built yet");
  });
}
