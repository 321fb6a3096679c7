/**
 * A worker of pool.ts: claims units of each job it is sent, records a
 * failure in the job's counters and its error buffer, and closes itself
 * once idle for IDLE_MS.
 */
/// <reference lib="deno.worker" />
import { type JobArgs, JOBS, type Sgemm } from "./jobs.ts";
import { openSgemm } from "./blas_lib.ts";
import { claimUnits, CLOSED, ERR_BYTES, FAILED, IDLE_MS } from "./pool.ts";

interface Init {
  libPath: string;
  state: Int32Array;
  err: Uint8Array;
  index: number;
}

interface Job {
  init?: Init;
  job: string;
  args: JobArgs;
  ctl: Int32Array;
  units: number;
}

let init: Init | null = null;
let sgemm: Sgemm = () => {
  throw new Error("BLAS is not open in this worker");
};
let timer: ReturnType<typeof setTimeout> | undefined;

function idle(): void {
  clearTimeout(timer);
  timer = setTimeout(() => {
    // the main thread starts a new worker when it sees CLOSED
    Atomics.store(init!.state, 0, CLOSED);
    self.close();
  }, IDLE_MS);
}

self.onmessage = (e: MessageEvent<Job>) => {
  const m = e.data;
  if (m.init) {
    init = m.init;
    try {
      sgemm = openSgemm(init.libPath);
    } catch (err) {
      const msg = `cannot open ${init.libPath}: ${(err as Error).message}`;
      sgemm = () => {
        throw new Error(msg);
      };
    }
    idle();
    return;
  }
  clearTimeout(timer);
  claimUnits(JOBS[m.job], m.args, m.ctl, m.units, sgemm, (failure) => {
    // the error text first: the main thread reads it once FAILED is set
    const text = String((failure as Error)?.stack ?? failure);
    init!.err.fill(0);
    init!.err.set(new TextEncoder().encode(text).subarray(0, ERR_BYTES - 1));
    Atomics.compareExchange(m.ctl, FAILED, 0, init!.index + 1);
  });
  idle();
};
