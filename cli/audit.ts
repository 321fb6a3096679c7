import type { Command } from "commander";
import { UsageError } from "./main.ts";

export function register(program: Command): void {
  program.command("audit").description("(under construction)").action(() => {
    throw new UsageError("'audit' is not built yet");
  });
}
