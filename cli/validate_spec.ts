import type { Command } from "commander";
import { UsageError } from "./main.ts";

export function register(program: Command): void {
  program.command("validate-spec").description("(under construction)").action(
    () => {
      throw new UsageError("'validate-spec' is not built yet");
    },
  );
}
