import type { Command } from "commander";
import { UsageError } from "./main.ts";

export function register(program: Command): void {
  program.command("data").description("(under construction)").action(() => {
    throw new UsageError("'data' is not built yet");
  });
}
