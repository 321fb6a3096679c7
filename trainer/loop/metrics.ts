/**
 * Per-step metrics: the sink variants write into during a window, and the
 * `metrics.jsonl` writer. Each line keeps deterministic values (step, loss,
 * lr, counters) at the top level and wall-clock values under `timing`, so
 * two runs of the same config compare equal once `timing` is dropped.
 */
import { join } from "node:path";
import type { MetricsSink } from "../variant/contract.ts";

type Reduce = "mean" | "sum" | "set";

/** Collects one window's metrics; `flush()` reduces and clears. */
export class WindowMetrics implements MetricsSink {
  private acc = new Map<string, { reduce: Reduce; total: number; n: number }>();
  private facts = new Map<string, Map<string, number>>();

  private put(name: string, value: number, reduce: Reduce): void {
    const a = this.acc.get(name);
    if (a && a.reduce !== reduce) {
      throw new Error(
        `metric ${name} reported as both ${a.reduce} and ${reduce}`,
      );
    }
    if (!a) {
      this.acc.set(name, { reduce, total: value, n: 1 });
    } else if (!Number.isFinite(value)) {
      // A NaN/Inf loss must be visible in the log, not averaged away.
      a.total = value;
    } else if (Number.isFinite(a.total)) {
      a.total = reduce === "set" ? value : a.total + value;
      a.n++;
    }
  }

  mean(name: string, value: number): void {
    this.put(name, value, "mean");
  }
  sum(name: string, value: number): void {
    this.put(name, value, "sum");
  }
  set(name: string, value: number): void {
    this.put(name, value, "set");
  }
  fact(line: string, name: string, value: number): void {
    if (!this.facts.has(line)) this.facts.set(line, new Map());
    this.facts.get(line)!.set(name, value);
  }

  /** The window's facts: per line kind, the values in name order; clears them. */
  flushFacts(): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    for (const [line, values] of this.facts) {
      out.set(
        line,
        Object.fromEntries([...values].sort(([a], [b]) => a < b ? -1 : 1)),
      );
    }
    this.facts.clear();
    return out;
  }

  /** Reduced values in name order; clears the window. */
  flush(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of [...this.acc.keys()].sort()) {
      const a = this.acc.get(k)!;
      out[k] = a.reduce === "mean" ? a.total / a.n : a.total;
    }
    this.acc.clear();
    return out;
  }
}

/** Adds across windows between logging steps: means of per-step values. */
export class LogAccumulator {
  private acc = new Map<string, { total: number; n: number }>();

  add(values: Record<string, number>): void {
    for (const [k, v] of Object.entries(values)) {
      const a = this.acc.get(k) ?? { total: 0, n: 0 };
      a.total += v;
      a.n++;
      this.acc.set(k, a);
    }
  }

  flush(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of [...this.acc.keys()].sort()) {
      const a = this.acc.get(k)!;
      out[k] = a.total / a.n;
    }
    this.acc.clear();
    return out;
  }

  /** Partial sums, for `trainer_state.json` (JSON round-trips doubles exactly). */
  state(): Record<string, { total: number; n: number }> {
    return Object.fromEntries(
      [...this.acc].map(([k, v]) => [k, { total: v.total, n: v.n }]),
    );
  }

  restore(s: Record<string, { total: number; n: number }>): void {
    this.acc = new Map(
      Object.entries(s).map(([k, v]) => [k, { total: v.total, n: v.n }]),
    );
  }
}

/** One `metrics.jsonl` line. */
export interface MetricsLine {
  /** Completed optimizer updates when the line was written. */
  step: number;
  /**
   * "train" (logging step), "eval" (eval loss), or a variant's fact line
   * (`MetricsSink.fact`; Stage 2 writes "rollout" once per step with fresh
   * rollouts: `values.global_step` is the step whose seed base
   * `values["rollout/seed_base"]` was used).
   */
  kind: string;
  values: Record<string, number>;
  timing: Record<string, number>;
}

export const METRICS_FILE = "metrics.jsonl";

/** Appends lines to `<run>/metrics.jsonl`. */
export class MetricsWriter {
  readonly path: string;
  constructor(runDir: string) {
    this.path = join(runDir, METRICS_FILE);
  }

  async append(line: MetricsLine): Promise<void> {
    const obj = {
      step: line.step,
      kind: line.kind,
      ...line.values,
      timing: line.timing,
    };
    await Deno.writeTextFile(this.path, JSON.stringify(obj) + "\n", {
      append: true,
    });
  }

  /**
   * On resume: keep only lines of steps <= `step` (what the checkpoint had
   * completed), so the resumed run appends exactly what the uninterrupted
   * run wrote after that point. Rewritten atomically.
   */
  async truncateAfter(step: number): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    const kept = text.split("\n").filter((l) => {
      if (!l.trim()) return false;
      try {
        return (JSON.parse(l) as { step: number }).step <= step;
      } catch {
        return false; // a line cut by the kill
      }
    });
    const tmp = `${this.path}.tmp-${Deno.pid}`;
    await Deno.writeTextFile(tmp, kept.map((l) => l + "\n").join(""));
    await Deno.rename(tmp, this.path);
  }
}

/** Drops `timing` from parsed metrics lines (for determinism checks). */
export function deterministicPart(line: string): string {
  const o = JSON.parse(line) as Record<string, unknown>;
  delete o.timing;
  return JSON.stringify(o);
}
