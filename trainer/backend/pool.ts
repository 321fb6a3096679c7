/**
 * Worker threads for the blas backend's kernels. A job (jobs.ts) is a list
 * of independent units; the main thread and `threads - 1` workers claim
 * units one at a time from a shared counter until none are left, on tensor
 * memory shared through SharedArrayBuffers. The kernel call returns when
 * every unit is done, so TF.js sees a synchronous kernel.
 *
 * Claiming (rather than a fixed split) matters on a shared machine: a
 * worker that is not scheduled in time simply takes fewer units, and the
 * main thread never waits for a worker that has not started a unit. Results
 * do not depend on who ran which unit (see jobs.ts), so they are the same
 * for any thread count. A job whose arrays are not all shared (a tensor
 * made by a cpu kernel) runs on the main thread alone.
 *
 * Lifetime: a live worker keeps a Deno process from exiting, so a worker
 * closes itself after IDLE_MS without a job and a new one is started when
 * a job next comes. A job posted to a worker that is just closing is lost
 * harmlessly: the other threads take its units. (`node:worker_threads`
 * workers could be unref'd instead, but Deno copies shared memory element
 * by element when posting to them, which costs seconds per step.)
 */
import { type JobArgs, JOBS, type Sgemm } from "./jobs.ts";

/** Worker states. */
export const RUNNING = 0, CLOSED = 1;
export const ERR_BYTES = 4096;
/** Jobs smaller than this (see run) stay on the calling thread. */
export const MIN_WORK = 1 << 16;
/** A worker closes itself after this long without a job. */
export const IDLE_MS = 500;

/** Counters of one job: [next unit to claim, units done, failed worker + 1]. */
export const NEXT = 0, DONE = 1, FAILED = 2;

interface Slot {
  worker: Worker | null;
  /** [0]: worker state (RUNNING / CLOSED). */
  state: Int32Array;
  /** UTF-8 error message of a unit that threw. */
  err: Uint8Array;
}

/** True when `x` is a TypedArray over shared memory. */
function isShared(x: unknown): boolean {
  return ArrayBuffer.isView(x) && x.buffer instanceof SharedArrayBuffer;
}

/**
 * Claim and run units of a job until none are left. A unit that throws is
 * reported through `onError` before it counts as done (so the thread that
 * waits sees the failure), and this thread stops running units; every
 * claimed unit counts as done, so nobody waits forever.
 */
export function claimUnits(
  fn: (a: JobArgs, u0: number, u1: number, s: Sgemm) => void,
  args: JobArgs,
  ctl: Int32Array,
  units: number,
  sgemm: Sgemm,
  onError: (e: unknown) => void,
): void {
  let failed = false;
  for (;;) {
    const u = Atomics.add(ctl, NEXT, 1);
    if (u >= units) return;
    try {
      if (!failed) fn(args, u, u + 1, sgemm);
    } catch (e) {
      failed = true;
      onError(e);
    } finally {
      if (Atomics.add(ctl, DONE, 1) + 1 === units) Atomics.notify(ctl, DONE);
    }
  }
}

export class Pool {
  private readonly slots: Slot[] = [];

  /**
   * `threads` participants in all (this thread included); `libPath` is the
   * BLAS library each worker opens for the jobs that call sgemm.
   */
  constructor(
    readonly threads: number,
    private readonly sgemm: Sgemm,
    private readonly libPath: string,
  ) {
    for (let i = 1; i < threads; i++) {
      const state = new Int32Array(new SharedArrayBuffer(4));
      state[0] = CLOSED;
      this.slots.push({
        worker: null,
        state,
        err: new Uint8Array(new SharedArrayBuffer(ERR_BYTES)),
      });
    }
  }

  /** Whether arrays should be allocated in shared memory (more than one thread). */
  get parallel(): boolean {
    return this.slots.length > 0;
  }

  /** The slot's worker, started anew when it closed itself. */
  private worker(s: Slot, index: number): Worker {
    if (s.worker && Atomics.load(s.state, 0) === RUNNING) return s.worker;
    s.worker?.terminate();
    Atomics.store(s.state, 0, RUNNING);
    s.worker = new Worker(new URL("./pool_worker.ts", import.meta.url), {
      type: "module",
    });
    s.worker.postMessage({
      init: { libPath: this.libPath, state: s.state, err: s.err, index },
    });
    return s.worker;
  }

  /**
   * Run units [0, units) of `job` on this thread and the workers. `work`
   * estimates the job's cost (about one unit per element or per 16 flops):
   * below MIN_WORK, handing out units costs more than it saves and all runs
   * here. Every top-level TypedArray of `args` must be shared memory for the
   * workers to help; otherwise everything runs here too.
   */
  run(job: string, args: JobArgs, units: number, work: number): void {
    const fn = JOBS[job];
    if (!fn) throw new Error(`internal: no job ${job}`);
    if (
      units <= 1 || work < MIN_WORK || !this.parallel ||
      !Object.values(args).every((v) => !ArrayBuffer.isView(v) || isShared(v))
    ) {
      fn(args, 0, units, this.sgemm);
      return;
    }
    const ctl = new Int32Array(new SharedArrayBuffer(12));
    this.slots.forEach((s, i) =>
      this.worker(s, i).postMessage({ job, args, ctl, units })
    );
    let failure: unknown = null;
    claimUnits(fn, args, ctl, units, this.sgemm, (e) => (failure ??= e));
    // units claimed by workers may still be running: they write into args
    for (;;) {
      const done = Atomics.load(ctl, DONE);
      if (done >= units) break;
      Atomics.wait(ctl, DONE, done, 1000);
    }
    if (failure) throw failure;
    const w = Atomics.load(ctl, FAILED);
    if (w > 0) {
      const err = this.slots[w - 1].err, n = err.indexOf(0);
      throw new Error(
        `worker failed in ${job}: ${
          new TextDecoder().decode(err.slice(0, n < 0 ? ERR_BYTES : n))
        }`,
      );
    }
  }
}
