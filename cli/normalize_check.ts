import type { Command } from "commander";
import { UsageError } from "./main.ts";

export function register(program: Command): void {
  program.command("normalize-check").description("(under construction)").action(
    () => {
      throw new UsageError("'normalize-check' is not built yet");
    },
  );
}
