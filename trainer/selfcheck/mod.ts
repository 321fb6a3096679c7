/**
 * The trainer side of `stage2 audit --probe` and `--selftest` (loaded
 * lazily by the CLI: it needs TF.js). The audit side, which judges, lives
 * in `audit/probe.ts` and `audit/selftest.ts`.
 */
import { type Fault, withFault } from "../common/faults.ts";
import {
  buildSelftestFixture,
  runWithFault,
  type SelftestFixture,
} from "./fault_runs.ts";
import { probeRun } from "./probe.ts";

export { probeRun };
export type { ProbeMeasurements } from "./probe.ts";

/**
 * What `stage2 audit --selftest` needs from the trainer (structurally the
 * audit's `SelftestRunner`): the shared fixture, one run per fault, and
 * the probes under a fault.
 *
 * @example
 * const report = await runSelftest(selftestRunner(), workDir);
 */
export function selftestRunner() {
  let fx: SelftestFixture | null = null;
  const fixture = () => {
    if (fx === null) throw new Error("selftest: prepare() first");
    return fx;
  };
  return {
    prepare: async (dir: string) => {
      fx = await buildSelftestFixture(dir);
    },
    run: (fault: Fault | null, runDir: string) =>
      runWithFault(fixture(), fault, runDir),
    probe: (runDir: string, fault: Fault | null) =>
      withFault(fault, () => probeRun(runDir)),
  };
}
