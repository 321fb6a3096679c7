/**
 * Appends trace lines to `<run>/trace.jsonl` (format: `./schema.ts`).
 *
 * One synchronous write per line on a file opened for append, so a crash
 * leaves at most one torn final line, which resume drops. Synchronous because
 * the model's tracer callback is synchronous and lines must keep call order.
 *
 * Wiring (loop, variants, model):
 *   const rec = TraceRecorder.open(runDir, { level, variant, resumeFromStep,
 *                                            observe: { coordTokenIds, softctxTemperature } });
 *   model.setTracer(rec.modelTracer);     // forwards outside a context are ignored
 *   rec.setContext({ globalStep, channel, purpose: "train", microBatch, pass: 0,
 *                    nPasses: 1, gradRecorded: false, training: true,
 *                    packed, segmentLengths });
 *   rec.updateContext({ pass, nPasses, gradRecorded });  // per pass
 *   rec.setContext(null);                 // around generation you do not trace
 *   rec.step({ globalStep, pattern, channel, trainingSeed, rolloutSeedBase, ... });
 *   rec.checkpoint(completedSteps);       // right after a checkpoint is saved
 *   rec.end(completedSteps);              // once, when the run finished every step
 *
 * Level "full" writes every forward with its per-token arrays and the
 * recorder's observations (`observe.ts`); level "summary" does so on the
 * first DETAIL_FIRST steps and every DETAIL_EVERY-th step, and elsewhere
 * writes training forwards without arrays or observations and rollout
 * forwards only as their generation call's count. Generation calls are
 * always recorded (`generate` lines).
 */
import { deriveChecks } from "./derive.ts";
import { ForwardObserver, type ObserverOptions } from "./observe.ts";
import {
  type ForwardContext,
  ForwardContextSchema,
  type ForwardRecord,
  type ForwardTraceInfo,
  ForwardTraceInfoSchema,
  isDetailedStep,
  type RunExpect,
  RunExpectSchema,
  type RunRecord,
  type StepRecord,
  StepRecordSchema,
  TRACE_FILE,
  TRACE_VERSION,
  type TraceLevel,
  type TraceLine,
} from "./schema.ts";
import type { ForwardTensors, GenerationFacts, ModelTracer } from "./tracer.ts";
import type { z } from "zod";

/** Level "summary": full detail on steps below this... */
export const DETAIL_FIRST = 3;
/** ...and on every multiple of this. */
export const DETAIL_EVERY = 10;

export interface TraceRecorderOptions {
  /** `training.trace`; "off" writes nothing and creates no file. */
  level: TraceLevel;
  /** `custom.trainer_variant`, stored in the header line. */
  variant: string;
  /**
   * Config facts stored in the header so the audit can hold the run to them
   * (schedule pattern, `n_softctx_iter`, accumulation window).
   */
  expect?: RunExpect;
  /**
   * Completed optimizer updates restored from a checkpoint. The existing trace
   * is cut right after that checkpoint's line (or, lacking one, before the
   * first line of step >= this), then a `resume` line is appended. Null or
   * undefined: a fresh run; an existing trace is replaced.
   */
  resumeFromStep?: number | null;
  /**
   * Reports whether a gradient tape is recording right now (for TF.js:
   * `() => tf.engine().state.gradientDepth > 0`). When given, it overrides
   * the context's `gradRecorded`, so the trace holds the fact, not the intent.
   */
  tapeProbe?: () => boolean;
  /**
   * What the recorder needs to observe training forwards itself (coord
   * token ids, soft-context temperature); absent: no observations.
   */
  observe?: Omit<ObserverOptions, "runDir">;
}

function describeZod(err: z.ZodError): string {
  const i = err.issues[0];
  const path = i.path.length ? i.path.join(".") : "(root)";
  return `${path}: ${i.message}`;
}

const encoder = new TextEncoder();

export class TraceRecorder {
  readonly path: string;
  readonly level: TraceLevel;
  #file: Deno.FsFile | null;
  #context: ForwardContext | null = null;
  #tapeProbe?: () => boolean;
  #observer: ForwardObserver | null;
  #detailSteps: RunRecord["detailSteps"];
  /** Forwards counted inside the generation call in progress (null: none). */
  #generationForwards: number | null = null;

  private constructor(
    path: string,
    level: TraceLevel,
    file: Deno.FsFile | null,
    opts: TraceRecorderOptions,
  ) {
    this.path = path;
    this.level = level;
    this.#file = file;
    this.#tapeProbe = opts.tapeProbe;
    this.#detailSteps = level === "full"
      ? null
      : { first: DETAIL_FIRST, every: DETAIL_EVERY };
    this.#observer = file !== null && opts.observe
      ? new ForwardObserver({
        ...opts.observe,
        runDir: path.slice(0, path.lastIndexOf("/")),
        resumed: (opts.resumeFromStep ?? null) !== null,
      })
      : null;
  }

  /** Opens (creates, replaces or resumes) the trace of a run folder. */
  static open(runDir: string, opts: TraceRecorderOptions): TraceRecorder {
    const path = `${runDir.replace(/\/$/, "")}/${TRACE_FILE}`;
    if (opts.level === "off") {
      return new TraceRecorder(path, "off", null, opts);
    }
    const resume = opts.resumeFromStep ?? null;
    const header: TraceLine = {
      kind: "run",
      version: TRACE_VERSION,
      level: opts.level,
      variant: opts.variant,
      detailSteps: opts.level === "full"
        ? null
        : { first: DETAIL_FIRST, every: DETAIL_EVERY },
      ...(opts.expect ? { expect: RunExpectSchema.parse(opts.expect) } : {}),
    };
    let kept: string[] = [JSON.stringify(header)];
    if (resume !== null) {
      const existing = readLines(path);
      // An unusable old trace (no header) restarts with just this header.
      kept = linesBeforeResume(existing, resume) ?? kept;
      kept.push(JSON.stringify({ kind: "resume", globalStep: resume }));
    }
    // Atomic replace so a crash here leaves either the old or the new trace.
    const tmp = `${path}.tmp-${Deno.pid}`;
    Deno.writeTextFileSync(tmp, kept.map((l) => l + "\n").join(""));
    Deno.renameSync(tmp, path);
    const file = Deno.openSync(path, { append: true });
    return new TraceRecorder(path, opts.level, file, opts);
  }

  /** False when the level is "off" (callers can skip building trace data). */
  get enabled(): boolean {
    return this.#file !== null;
  }

  /** Sets (or clears, with null) the context attached to model forwards. */
  setContext(ctx: ForwardContext | null): void {
    this.#context = ctx === null ? null : { ...ctx };
  }

  /** Changes part of the current context (e.g. the pass fields); no-op without one. */
  updateContext(patch: Partial<ForwardContext>): void {
    if (this.#context !== null) this.#context = { ...this.#context, ...patch };
  }

  /** The current context (a copy), or null. */
  get context(): ForwardContext | null {
    return this.#context === null ? null : { ...this.#context };
  }

  /**
   * Records each forward under the current context (with the tensors it
   * consumed, when the model hands them over). Rollout forwards are counted
   * for their generation call and written on detailed steps only.
   */
  readonly tracer = (
    info: ForwardTraceInfo,
    tensors?: ForwardTensors,
  ): void => {
    const ctx = this.#context;
    if (ctx === null) return;
    if (ctx.purpose === "rollout") {
      if (this.#generationForwards !== null) this.#generationForwards++;
      if (!this.#detailed(ctx.globalStep)) return;
    }
    this.forward(ctx, info, tensors);
  };

  /**
   * Records one generation call made under the current context: what it
   * received, the forwards it ran and the tokens it produced. Outside a
   * context the call just runs.
   */
  generation<R extends { tokens: ArrayLike<number>[] }>(
    facts: GenerationFacts,
    run: () => Promise<R>,
  ): Promise<R> {
    const ctx = this.#context;
    if (ctx === null || this.#file === null) return run();
    this.#generationForwards = 0;
    const done = () => {
      const n = this.#generationForwards ?? 0;
      this.#generationForwards = null;
      return n;
    };
    let pending: Promise<R>;
    try {
      pending = run();
    } catch (e) {
      done();
      throw e;
    }
    return pending.then((r) => {
      this.#write({
        kind: "generate",
        globalStep: ctx.globalStep,
        channel: ctx.channel,
        purpose: ctx.purpose,
        microBatch: ctx.microBatch,
        requests: facts.requests,
        mode: facts.mode,
        seeds: facts.seeds === null ? null : [...facts.seeds],
        maxNewTokens: facts.maxNewTokens,
        forwards: done(),
        newTokens: r.tokens.map((t) => t.length),
      });
      return r;
    }, (e) => {
      done();
      throw e;
    });
  }

  /** Pass to `model.setTracer`: forwards and generation calls. */
  readonly modelTracer: ModelTracer = {
    forward: this.tracer,
    generation: (facts, run) => this.generation(facts, run),
  };

  #detailed(step: number): boolean {
    return isDetailedStep(this.#detailSteps, step);
  }

  /**
   * Runs `fn` with forward recording paused (e.g. untraced generation). An
   * async `fn` keeps recording paused until its promise settles.
   */
  suspended<T>(fn: () => T): T {
    const saved = this.#context;
    this.#context = null;
    // fn may set a context of its own; only restore when it did not.
    const restore = () => {
      if (this.#context === null) this.#context = saved;
    };
    let out: T;
    try {
      out = fn();
    } catch (e) {
      restore();
      throw e;
    }
    if (out instanceof Promise) return out.finally(restore) as T;
    restore();
    return out;
  }

  /**
   * Appends one forward line, with the recorder's observations of `tensors`
   * on detailed steps. Invalid fields throw, naming the field.
   */
  forward(
    ctx: ForwardContext,
    info: ForwardTraceInfo,
    tensors?: ForwardTensors,
  ): void {
    if (this.#file === null) return;
    const c = ForwardContextSchema.safeParse(ctx);
    if (!c.success) {
      throw new Error(`trace: bad forward context ${describeZod(c.error)}`);
    }
    const i = ForwardTraceInfoSchema.safeParse(info);
    if (!i.success) {
      throw new Error(`trace: bad ForwardTraceInfo ${describeZod(i.error)}`);
    }
    const context = { ...c.data };
    if (this.#tapeProbe) context.gradRecorded = this.#tapeProbe();
    const full = { ...context, ...i.data };
    const checks = deriveChecks(full);
    const summary = !this.#detailed(context.globalStep);
    const rec: ForwardRecord = {
      kind: "forward",
      detail: summary ? "summary" : "full",
      ...full,
      ...(summary ? { row0: null, mrope: null } : {}),
      checks,
      observed: !summary && tensors && this.#observer
        ? this.#observer.observe(context, tensors)
        : null,
    };
    this.#write(rec);
  }

  /** Appends the step line for one optimizer update. */
  step(rec: Omit<StepRecord, "kind">): void {
    if (this.#file === null) return;
    const r = StepRecordSchema.safeParse({ kind: "step", ...rec });
    if (!r.success) {
      throw new Error(`trace: bad step record ${describeZod(r.error)}`);
    }
    this.#write(r.data);
  }

  /** Marks that a checkpoint holding `globalStep` completed updates was saved. */
  checkpoint(globalStep: number): void {
    if (this.#file === null) return;
    this.#write({ kind: "checkpoint", globalStep });
    this.#file.syncDataSync();
  }

  /** Marks that the run finished all its steps (`globalStep` completed updates). */
  end(globalStep: number): void {
    if (this.#file === null) return;
    this.#write({ kind: "end", globalStep });
    this.#file.syncDataSync();
  }

  /** Flushes and closes the file; later calls are no-ops. */
  close(): void {
    if (this.#file === null) return;
    this.#file.syncDataSync();
    this.#file.close();
    this.#file = null;
  }

  #write(line: TraceLine): void {
    const bytes = encoder.encode(JSON.stringify(line) + "\n");
    let off = 0;
    // writeSync may write fewer bytes than asked; finish the line.
    while (off < bytes.length) {
      off += this.#file!.writeSync(bytes.subarray(off));
    }
  }
}

function readLines(path: string): string[] {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const lines = text.split("\n");
  // A torn final line (crash mid-write) has no newline: drop it.
  lines.pop();
  return lines;
}

/**
 * The lines to keep when resuming with `step` completed updates: everything
 * up to and including the last `checkpoint` line for `step`; without one,
 * everything before the first line that belongs to a step >= `step`.
 * Unparseable lines end the kept prefix. Null when nothing usable is left
 * (no file, or no `run` header first).
 */
export function linesBeforeResume(
  lines: string[],
  step: number,
): string[] | null {
  const parsed: (Record<string, unknown> | null)[] = lines.map((l) => {
    try {
      const v = JSON.parse(l);
      return v !== null && typeof v === "object" ? v : null;
    } catch {
      return null;
    }
  });
  const bad = parsed.findIndex((p) => p === null);
  const usable = bad < 0 ? parsed.length : bad;
  let cut = -1;
  for (let i = 0; i < usable; i++) {
    const p = parsed[i]!;
    if (p.kind === "checkpoint" && p.globalStep === step) cut = i + 1;
  }
  if (cut < 0) {
    cut = usable;
    for (let i = 0; i < usable; i++) {
      const p = parsed[i]!;
      const s = typeof p.globalStep === "number" ? p.globalStep : -1;
      const belongs = p.kind === "checkpoint" ? s > step : s >= step;
      if (
        (p.kind === "forward" || p.kind === "generate" ||
          p.kind === "step" || p.kind === "checkpoint" ||
          p.kind === "end") && belongs
      ) {
        cut = i;
        break;
      }
    }
  }
  const kept = lines.slice(0, cut);
  return kept.length === 0 || parsed[0]?.kind !== "run" ? null : kept;
}
